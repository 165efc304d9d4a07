"""Azure OpenAI: the OpenAI wire format at deployment URLs with `api-version`, key or Entra ID.

Entra ID: the vault secret holds JSON `{"tenant_id", "client_id", "client_secret"}` for a
service principal; an empty `api_key` uses azure-identity's DefaultAzureCredential (managed
identity, workload identity, …). Tokens are cached until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from opsgate.errors import UpstreamError
from opsgate.gateway.providers.base import Credentials
from opsgate.gateway.providers.openai_compat import OpenAICompatProvider
from opsgate.gateway.settings import DeploymentSettings
from opsgate.gateway.upstream_http import UpstreamClient

# Refresh a token this long before it expires.
TOKEN_SKEW_SECONDS = 120.0


class AccessTokenLike(Protocol):
    token: str
    expires_on: int


class TokenCredential(Protocol):
    """azure.core's AsyncTokenCredential, reduced to what the gateway calls."""

    async def get_token(self, *scopes: str) -> Any: ...


def default_credential_factory(creds: Credentials) -> TokenCredential:
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

    if not creds.api_key:
        cred: TokenCredential = DefaultAzureCredential()
        return cred
    try:
        sp = orjson.loads(creds.api_key)
        return ClientSecretCredential(sp["tenant_id"], sp["client_id"], sp["client_secret"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise UpstreamError(
            "Azure Entra credential secret must be JSON with tenant_id, client_id, client_secret",
            code="provider_misconfigured",
        ) from None


class AzureOpenAIProvider(OpenAICompatProvider):
    kind = "azure"

    def __init__(
        self,
        client: UpstreamClient,
        credential_factory: Callable[[Credentials], TokenCredential] = default_credential_factory,
    ) -> None:
        super().__init__(client)
        self._factory = credential_factory
        # (deployment, scope) -> (credential, token, expires_at)
        self._tokens: dict[tuple[str, str], tuple[TokenCredential, str, float]] = {}
        self._lock = asyncio.Lock()

    def url(self, dep: DeploymentSettings, path: str) -> str:
        name = quote(dep.model, safe="")
        return f"{dep.base_url}/openai/deployments/{name}/{path}?api-version={dep.api_version}"

    async def headers(self, dep: DeploymentSettings, creds: Credentials) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if dep.auth == "entra":
            h["authorization"] = f"Bearer {await self._token(dep, creds)}"
        elif creds.api_key:
            h["api-key"] = creds.api_key
        return h

    async def _token(self, dep: DeploymentSettings, creds: Credentials) -> str:
        key = (dep.name, dep.entra_scope)
        cached = self._tokens.get(key)
        if cached and cached[2] - TOKEN_SKEW_SECONDS > time.time():
            return cached[1]
        async with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[2] - TOKEN_SKEW_SECONDS > time.time():
                return cached[1]
            cred = cached[0] if cached else self._factory(creds)
            try:
                tok = await cred.get_token(dep.entra_scope)
            except Exception as exc:
                raise UpstreamError(
                    f"Entra ID token request failed ({type(exc).__name__})",
                    code="upstream_auth_failed",
                ) from None
            self._tokens[key] = (cred, str(tok.token), float(tok.expires_on))
            return str(tok.token)

    async def aclose(self) -> None:
        for cred, _tok, _exp in self._tokens.values():
            close = getattr(cred, "close", None)
            if close is not None:
                await close()
        self._tokens.clear()
        await super().aclose()
