"""Provider credentials, resolved from the vault at use and cached briefly in memory.

Values never reach logs, errors, audit payloads or spans; `Credentials.__repr__` hides them.
"""

from __future__ import annotations

import time
from typing import Protocol

from opsgate.errors import UpstreamError
from opsgate.gateway.providers.base import Credentials
from opsgate.gateway.settings import DeploymentSettings


class SecretSource(Protocol):
    async def resolve(self, ref: str) -> str:
        """The plaintext of a `secret://name` reference."""
        ...


class CredentialCache:
    def __init__(self, source: SecretSource | None, ttl_seconds: float) -> None:
        self.source = source
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Credentials]] = {}
        self._none = Credentials()

    async def get(self, dep: DeploymentSettings) -> Credentials:
        ref = dep.api_key
        if not ref:
            return self._none
        hit = self._cache.get(ref)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        if self.source is None:
            raise UpstreamError(
                f"deployment {dep.name} needs a vault secret but no vault is configured",
                code="provider_misconfigured",
            )
        try:
            value = await self.source.resolve(ref)
        except Exception as exc:
            # The reference name is configuration, not a secret; the value never appears.
            raise UpstreamError(
                f"credential {ref} for deployment {dep.name} could not be read "
                f"({type(exc).__name__})",
                code="provider_misconfigured",
            ) from None
        creds = Credentials(api_key=value)
        if self._ttl > 0:
            self._cache[ref] = (now + self._ttl, creds)
        return creds

    def clear(self) -> None:
        self._cache.clear()
