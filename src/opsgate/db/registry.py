"""Imports every domain's tables so `Base.metadata` is complete (for migrations and grants).

Add one line here when a domain gains a `models.py`.
"""

from __future__ import annotations

from opsgate.db.base import Base


def metadata_tables() -> dict[str, object]:
    import opsgate.audit.models  # noqa: F401
    import opsgate.db.base  # noqa: F401  (tenants)
    import opsgate.gateway.killswitch.models  # noqa: F401
    import opsgate.gateway.usage.models  # noqa: F401
    import opsgate.guard.models
    import opsgate.identity.models  # noqa: F401

    return dict(Base.metadata.tables)


def append_only_tables() -> set[str]:
    metadata_tables()
    return {name for name, t in Base.metadata.tables.items() if t.info.get("append_only")}
