"""The governed tool pipeline (see ARCHITECTURE.md, "A tool call").

authenticate (caller) -> policy (tool, zone, principal) -> required roles -> validate arguments
against the tool's schema -> guard on arguments -> gate level (catalog, zone floor, policy
obligation): L0 execute | L1 execute + notify | L2 approval request, execute once approved |
L3 never by an AI (decision support instead) -> execute with the connector (timeout) -> guard
on the result -> audit before and after. Tool calls are authorised against the calling
principal, never against anything a model says.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator

from opsgate.approvals.models import ApprovalRequest
from opsgate.approvals.service import ApprovalService, NewApproval
from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.bus.base import EventBus
from opsgate.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from opsgate.guard.findings import SECRETS, ScanContext
from opsgate.guard.service import GuardService
from opsgate.identity.principal import Principal
from opsgate.policy.service import PolicyService
from opsgate.tools.catalog import Gate, ToolSpec, ZoneSpec
from opsgate.tools.connectors.base import CallContext, Connector, ToolResult
from opsgate.tools.executions import Executed, ExecutionStore
from opsgate.tools.loopcaps import LoopCaps
from opsgate.tools.resilience import BreakerOpen, Breakers, with_retries
from opsgate.tools.settings import ToolsSettings
from opsgate.tools.zone_overrides import ZoneCatalog
from opsgate.vault.service import VaultService

MAX_ARGS_BYTES = 64 * 1024
MAX_ARGS_DEPTH = 32
_ORDER = ("L0", "L1", "L2", "L3")


@dataclass
class CallOutcome:
    status: Literal["executed", "failed", "pending_approval", "decision_support"]
    tool: str
    gate: Gate
    reasons: list[str]
    result: Any = None
    truncated: bool = False
    approval_id: str | None = None
    findings: list[str] = field(default_factory=list)
    # Set for write tools: the recorded execution (undo takes this id).
    execution_id: str | None = None


def stored_outcome(
    req: ApprovalRequest, gate: Gate, reasons: list[str], findings: list[str] | None = None
) -> CallOutcome:
    """The one execution of an executed or failed approval request, as stored on it."""
    stored = req.result or {}
    return CallOutcome(
        "executed" if req.status == "executed" else "failed",
        req.tool,
        gate,
        reasons,
        stored.get("content"),
        bool(stored.get("truncated")),
        req.id,
        findings or [],
        stored.get("execution_id"),  # type: ignore[arg-type]
    )


def not_executed(req: ApprovalRequest, gate: Gate, reasons: list[str]) -> CallOutcome:
    """A request that ended without running (denied, expired, withdrawn)."""
    return CallOutcome(
        "failed",
        req.tool,
        gate,
        [*reasons, f"approval {req.status}: nothing was executed"],
        {"error": f"approval {req.status}", "approval_id": req.id},
        approval_id=req.id,
    )


def _safe(exc: Exception) -> str:
    """A short error text; the result guard redacts anything secret-shaped in it."""
    return str(exc)[:300]


def _depth(obj: Any, level: int = 0) -> int:
    if level > MAX_ARGS_DEPTH:
        return level
    if isinstance(obj, dict):
        return max([_depth(v, level + 1) for v in obj.values()] or [level])
    if isinstance(obj, list):
        return max([_depth(v, level + 1) for v in obj] or [level])
    return level


def validate_args(spec: ToolSpec, args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ValidationFailed("arguments must be a JSON object")
    if len(orjson.dumps(args)) > MAX_ARGS_BYTES or _depth(args) > MAX_ARGS_DEPTH:
        raise ValidationFailed(f"arguments exceed {MAX_ARGS_BYTES} bytes or depth {MAX_ARGS_DEPTH}")
    errors = sorted(
        Draft202012Validator(spec.input_schema).iter_errors(args), key=lambda e: list(e.path)
    )
    if errors:
        raise ValidationFailed(
            f"arguments do not match {spec.name}'s schema",
            errors=[
                {"field": "/".join(str(p) for p in e.path) or "(root)", "message": e.message}
                for e in errors[:20]
            ],
        )
    return args


class ToolService:
    def __init__(
        self,
        settings: ToolsSettings,
        zones: dict[str, ZoneSpec],
        connectors: list[Connector],
        *,
        policy: PolicyService,
        guard: GuardService | None,
        approvals: ApprovalService,
        audit: Auditor,
        bus: EventBus,
        vault: VaultService,
        zone_catalog: ZoneCatalog | None = None,
    ) -> None:
        self.settings, self.zones = settings, zones
        self.policy, self.guard, self.approvals = policy, guard, approvals
        self.audit, self.bus, self.vault = audit, bus, vault
        self.connectors = list(connectors)
        self.tools: dict[str, tuple[ToolSpec, Connector]] = {}
        self.breakers = Breakers(settings.breaker_failures, settings.breaker_open_seconds)
        self.executions = ExecutionStore(approvals.db)
        self.loop_caps = LoopCaps(settings.agent_calls_per_minute, settings.agent_repeat_limit)
        self.zone_catalog: ZoneCatalog | None = zone_catalog
        self.refresh_tools()

    def refresh_tools(self) -> None:
        """Rebuild the catalog from the connectors (federated upstreams change at run time)."""
        tools: dict[str, tuple[ToolSpec, Connector]] = {}
        for c in self.connectors:
            for spec in c.tools():
                tools[spec.name] = (spec, c)
        self.tools = tools

    async def zones_for(self, tenant: str) -> dict[str, ZoneSpec]:
        """The zone catalog with the tenant's overrides applied."""
        if self.zone_catalog is None:
            return self.zones
        return await self.zone_catalog.for_tenant(tenant)

    def _resource(
        self, spec: ToolSpec, zones: dict[str, ZoneSpec], args: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        res = {
            "kind": "tool",
            "name": spec.name,
            "zone": spec.zone,
            "process_area": spec.process_area,
            "risk": spec.risk,
            "gate": spec.effective_gate,
            "sensitivity": zones[spec.zone].sensitivity,
        }
        for key in ("namespace", "environment"):
            if args and isinstance(args.get(key), str):
                res[key] = args[key]
        return res

    async def visible(self, principal: Principal) -> list[ToolSpec]:
        """What `tools/list` shows: only tools the principal may call."""
        out = []
        zones = await self.zones_for(principal.tenant)
        for spec, _ in self.tools.values():
            d = await self.policy.decide(
                principal, "tool.call", self._resource(spec, zones), record=False
            )
            if d.allow and (
                not spec.required_roles or principal.has_role("admin", *spec.required_roles)
            ):
                out.append(spec)
        return out

    async def call(
        self,
        principal: Principal,
        name: str,
        args: Any,
        *,
        rationale: str = "",
        approval_id: str | None = None,
        trace_id: str | None = None,
        undo_of: str | None = None,
    ) -> CallOutcome:
        entry = self.tools.get(name)
        if entry is None:
            raise NotFound(f"unknown tool {name!r}")
        spec, connector = entry
        args = validate_args(spec, args)
        zones = await self.zones_for(principal.tenant)
        if principal.is_ai and approval_id is None:
            reason = self.loop_caps.check(principal.id, name, args)
            if reason:
                await self._audit(principal, spec, "tool.call", "denied", reason, {"cap": True})
                raise RateLimited(reason, retry_after=60)
        decision = await self.policy.decide(
            principal, "tool.call", self._resource(spec, zones, args), trace_id=trace_id
        )
        if not decision.allow:
            raise Forbidden("; ".join(decision.reasons))
        if spec.required_roles and not principal.has_role("admin", *spec.required_roles):
            raise Forbidden(f"{name} requires one of the roles {spec.required_roles}")
        findings = await self._guard_args(principal, spec, args)
        gate = max(
            spec.effective_gate,
            zones[spec.zone].default_gate,
            decision.obligations.gate,
            key=_ORDER.index,
        )
        reasons = list(decision.reasons)
        if approval_id is not None:
            req = await self.approvals.get(principal.tenant, approval_id)
            if req.requester != principal.id or req.tool != name:
                raise Conflict("this approval is for another call", code="binding_mismatch")
            if req.status == "approved":
                try:
                    await self.approvals.claim(
                        principal.tenant,
                        approval_id,
                        name,
                        args,
                        principal.id,
                        decision.bundle_revision,
                    )
                except Conflict as exc:
                    if not (exc.code or "").startswith("not_approved_"):
                        raise
                    # Claimed a moment ago by the runner (or another retry): report that one.
                    req = await self.approvals.get(principal.tenant, approval_id)
                    return self._settled_outcome(req, args, gate, reasons, findings)
                return await self._execute(
                    principal, spec, connector, args, gate, reasons, findings, approval_id, trace_id
                )
            return self._settled_outcome(req, args, gate, reasons, findings)
        if gate in ("L0", "L1") or (
            gate == "L3" and not principal.is_ai and principal.kind == "user"
        ):
            return await self._execute(
                principal, spec, connector, args, gate, reasons, findings, None, trace_id, undo_of
            )
        if gate == "L3":
            return CallOutcome(
                "decision_support",
                name,
                gate,
                [
                    *reasons,
                    "L3: an AI may not perform this operation; a person must do it as themselves",
                ],
                result=self._brief(spec, args, rationale),
                findings=findings,
            )
        preview = (
            await connector.dry_run(name, args, self._ctx(principal, spec))
            if spec.supports_dry_run
            else None
        )
        esc = self.settings.approval_escalate_seconds
        req = await self.approvals.request(
            principal,
            NewApproval(
                tool=name,
                arguments=args,
                rationale=rationale,
                zone=spec.zone,
                gate=gate,
                policy_revision=decision.bundle_revision,
                policy_reasons=reasons,
                approver_groups=list(decision.obligations.approver_groups),
                preview=preview,
                escalation_groups=tuple(self.settings.escalation_groups),
                escalate_after=timedelta(seconds=esc) if esc else None,
                ttl=timedelta(seconds=self.settings.approval_ttl_seconds),
            ),
        )
        return CallOutcome(
            "pending_approval", name, gate, reasons, approval_id=req.id, findings=findings
        )

    def _settled_outcome(
        self,
        req: ApprovalRequest,
        args: dict[str, Any],
        gate: Gate,
        reasons: list[str],
        findings: list[str],
    ) -> CallOutcome:
        """A retry with an approval id that is not (or no longer) executable.

        Pending: still held, nothing runs. Executed or failed: the one execution's stored
        result, if the retry binds to what was approved (idempotent retries). Anything else
        is a conflict with the reason.
        """
        digest = self.approvals.binding(req.tool, args, req.requester, req.policy_revision)
        if req.status in ("pending", "executed", "failed", "executing") and digest != req.digest:
            raise Conflict("this call differs from what was approved", code="binding_mismatch")
        if req.status in ("pending", "executing"):
            return CallOutcome(
                "pending_approval", req.tool, gate, reasons, approval_id=req.id, findings=findings
            )
        if req.status in ("executed", "failed"):
            return stored_outcome(req, gate, reasons, findings)
        raise Conflict(f"approval request is {req.status}", code=f"not_approved_{req.status}")

    def _ctx(self, principal: Principal, spec: ToolSpec) -> CallContext:
        async def resolve(ref: str) -> str:
            return (await self.vault.resolve(principal.tenant, ref)).reveal()

        return CallContext(principal, principal.tenant, resolve, spec.timeout_seconds)

    def _brief(self, spec: ToolSpec, args: dict[str, Any], rationale: str) -> dict[str, Any]:
        return {
            "operation": spec.title,
            "tool": spec.name,
            "arguments": args,
            "zone": spec.zone,
            "risk": spec.risk,
            "rationale": rationale,
            "next_step": "a person with the required role performs this in the console or CLI",
        }

    async def _guard_args(
        self, principal: Principal, spec: ToolSpec, args: dict[str, Any]
    ) -> list[str]:
        if self.guard is None:
            return []
        scan = await self.guard.scan_json(
            principal.tenant, args, ScanContext(direction="tool_args")
        )
        types = sorted({f.type for _, f in scan.findings()})
        if principal.is_ai and any(t in SECRETS for t in types):
            await self._audit(
                principal,
                spec,
                "tool.call",
                "denied",
                "credential in tool arguments",
                {"findings": types},
            )
            raise Forbidden(
                "tool arguments contain a credential; agents may not pass secrets to tools"
            )
        return types

    async def _execute(
        self,
        principal: Principal,
        spec: ToolSpec,
        connector: Connector,
        args: dict[str, Any],
        gate: Gate,
        reasons: list[str],
        findings: list[str],
        approval_id: str | None,
        trace_id: str | None,
        undo_of: str | None = None,
    ) -> CallOutcome:
        meta = {"gate": gate, "approval_id": approval_id, "arg_findings": findings}
        await self._audit(
            principal, spec, "tool.call.start", "pending", "; ".join(reasons), meta, trace_id
        )
        result = await self._run(principal, spec, connector, args)
        result = await self._guard_result(principal, result)
        status: Literal["executed", "failed"] = "failed" if result.is_error else "executed"
        await self._audit(
            principal,
            spec,
            "tool.call",
            "failure" if result.is_error else "success",
            "; ".join(reasons),
            {**meta, **result.meta},
            trace_id,
        )
        execution_id = None
        if spec.risk != "read":
            prior = result.meta.get("prior")
            execution_id = await self.executions.record(
                Executed(
                    spec,
                    principal,
                    args,
                    gate,
                    not result.is_error,
                    prior if isinstance(prior, dict) else None,
                    approval_id,
                    undo_of,
                )
            )
        if approval_id:
            await self.approvals.complete(
                principal.tenant,
                approval_id,
                ok=not result.is_error,
                outcome=status,
                result={
                    "content": result.content,
                    "truncated": result.truncated,
                    "execution_id": execution_id,
                },
            )
        if gate == "L1" and not result.is_error:
            await self.bus.publish(
                "tool.executed",
                {
                    "tenant": principal.tenant,
                    "tool": spec.name,
                    "actor": principal.id,
                    "zone": spec.zone,
                    "execution_id": execution_id,
                    # One-click undo: POST /api/v1/tools/executions/{execution_id}/undo
                    "undo": spec.inverse.tool if spec.inverse else None,
                },
            )
        return CallOutcome(
            status,
            spec.name,
            gate,
            reasons,
            result.content,
            result.truncated,
            approval_id,
            findings,
            execution_id,
        )

    async def _run(
        self, principal: Principal, spec: ToolSpec, connector: Connector, args: dict[str, Any]
    ) -> ToolResult:
        """The connector call: breaker per target, timeout, retries for reads only."""
        target_of = getattr(connector, "target", None)
        key = f"{connector.name}:{target_of(spec.name, args) if target_of else '*'}"
        try:
            self.breakers.before(key)
        except BreakerOpen as exc:
            return ToolResult({"error": str(exc)}, is_error=True, meta={"breaker": "open"})
        ctx = self._ctx(principal, spec)

        async def attempt() -> ToolResult:
            async with asyncio.timeout(spec.timeout_seconds):
                return await connector.call(spec.name, args, ctx)

        retryable = spec.risk == "read" or spec.idempotent
        try:
            result = await with_retries(
                attempt,
                attempts=self.settings.retry_attempts if retryable else 1,
                backoff=self.settings.retry_backoff_seconds,
                retry_on=(TimeoutError, OSError, ConnectionError),
            )
        except TimeoutError:
            self.breakers.failure(key)
            return ToolResult(
                {"error": f"timed out after {spec.timeout_seconds:g} s"}, is_error=True
            )
        except (ValidationFailed, Forbidden):
            raise
        except Exception as exc:
            self.breakers.failure(key)
            return ToolResult({"error": type(exc).__name__, "detail": _safe(exc)}, is_error=True)
        if result.meta.get("target_failed"):
            self.breakers.failure(key)
        else:
            self.breakers.success(key)
        return result

    async def _guard_result(self, principal: Principal, result: ToolResult) -> ToolResult:
        raw = orjson.dumps(result.content)
        if len(raw) > self.settings.result_max_bytes:
            result = ToolResult(
                {"truncated_json": raw[: self.settings.result_max_bytes].decode(errors="ignore")},
                result.is_error,
                True,
                result.meta,
            )
        if self.guard is None:
            return result
        ctx = ScanContext(direction="tool_result")
        scan, redacted, _ = await self.guard.redact_json(principal.tenant, result.content, ctx)
        result.meta["result_findings"] = sorted({f.type for _, f in scan.findings()})
        result.meta["injection_score"] = round(scan.injection_score, 3)
        return ToolResult(redacted, result.is_error, result.truncated, result.meta)

    async def _audit(
        self,
        p: Principal,
        spec: ToolSpec,
        action: str,
        outcome: Any,
        reason: str,
        payload: dict[str, Any],
        trace_id: str | None = None,
    ) -> None:
        await self.audit.emit(
            AuditEventIn(
                tenant=p.tenant,
                actor=p.id,
                action=action,
                resource=f"tool:{spec.name}",
                outcome=outcome,
                reason=reason[:1000],
                payload=payload,
                trace_id=trace_id,
            )
        )
