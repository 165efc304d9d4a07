"""Step: admit against quotas (reserve), then settle with real usage or release."""

from __future__ import annotations

from opsgate.gateway.call import GatewayCall
from opsgate.gateway.ports import QuotaGate


async def admit(call: GatewayCall, quota: QuotaGate, est_output: int) -> None:
    call.reservation = await quota.admit(
        call.principal, call.model_name, call.est_input_tokens + est_output, call.est_cost
    )


async def settle_or_release(call: GatewayCall, quota: QuotaGate) -> None:
    res, call.reservation = call.reservation, None
    if res is None:
        return
    if call.input_tokens or call.output_tokens:
        await quota.settle(res, call.input_tokens, call.output_tokens, call.cost)
    else:
        await quota.release(res)
