"""The AWS connector's access layer: base credentials, assumed roles, one tool call's clients.

`Calls` makes the AWS requests of one tool call with one role's temporary credentials in one
region (boto3 is synchronous: each request runs in a worker thread); reads are retried by
botocore, mutating calls never.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from opsgate.errors import ValidationFailed
from opsgate.tools.connectors.aws_settings import AwsSettings


@dataclass
class Assumed:
    """Temporary credentials of one role, and the clients built with them."""

    key: str
    secret: str
    token: str
    expires: float
    clients: dict[tuple[str, str, int, float], Any] = field(default_factory=dict)


def base_credentials(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
            return {
                k: str(data[k])
                for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
                if data.get(k)
            }
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            pass
    elif ":" in text:
        key, _, secret = text.partition(":")
        return {"aws_access_key_id": key, "aws_secret_access_key": secret}
    raise ValidationFailed(
        "tools.aws.credentials must hold ACCESS_KEY_ID:SECRET or JSON with aws_access_key_id "
        "and aws_secret_access_key"
    )


def client_error(exc: Exception) -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error") or {}
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        message = str(err.get("Message", ""))[:300]
        return {"error": err.get("Code", "ClientError"), "message": message, "status": status}
    if isinstance(exc, BotoCoreError):
        return {"error": type(exc).__name__}
    return None


class Calls:
    """AWS requests of one tool call: one role's credentials, one region."""

    def __init__(
        self, settings: AwsSettings, creds: Assumed, region: str, read: bool, t: float
    ) -> None:
        self.settings, self.creds, self.region, self.read = settings, creds, region, read
        self.timeout = t

    def _client(self, service: str) -> Any:
        attempts = 3 if self.read else 1  # mutating calls are never retried
        key = (service, self.region, attempts, self.timeout)
        client = self.creds.clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=self.creds.key,
                aws_secret_access_key=self.creds.secret,
                aws_session_token=self.creds.token,
                region_name=self.region,
            )
            config = Config(
                connect_timeout=self.settings.connect_timeout_seconds,
                read_timeout=self.timeout,
                retries={"max_attempts": attempts, "mode": "standard"},
            )
            client = session.client(service, endpoint_url=self.settings.endpoint_url, config=config)
            self.creds.clients[key] = client
        return client

    async def __call__(self, api: str, method: str, /, **kwargs: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            result: dict[str, Any] = getattr(self._client(api), method)(**kwargs)
            return result

        return await asyncio.to_thread(run)


class AssumeFailed(Exception):
    """STS refused to assume a tool's role."""

    def __init__(self, arn: str, err: dict[str, Any]) -> None:
        self.arn, self.err = arn, err
        super().__init__(arn)

    def content(self) -> dict[str, Any]:
        return {"error": "assume_role_failed", "role": self.arn, "cause": self.err["error"]}
