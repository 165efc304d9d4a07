"""Anthropic's native Messages API (`POST {base_url}/v1/messages`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from opsgate.errors import UpstreamError
from opsgate.gateway.profiles import profile
from opsgate.gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Credentials,
    EmbedResult,
    garbage,
    usage_of,
)
from opsgate.gateway.providers.openai_compat import decode_object
from opsgate.gateway.settings import DeploymentSettings
from opsgate.gateway.sse import iter_sse
from opsgate.gateway.translate.to_anthropic import (
    AnthropicEventsToChunks,
    request_to_anthropic,
    response_from_anthropic,
)
from opsgate.gateway.upstream_http import UpstreamClient

API_VERSION = "2023-06-01"


class AnthropicProvider:
    kind = "anthropic"

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self.profile = profile(self.kind)

    def _headers(self, creds: Credentials) -> dict[str, str]:
        h = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if creds.api_key:
            h["x-api-key"] = creds.api_key
        return h

    def _payload(self, req: ChatRequest, dep: DeploymentSettings, stream: bool) -> bytes:
        default = self.profile.default_max_tokens or 4096
        return orjson.dumps(request_to_anthropic(req.body, dep.model, default, stream))

    async def chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> ChatResult:
        raw = await self.client.post_json(
            f"{dep.base_url}/v1/messages",
            self._payload(req, dep, False),
            self._headers(creds),
            timeout,
        )
        data = decode_object(raw, "JSON body")
        if not isinstance(data.get("content"), list):
            raise garbage("message")
        body = response_from_anthropic(data, dep.model)
        pin, pout = usage_of(body)
        return ChatResult(body, pin, pout)

    async def stream_chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> AsyncGenerator[ChatChunk, None]:
        up = await self.client.open_stream(
            f"{dep.base_url}/v1/messages",
            self._payload(req, dep, True),
            self._headers(creds),
            timeout,
        )
        try:
            tr = AnthropicEventsToChunks(dep.model)
            async for chunk in _translate(up.chunks(), tr):
                yield chunk
            yield tr.usage_chunk()
        finally:
            up.finish()

    async def embed(
        self,
        body: dict[str, Any],
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> EmbedResult:
        raise UpstreamError("Anthropic has no embeddings API", code="unsupported")

    async def aclose(self) -> None:
        await self.client.aclose()


async def _translate(
    raw: AsyncIterator[bytes], tr: AnthropicEventsToChunks
) -> AsyncIterator[ChatChunk]:
    stopped = False
    try:
        async for _name, data in iter_sse(raw):
            event = decode_object(data, "stream event")
            if event.get("type") == "error":
                raise UpstreamError("upstream reported an error mid-stream", code="upstream_error")
            if event.get("type") == "message_stop":
                stopped = True
                break
            chunk = tr.feed(event)
            if chunk is not None:
                yield chunk
    except ValueError:
        raise garbage("stream") from None
    if not stopped and not tr.finished:
        raise UpstreamError("upstream ended the stream early", code="upstream_disconnected")
