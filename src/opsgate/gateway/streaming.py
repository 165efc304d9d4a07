"""Streaming passthrough: upstream chunks relayed one by one, never buffered whole.

`SSEResponse` watches for the client's disconnect while it streams and cancels the relay at
once; the relay then closes the upstream response (so the upstream sees the cancellation)
and finishes accounting. After the first byte no fallback happens: an upstream failure
ends the stream with one terminal error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from opsgate.errors import OpsGateError
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.pipeline import Pipeline
from opsgate.gateway.providers.base import ChatChunk
from opsgate.gateway.sse import DONE, data_event, error_event
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.gateway.stream")


class StreamEncoder(Protocol):
    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, err: OpsGateError) -> bytes: ...


class OpenAIEncoder:
    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage

    def chunk(self, chunk: ChatChunk) -> bytes:
        if not chunk.get("choices") and "usage" in chunk and not self.include_usage:
            return b""
        if self.include_usage and "usage" not in chunk:
            chunk["usage"] = None
        chunk["model"] = self.model
        return data_event(chunk)

    def end(self) -> bytes:
        return DONE

    def error(self, err: OpsGateError) -> bytes:
        return error_event(err.detail, err.code, err.openai_type)


class ChunkRelay:
    """Async-iterates client bytes; `close()` is idempotent and always finishes the call."""

    def __init__(
        self,
        pipeline: Pipeline,
        call: GatewayCall,
        first: ChatChunk,
        rest: AsyncIterator[ChatChunk],
        encoder: StreamEncoder,
    ) -> None:
        self.pipeline = pipeline
        self.call = call
        self.first: ChatChunk | None = first
        self.rest = rest
        self.encoder = encoder
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            first, self.first = self.first, None
            if first is not None:
                for out in self._emit(first):
                    yield out
            async for chunk in self.rest:
                for out in self._emit(chunk):
                    yield out
            self.call.outcome = "success"
            yield self.encoder.end()
        except OpsGateError as err:
            # Headers are gone already: say so in-band and end; never fall back silently.
            self.call.outcome = "stream_error"
            self.call.error_code = err.code
            self.call.reasons.append(f"stream failed after first byte: {err.code}")
            yield self.encoder.error(err)
        finally:
            await self.close()

    def _emit(self, chunk: ChatChunk) -> list[bytes]:
        out: list[bytes] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.pipeline.stream_usage(
                self.call,
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
        flt = self.call.response_filter
        if flt is not None:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] = flt.delta(delta["content"])
                if choice.get("finish_reason"):
                    tail = flt.flush()
                    if tail:
                        out.append(self.encoder.chunk(_content_chunk(chunk, tail)))
        data = self.encoder.chunk(chunk)
        if data:
            out.append(data)
        return out

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self.rest.aclose()  # type: ignore[attr-defined]
            except Exception:
                log.warning("closing the upstream stream failed", exc_info=True)
            if self.call.outcome == "pending":
                self.call.outcome = "client_disconnected"
                self.call.reasons.append("client disconnected; upstream call cancelled")
            self.pipeline.release_stream(self.call)
            await self.pipeline.finish(self.call)


def _content_chunk(like: ChatChunk, text: str) -> ChatChunk:
    return {
        "id": like.get("id", ""),
        "object": "chat.completion.chunk",
        "created": like.get("created", 0),
        "model": like.get("model", ""),
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


class SSEResponse(Response):
    """Streams a relay; a client disconnect cancels it immediately (not at the next send)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        relay: ChunkRelay,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.relay = relay
        self.status_code = 200
        self.background = background
        self.init_headers(
            {"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                try:
                    await self._stream(send)
                except OSError:
                    pass  # the client went away mid-send
                finally:
                    tg.cancel_scope.cancel()
        finally:
            await self.relay.close()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for piece in self.relay:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def stream_response(
    pipeline: Pipeline,
    call: GatewayCall,
    first: ChatChunk,
    rest: AsyncIterator[ChatChunk],
    encoder: StreamEncoder,
    headers: dict[str, Any],
) -> SSEResponse:
    return SSEResponse(ChunkRelay(pipeline, call, first, rest, encoder), headers=headers)
