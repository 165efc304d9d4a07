"""Local key files for the embedded mode (created once, mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from opsgate.errors import ConfigError

if TYPE_CHECKING:
    from opsgate.settings import Settings


def load_or_create_key(path: Path, nbytes: int = 32) -> bytes:
    """Read a raw key from `path`, creating it with `nbytes` random bytes if absent.

    The file is created with O_EXCL and mode 0600 so two first runs cannot race and no other
    user can read it; an existing file with wider permissions is refused.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                [(str(path), f"key file permissions are {oct(mode)}; must be 0600")]
            ) from None
        data = path.read_bytes()
        if len(data) != nbytes:
            raise ConfigError([(str(path), f"key file must hold exactly {nbytes} bytes")]) from None
        return data
    key = secrets.token_bytes(nbytes)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def resolve_secret_key(settings: Settings) -> bytes:
    """The server's secret key: from configuration, else the data directory's key file."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return load_or_create_key(settings.data_dir / "secret.key")
