"""FastAPI dependency shortcuts for the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from opsgate.errors import Unavailable
from opsgate.gateway.service import GatewayService


async def get_gateway(request: Request) -> GatewayService:
    # async on purpose: a sync dependency costs a threadpool hop on every model request
    gw: GatewayService | None = request.app.state.runtime.gateway
    if gw is None:
        raise Unavailable("the model gateway is disabled", code="gateway_disabled")
    return gw


GatewayDep = Annotated[GatewayService, Depends(get_gateway)]
