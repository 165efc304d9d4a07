"""Server-sent events: an incremental byte parser and the encoders the API uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
# Lines longer than this without a newline mean the upstream is not speaking SSE.
MAX_LINE = 8 * 1024 * 1024


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Yield (event name, data) per event as soon as its blank line arrives.

    Handles LF and CRLF, multi-line data and comments; an event still open when the bytes
    end is delivered too (some servers omit the final blank line).
    """
    buf = b""
    event = ""
    data: list[bytes] = []
    async for piece in chunks:
        buf = buf + piece if buf else piece
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = "", []
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
            # comments (":") and other fields (id, retry) are ignored
        buf = buf[start:]
        if len(buf) > MAX_LINE:
            raise ValueError("SSE line too long")
    if buf.strip():
        line = buf.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield event, b"\n".join(data)


def data_event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def error_event(message: str, code: str, err_type: str = "api_error") -> bytes:
    """The terminal event sent when a stream fails after its first byte."""
    return data_event({"error": {"message": message, "type": err_type, "code": code}})
