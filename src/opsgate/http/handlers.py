"""Exception handlers: OpenAI error shape on /v1, problem+json elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from opsgate.errors import (
    BadRequest,
    NotFound,
    OpsGateError,
    ValidationFailed,
    openai_body,
    problem_body,
)
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.http")

_STATUS_ERRORS: dict[int, type[OpsGateError]] = {404: NotFound, 400: BadRequest}


def render_error(request: Request, err: OpsGateError) -> Response:
    path = request.url.path
    if path.startswith("/v1/"):
        return JSONResponse(openai_body(err), status_code=err.status, headers=err.headers)
    trace_id = getattr(request.state, "trace_id", None)
    return JSONResponse(
        problem_body(err, path, trace_id),
        status_code=err.status,
        headers=err.headers,
        media_type="application/problem+json",
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        out.append({"field": ".".join(loc), "message": e.get("msg", "invalid"), "type": e["type"]})
    return out


def install_handlers(app: FastAPI) -> None:
    async def on_opsgate(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OpsGateError)
        return render_error(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        if request.url.path.startswith("/v1/"):
            first = errors[0] if errors else {"field": "", "message": "invalid request"}
            err: OpsGateError = BadRequest(
                f"{first['field']}: {first['message']}", param=first["field"] or None
            )
            err.code = "invalid_request"
        else:
            err = ValidationFailed("request failed validation", errors=errors)
        return render_error(request, err)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cls = _STATUS_ERRORS.get(exc.status_code, OpsGateError)
        err = cls(str(exc.detail) if exc.detail else None)
        err.status = exc.status_code
        if exc.status_code == 405:
            err.code, err.title = "method_not_allowed", "Method not allowed"
            err.detail = err.title
        return render_error(request, err)

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # The caller went away mid-request: nobody reads this answer, and it is not a
        # server fault, so it is logged as what it is rather than as an unhandled error.
        log.info("client disconnected", path=request.url.path)
        err = BadRequest("client closed the request", code="client_disconnected")
        err.status = 499
        return render_error(request, err)

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return render_error(request, OpsGateError())

    app.add_exception_handler(OpsGateError, on_opsgate)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_unhandled)
