"""OpenAI-compatible upstreams: OpenAI, vLLM, Ollama, llama.cpp, LM Studio, Together, Groq …

Bodies go through as orjson bytes; only the model id is replaced and the usage option
forced on streams (accounting needs it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from opsgate.errors import UpstreamError
from opsgate.gateway.profiles import JSON_INSTRUCTION, ProviderProfile, profile
from opsgate.gateway.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Credentials,
    EmbedResult,
    garbage,
    usage_of,
)
from opsgate.gateway.settings import DeploymentSettings
from opsgate.gateway.sse import iter_sse
from opsgate.gateway.upstream_http import UpstreamClient


def decode_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise garbage(what) from None
    if not isinstance(data, dict):
        raise garbage(what)
    return data


class OpenAICompatProvider:
    """Speaks the OpenAI REST wire format to a configured base URL."""

    kind = "openai"

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self.profile: ProviderProfile = profile(self.kind)

    def url(self, dep: DeploymentSettings, path: str) -> str:
        return f"{dep.base_url}/{path}"

    async def headers(self, dep: DeploymentSettings, creds: Credentials) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if creds.api_key:
            h["authorization"] = f"Bearer {creds.api_key}"
        return h

    def encode(self, req: ChatRequest, dep: DeploymentSettings) -> bytes:
        body = dict(req.body)
        body["model"] = dep.model
        if req.stream:
            body["stream"] = True
            opts = dict(body.get("stream_options") or {})
            opts["include_usage"] = True
            body["stream_options"] = opts
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        if not self.profile.native_json_mode and _json_mode(body):
            body.pop("response_format", None)
            body["messages"] = [{"role": "system", "content": JSON_INSTRUCTION}, *body["messages"]]
        return orjson.dumps(body)

    async def chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> ChatResult:
        raw = await self.client.post_json(
            self.url(dep, "chat/completions"),
            self.encode(req, dep),
            await self.headers(dep, creds),
            timeout,
        )
        data = decode_object(raw, "JSON body")
        if not isinstance(data.get("choices"), list):
            raise garbage("completion")
        pin, pout = usage_of(data)
        return ChatResult(data, pin, pout)

    async def embed(
        self,
        body: dict[str, Any],
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> EmbedResult:
        raw = await self.client.post_json(
            self.url(dep, "embeddings"),
            orjson.dumps({**body, "model": dep.model}),
            await self.headers(dep, creds),
            timeout,
        )
        data = decode_object(raw, "embeddings response")
        if not isinstance(data.get("data"), list):
            raise garbage("embeddings response")
        pin, _ = usage_of(data)
        return EmbedResult(data, pin)

    async def stream_chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> AsyncGenerator[ChatChunk, None]:
        up = await self.client.open_stream(
            self.url(dep, "chat/completions"),
            self.encode(req, dep),
            await self.headers(dep, creds),
            timeout,
        )
        try:
            async for chunk in _chunks(up.chunks()):
                yield chunk
        finally:
            # Runs on normal end, on error and when the consumer closes us (client gone).
            up.finish()

    async def aclose(self) -> None:
        await self.client.aclose()


def _json_mode(body: dict[str, Any]) -> bool:
    rf = body.get("response_format")
    return isinstance(rf, dict) and rf.get("type") in {"json_object", "json_schema"}


async def _chunks(raw: AsyncIterator[bytes]) -> AsyncIterator[ChatChunk]:
    finished = False
    try:
        async for _event, data in iter_sse(raw):
            if data == b"[DONE]":
                return
            chunk = decode_object(data, "stream event")
            if "error" in chunk:
                raise UpstreamError("upstream reported an error mid-stream", code="upstream_error")
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    finished = True
            yield chunk
    except ValueError:
        raise garbage("stream") from None
    if not finished:
        raise UpstreamError("upstream ended the stream early", code="upstream_disconnected")
