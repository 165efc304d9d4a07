"""The Kubernetes connector's access layer: one scope's API session, errors, name checks.

Every request goes through `Session` (worker thread, timeout, per-call bearer token, response
size cap) and fails as `ApiError`, which the connector turns into an error result. Names are
checked against RFC 1123 before any request is made.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsgate.errors import ValidationFailed
from opsgate.tools.connectors.kubernetes_settings import DNS_LABEL
from opsgate.tools.connectors.kubernetes_summaries import MAX_MESSAGE

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SELECTOR = re.compile(r"^[A-Za-z0-9._/=!,() -]{1,256}$")
MAX_LOG_LINES = 2000
MAX_LOG_BYTES = 128 * 1024
MAX_JSON_BYTES = 32 * 1024 * 1024
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
# argument -> (pattern, what it must be, max length)
_NAMES: dict[str, tuple[re.Pattern[str], str, int]] = {
    "namespace": (DNS_LABEL, "an RFC 1123 DNS label", 63),
    "container": (DNS_LABEL, "an RFC 1123 DNS label", 63),
    "pod": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "deployment": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "node": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "object_name": (DNS_SUBDOMAIN, "an RFC 1123 DNS subdomain", 253),
    "label_selector": (SELECTOR, "a label selector (letters, digits and . _ / = ! , ( ) -)", 256),
}


class ApiError(Exception):
    """A failed Kubernetes request; becomes an error result, not an exception, at the edge."""

    def __init__(
        self, message: str, status: int | None = None, reason: str = "", *, down: bool = False
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.reason = message, status, reason
        # the API server is unreachable or failing (not: it refused this request)
        self.down = down or (status is not None and status >= 500)

    def content(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_api(cls, exc: ApiException) -> ApiError:
        status = int(exc.status) if exc.status else None
        message, reason = str(exc.reason or "request failed"), ""
        try:
            body = orjson.loads(exc.body or b"")
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):  # a metav1.Status
            message = str(body.get("message") or message)
            reason = str(body.get("reason") or "")
        return cls(f"Kubernetes API: {message[:MAX_MESSAGE]}", status, reason)


def _fetch(fn: Callable[..., Any], cap: int, kw: dict[str, Any]) -> tuple[bytes, bool]:
    resp = fn(_preload_content=False, **kw)
    try:
        data: bytes = resp.read(cap + 1)
        cut = len(data) > cap
        if cut:
            resp.close()  # do not read (or reuse) the rest
        return data[:cap], cut
    finally:
        resp.release_conn()


@dataclass(frozen=True)
class Session:
    """One scope's client plus, for token scopes, the per-call bearer token."""

    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api
    auth: dict[str, str] | None
    timeout: float
    host: str

    async def raw(self, fn: Callable[..., Any], cap: int, **kw: Any) -> tuple[bytes, bool]:
        kw["_request_timeout"] = self.timeout
        if self.auth is not None:
            kw["_request_auth"] = self.auth
        try:
            return await asyncio.to_thread(_fetch, fn, cap, kw)
        except ApiException as exc:
            raise ApiError.from_api(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(
                f"cannot reach the Kubernetes API server at {self.host} ({type(exc).__name__})",
                down=True,
            ) from None

    async def json(self, fn: Callable[..., Any], **kw: Any) -> dict[str, Any]:
        data, cut = await self.raw(fn, MAX_JSON_BYTES, **kw)
        if cut:
            raise ApiError(f"response larger than {MAX_JSON_BYTES} bytes; narrow the request")
        obj = orjson.loads(data)
        if not isinstance(obj, dict):
            raise ApiError("Kubernetes API answered with something other than an object")
        return obj


def check_names(args: dict[str, Any]) -> None:
    """Refuse any name that is not an RFC 1123 label/subdomain (before any request)."""
    for key, (pattern, what, max_len) in _NAMES.items():
        if key not in args:
            continue
        value = args[key]
        if not isinstance(value, str) or len(value) > max_len or not pattern.match(value):
            shown = repr(value)[:80]
            msg = f"{key} {shown} is not {what} of at most {max_len} characters"
            raise ValidationFailed(msg, errors=[{"field": key, "message": msg}])
