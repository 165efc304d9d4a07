"""AWS Bedrock through the Converse / ConverseStream API (boto3, calls run in threads).

Credentials: the vault secret holds JSON `{"aws_access_key_id", "aws_secret_access_key",
"aws_session_token"?}`; an empty `api_key` uses boto3's default chain (instance role, IRSA).
botocore's own retries are off: the gateway retries and falls back itself.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Iterator
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
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
    usage_of,
)
from opsgate.gateway.settings import DeploymentSettings
from opsgate.gateway.translate.converse import (
    STREAM_ERRORS,
    ConverseEventsToChunks,
    request_to_converse,
    response_from_converse,
)

_END = object()


def _map_error(exc: Exception) -> UpstreamError:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata") or {}
        status = int(meta.get("HTTPStatusCode") or 502)
        code = str((exc.response.get("Error") or {}).get("Code", ""))
        if code == "ThrottlingException":
            status = 429
        headers = meta.get("HTTPHeaders") or {}
        retry = headers.get("retry-after")
        return UpstreamStatusError(status, code, float(retry) if retry else None)
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return UpstreamTimeout("upstream timed out")
    if isinstance(exc, EndpointConnectionError):
        return UpstreamUnreachable("upstream unreachable")
    return UpstreamError(f"Bedrock call failed ({type(exc).__name__})")


class BedrockProvider:
    kind = "bedrock"

    def __init__(self, *, connect_timeout: float, read_timeout: float) -> None:
        self.profile = profile(self.kind)
        self._connect = connect_timeout
        self._read = read_timeout
        # (deployment, credential digest) -> boto3 client; clients are thread-safe.
        self._clients: dict[tuple[str, str, str, str], Any] = {}

    def _client(self, dep: DeploymentSettings, creds: Credentials) -> Any:
        digest = hashlib.sha256(creds.api_key.encode()).hexdigest()
        key = (dep.name, dep.base_url, dep.region, digest)
        client = self._clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            kwargs: dict[str, Any] = {}
            if creds.api_key:
                try:
                    kwargs = {k: v for k, v in orjson.loads(creds.api_key).items() if v}
                except (orjson.JSONDecodeError, AttributeError):
                    raise UpstreamError(
                        "Bedrock credential secret must be JSON with aws_access_key_id and "
                        "aws_secret_access_key",
                        code="provider_misconfigured",
                    ) from None
            session = boto3.session.Session(region_name=dep.region, **kwargs)
            config = Config(
                connect_timeout=self._connect,
                read_timeout=self._read,
                retries={"max_attempts": 1, "mode": "standard"},
            )
            client = session.client(
                "bedrock-runtime", endpoint_url=dep.base_url or None, config=config
            )
            self._clients[key] = client
        return client

    def _kwargs(self, req: ChatRequest, dep: DeploymentSettings) -> dict[str, Any]:
        return request_to_converse(req.body, dep.model, self.profile.default_max_tokens or 4096)

    async def chat(
        self,
        req: ChatRequest,
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> ChatResult:
        client = self._client(dep, creds)
        kwargs = self._kwargs(req, dep)
        try:
            async with asyncio.timeout(timeout):
                data = await asyncio.to_thread(client.converse, **kwargs)
        except TimeoutError:
            raise UpstreamTimeout("upstream timed out") from None
        except Exception as exc:
            raise _map_error(exc) from None
        body = response_from_converse(data, dep.model)
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
        client = self._client(dep, creds)
        kwargs = self._kwargs(req, dep)
        try:
            async with asyncio.timeout(timeout):
                resp = await asyncio.to_thread(client.converse_stream, **kwargs)
        except TimeoutError:
            raise UpstreamTimeout("upstream timed out") from None
        except Exception as exc:
            raise _map_error(exc) from None
        stream = resp["stream"]
        events: Iterator[dict[str, Any]] = iter(stream)
        tr = ConverseEventsToChunks(dep.model)
        try:
            while True:
                try:
                    event = await asyncio.to_thread(next, events, _END)
                except Exception as exc:
                    raise _map_error(exc) from None
                if not isinstance(event, dict):
                    break
                for name in STREAM_ERRORS:
                    if name in event:
                        raise UpstreamError("upstream reported an error mid-stream")
                chunk = tr.feed(event)
                if chunk is not None:
                    yield chunk
            if not tr.stopped:
                raise UpstreamError("upstream ended the stream early", code="upstream_disconnected")
            if not tr.done:
                yield tr.usage_chunk()
        finally:
            await asyncio.to_thread(stream.close)

    async def embed(
        self,
        body: dict[str, Any],
        dep: DeploymentSettings,
        creds: Credentials,
        *,
        timeout: float,  # noqa: ASYNC109 - per-attempt budget
    ) -> EmbedResult:
        raise UpstreamError("embeddings through Bedrock are not supported", code="unsupported")

    async def aclose(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
