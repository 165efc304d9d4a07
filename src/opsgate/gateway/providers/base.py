"""The provider seam: one small interface, one module per upstream wire protocol.

The canonical request is an OpenAI chat-completions body (a dict); each provider translates
it to its upstream's wire format and answers in OpenAI's response and chunk shapes.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsgate.errors import UpstreamError
from opsgate.gateway.settings import DeploymentSettings

# A chat.completion.chunk as a dict: the stream's unit between providers and the API.
ChatChunk = dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    """The canonical request a provider receives; `body` never carries a client model id."""

    body: dict[str, Any]
    stream: bool = False
    # The client asked for the final usage chunk; providers always fetch usage for accounting.
    include_usage: bool = False


@dataclass(slots=True)
class ChatResult:
    body: dict[str, Any]
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class EmbedResult:
    body: dict[str, Any]
    input_tokens: int


@dataclass(slots=True)
class Credentials:
    """What the provider needs to authenticate one call; resolved from the vault at use."""

    api_key: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the secret
        return "Credentials(***)"


class Provider(Protocol):
    kind: str

    async def chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> ChatResult: ...

    def stream_chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,
    ) -> AsyncGenerator[ChatChunk, None]:
        """Chunks in OpenAI shape; the last one carries usage (choices empty).

        Raises `UpstreamError` before the first chunk for a refused call, and mid-stream for
        a broken one. Closing the iterator closes the upstream connection.
        """
        ...

    async def embed(
        self,
        body: dict[str, Any],
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> EmbedResult: ...

    async def aclose(self) -> None: ...


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    title = "Upstream timed out"


class UpstreamUnreachable(UpstreamError):
    code = "upstream_unreachable"
    title = "Upstream unreachable"


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` / `Retry-After` (delta or HTTP date); None if absent."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx status; its body stays server-side."""

    def __init__(self, status: int, body: bytes | str, retry_after: float | None) -> None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        super().__init__(
            f"upstream answered {status}", upstream_status=status, upstream_body=text[:2000]
        )
        self.retry_after = retry_after


def garbage(what: str) -> UpstreamError:
    return UpstreamError(f"upstream sent an invalid {what}", code="upstream_invalid_response")


def usage_of(body: dict[str, Any]) -> tuple[int, int]:
    u = body.get("usage")
    if not isinstance(u, dict):
        return 0, 0
    pin, pout = u.get("prompt_tokens", 0), u.get("completion_tokens", 0)
    return (pin if isinstance(pin, int) else 0, pout if isinstance(pout, int) else 0)
