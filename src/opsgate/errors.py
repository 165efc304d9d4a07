"""One error tree for OpsGate.

`/v1/*` answers in OpenAI's error shape, everything else in RFC 9457 problem+json.
Messages here reach clients: they must never carry secrets or internal detail.
"""

from __future__ import annotations

from typing import Any


class OpsGateError(Exception):
    """Base of every error OpsGate raises on purpose."""

    status = 500
    code = "internal_error"
    title = "Internal error"
    openai_type = "server_error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.param = param
        super().__init__(self.detail)


class BadRequest(OpsGateError):
    status = 400
    code = "bad_request"
    title = "Bad request"
    openai_type = "invalid_request_error"


class ValidationFailed(OpsGateError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"
    openai_type = "invalid_request_error"


class Unauthenticated(OpsGateError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"
    openai_type = "authentication_error"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(OpsGateError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    openai_type = "permission_error"


class NotFound(OpsGateError):
    status = 404
    code = "not_found"
    title = "Not found"
    openai_type = "not_found_error"


class Conflict(OpsGateError):
    status = 409
    code = "conflict"
    title = "Conflict"
    openai_type = "invalid_request_error"


class PayloadTooLarge(OpsGateError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"
    openai_type = "invalid_request_error"


class RateLimited(OpsGateError):
    status = 429
    code = "rate_limited"
    title = "Rate limit exceeded"
    openai_type = "rate_limit_error"

    def __init__(self, detail: str | None = None, *, retry_after: float = 1.0, **kw: Any) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        kw.setdefault("headers", {"Retry-After": str(self.retry_after)})
        super().__init__(detail, **kw)


class UpstreamError(OpsGateError):
    """An upstream (model provider, connector, MCP server) failed; carries its status and body."""

    status = 502
    code = "upstream_error"
    title = "Upstream error"
    openai_type = "api_error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        upstream_status: int | None = None,
        upstream_body: str | None = None,
        **kw: Any,
    ) -> None:
        self.upstream_status = upstream_status
        # Kept for logs/diagnostics after redaction by the caller; never sent to clients.
        self.upstream_body = upstream_body
        super().__init__(detail, **kw)


class Unavailable(OpsGateError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
    openai_type = "server_error"


class ConfigError(OpsGateError):
    """Configuration is invalid; `problems` holds (key path, reason) pairs."""

    code = "config_error"
    title = "Invalid configuration"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        text = "; ".join(f"{path}: {reason}" for path, reason in problems)
        super().__init__(text)


def problem_body(err: OpsGateError, instance: str, trace_id: str | None) -> dict[str, Any]:
    """RFC 9457 problem details for an error."""
    body: dict[str, Any] = {
        "type": f"https://opsgate.dev/problems/{err.code}",
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
        "instance": instance,
        "code": err.code,
    }
    if err.errors:
        body["errors"] = err.errors
    if trace_id:
        body["trace_id"] = trace_id
    return body


def openai_body(err: OpsGateError) -> dict[str, Any]:
    """OpenAI's error shape, which the official SDKs parse."""
    return {
        "error": {
            "message": err.detail,
            "type": err.openai_type,
            "param": err.param,
            "code": err.code,
        }
    }
