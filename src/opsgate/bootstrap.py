"""First-run initialisation shared by `opsgate up` and tests."""

from __future__ import annotations

from opsgate.db.engine import Database
from opsgate.identity.apikeys import ApiKeyStore
from opsgate.keyfile import resolve_secret_key
from opsgate.settings import Settings

BOOTSTRAP_KEY_NAME = "bootstrap-admin"


async def bootstrap(settings: Settings) -> str | None:
    """Create the default tenant; on the very first run also an admin API key, returned once.

    Later runs return None: the key is never stored in a form that could be shown again.
    """
    db = Database(settings.database_url)
    try:
        await db.ensure_tenant(settings.default_tenant)
        store = ApiKeyStore(db, resolve_secret_key(settings), settings.identity.api_key_prefix)
        if await store.any_with_role(settings.default_tenant, "admin"):
            return None
        issued = await store.create(
            tenant=settings.default_tenant,
            name=BOOTSTRAP_KEY_NAME,
            kind="service",
            roles=["admin"],
            scopes=[],
            created_by="system:bootstrap",
            expires_at=None,
        )
        return issued.key
    finally:
        await db.dispose()
