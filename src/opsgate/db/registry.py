"""Imports every domain's tables so `Base.metadata` is complete (for migrations and grants).

Add a line to MODEL_MODULES when a domain gains a `models.py`.
"""

from __future__ import annotations

import importlib

from opsgate.db.base import Base

MODEL_MODULES = (
    "opsgate.approvals.models",
    "opsgate.audit.models",
    "opsgate.db.base",
    "opsgate.gateway.killswitch.models",
    "opsgate.gateway.usage.models",
    "opsgate.guard.models",
    "opsgate.identity.models",
    "opsgate.tools.federation_models",
    "opsgate.tools.models",
    "opsgate.tools.zone_overrides",
    "opsgate.vault.models",
)


def metadata_tables() -> dict[str, object]:
    # Importing a models module registers its tables on Base.metadata.
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return dict(Base.metadata.tables)


def append_only_tables() -> set[str]:
    metadata_tables()
    return {name for name, t in Base.metadata.tables.items() if t.info.get("append_only")}
