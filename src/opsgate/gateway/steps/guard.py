"""Step: scan the prompt; the findings set the data classification and may rewrite it."""

from __future__ import annotations

from typing import Any

from opsgate.errors import Forbidden
from opsgate.gateway.call import GatewayCall
from opsgate.gateway.ports import PromptGuard, ResponseFilter


async def guard_prompt(call: GatewayCall, guard: PromptGuard) -> None:
    if call.operation == "embeddings":
        raw = call.body.get("input")
        texts = [raw] if isinstance(raw, str) else [t for t in raw or () if isinstance(t, str)]
        messages: list[dict[str, Any]] = [{"role": "user", "content": t} for t in texts]
    else:
        messages = call.body["messages"]
    verdict = await guard.inspect(
        call.principal, call.model_name, messages, call.guard_actions or None
    )
    call.classification = verdict.classification
    call.findings = list(verdict.findings)
    if verdict.blocked:
        call.reasons.append(f"guard: {verdict.reason}")
        raise Forbidden(
            f"the request was blocked by the content guard: {verdict.reason}",
            code="guard_blocked",
        )
    if verdict.classification == "restricted":
        call.in_tenant_only = True
        call.reasons.append("restricted data: in-tenant deployments only")
    if verdict.messages is not None:
        if call.operation == "embeddings":
            texts = [str(m.get("content") or "") for m in verdict.messages]
            call.body = {**call.body, "input": texts[0] if isinstance(raw, str) else texts}
        else:
            call.body = {**call.body, "messages": verdict.messages}
    call.response_filter = verdict.response_filter


def filter_completion(body: dict[str, Any], flt: ResponseFilter | None) -> None:
    """Apply the response filter to a whole chat completion, in place."""
    if flt is None:
        return
    for choice in body.get("choices") or ():
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("content"), str):
            msg["content"] = flt.text(msg["content"])
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                fn["arguments"] = flt.text(fn["arguments"])
