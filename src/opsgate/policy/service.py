"""PolicyService: the one decision point every component asks.

`decide(principal, action, resource, context)` validates the input, evaluates the bundle,
applies precedence defensively (deny > require approval > allow; default deny), writes a
compact decision record to the audit trail and returns a typed `Decision`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn
from opsgate.identity.principal import Principal
from opsgate.policy.bundle import BundleError, probe, read_bundle, resolve_dir
from opsgate.policy.engines import EmbeddedEngine, OpaEngine, PolicyEngine, PolicyEvaluationError
from opsgate.policy.schemas import DECISION_INPUT, Decision, GateLevel, Obligations
from opsgate.policy.settings import PolicySettings
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.policy")
GATES: tuple[GateLevel, ...] = ("L0", "L1", "L2", "L3")


def input_digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _obligations(o: dict[str, Any], gate: GateLevel) -> Obligations:
    max_tokens = o.get("max_tokens")
    redact = o.get("redact")
    groups = o.get("approver_groups")
    return Obligations(
        gate=gate,
        redact={str(k): str(v) for k, v in redact.items()} if type(redact) is dict else {},
        in_tenant_only=o.get("in_tenant_only") is True,
        max_tokens=max_tokens if type(max_tokens) is int and max_tokens > 0 else None,
        approver_groups=tuple(sorted(map(str, groups))) if type(groups) is list else (),
        alert=o.get("alert") is True,
    )


def interpret(result: dict[str, Any], revision: str, digest: str) -> Decision:
    """Precedence in Python too: only a literal `allow: true` allows; no reasons, no allow; a
    gate level that is not one of L0-L3 denies (a bundle bug must not skip an approval)."""
    reasons = result.get("reasons")
    reasons_t = tuple(map(str, reasons)) if type(reasons) is list else ()
    raw = result.get("obligations")
    o = raw if type(raw) is dict else {}
    gate: GateLevel = "L0"
    raw_gate = o.get("gate")
    if raw_gate in GATES:
        gate = raw_gate
    elif raw_gate is not None:
        return Decision(
            False,
            (f"policy returned an invalid gate level {str(raw_gate)[:20]!r}: denied",),
            Obligations(),
            revision,
            digest,
        )
    allow = result.get("allow") is True and bool(reasons_t)
    if not reasons_t:
        reasons_t = ("policy gave no reason: denied",)
    return Decision(allow, reasons_t, _obligations(o, gate), revision, digest)


_CLOCK: list[Any] = [None, ("", 0, 0)]


def _clock() -> tuple[str, int, int]:
    """The decision clock to the second, (ISO time, UTC hour, ISO weekday): formatting a
    datetime for every decision cost ~2% of one, and policies reason in hours and days."""
    second = int(time.time())
    if _CLOCK[0] != second:
        now = datetime.fromtimestamp(second, UTC)
        _CLOCK[0], _CLOCK[1] = second, (now.isoformat(), now.hour, now.isoweekday())
    cached: tuple[str, int, int] = _CLOCK[1]
    return cached


class PolicyService:
    def __init__(
        self, settings: PolicySettings, audit: Auditor, engine: PolicyEngine | None = None
    ) -> None:
        self.settings = settings
        self.audit = audit
        self.engine: PolicyEngine = engine or self._initial_engine()
        self.loaded_at = datetime.now(UTC)
        self.last_error: str | None = None
        self._mtimes: dict[str, float] = {}
        self._watcher: asyncio.Task[None] | None = None

    def _initial_engine(self) -> PolicyEngine:
        if self.settings.backend == "opa":
            if not self.settings.opa_url.startswith(("http://", "https://")):
                raise BundleError(
                    [("policy.opa_url", "an http(s) URL is required for backend=opa")]
                )
            return OpaEngine(
                self.settings.opa_url, self.settings.opa_path, self.settings.timeout_seconds
            )
        bundle = read_bundle(
            resolve_dir(self.settings.bundle_dir),
            self.settings.max_file_bytes,
            self.settings.max_lines,
        )
        return EmbeddedEngine(bundle)

    @property
    def revision(self) -> str:
        return self.engine.revision

    async def start(self) -> None:
        if self.settings.backend == "embedded":
            self._mtimes = self._scan()
            self._watcher = asyncio.create_task(self._watch(), name="policy-reload")

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.engine.aclose()

    # --- decisions ----------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        action: str,
        resource: dict[str, Any],
        context: dict[str, Any] | None = None,
        *,
        record: bool = True,
        trace_id: str | None = None,
    ) -> Decision:
        ctx = dict(context or {})
        stamp, hour, weekday = _clock()
        ctx.setdefault("time", stamp)
        ctx.setdefault("hour", hour)
        ctx.setdefault("weekday", weekday)
        doc = {
            "principal": principal.as_policy_input(),
            "action": action,
            "resource": resource,
            "context": ctx,
        }
        decision = await self.decide_document(doc)
        if record:
            await self._record(principal.tenant, principal.id, action, resource, decision, trace_id)
        return decision

    async def decide_document(self, doc: dict[str, Any]) -> Decision:
        """Evaluate a raw input document (simulate, CLI). Never raises for bad input."""
        digest = input_digest(doc)
        try:
            DECISION_INPUT.validate_python(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            return Decision(
                False,
                (f"invalid input: {field}: {first['msg']}",),
                Obligations(),
                self.revision,
                digest,
            )
        try:
            result = await self.engine.evaluate(doc)
        except PolicyEvaluationError as exc:
            return await self._failed(doc, digest, str(exc))
        return interpret(result, self.revision, digest)

    async def _failed(self, doc: dict[str, Any], digest: str, error: str) -> Decision:
        action = str(doc.get("action", ""))
        fail_open = action in self.settings.fail_open_actions
        mode = "fail open" if fail_open else "fail closed"
        log.error("policy evaluation failed", action=action, error=error, mode=mode)
        await self.audit.emit(
            AuditEventIn(
                tenant=str(doc.get("principal", {}).get("tenant") or "default"),
                actor="system",
                action="policy.alert",
                resource=f"policy:{self.revision}",
                outcome="error",
                reason=f"evaluation failed ({mode}): {error[:300]}",
            )
        )
        reason = "policy evaluation failed: " + (
            "allowed by fail-open configuration" if fail_open else "denied (fail closed)"
        )
        return Decision(fail_open, (reason,), Obligations(), self.revision, digest, error=True)

    async def _record(
        self,
        tenant: str,
        actor: str,
        action: str,
        resource: dict[str, Any],
        d: Decision,
        trace_id: str | None,
    ) -> None:
        await self.audit.emit(
            AuditEventIn(
                tenant=tenant,
                actor=actor,
                action="policy.decision",
                resource=f"{action}:{resource.get('kind', '?')}/{resource.get('name', '?')}",
                outcome="allowed" if d.allow else "denied",
                reason="; ".join(d.reasons)[:1000],
                payload={
                    "input_digest": d.input_digest,
                    "bundle_revision": d.bundle_revision,
                    "allow": d.allow,
                    "reasons": list(d.reasons),
                    "obligations": d.obligations.as_dict(),
                },
                trace_id=trace_id,
            )
        )

    # --- hot reload ---------------------------------------------------------------------

    def _scan(self) -> dict[str, float]:
        root = resolve_dir(self.settings.bundle_dir)
        return {
            str(p): p.stat().st_mtime for p in root.rglob("*") if p.suffix in {".rego", ".json"}
        }

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_seconds)
            try:
                current = self._scan()
            except OSError:
                continue
            if current != self._mtimes:
                self._mtimes = current
                await self.reload()

    async def reload(self) -> bool:
        """Load the bundle again; on any problem keep serving the previous revision."""
        s = self.settings
        try:
            bundle = read_bundle(resolve_dir(s.bundle_dir), s.max_file_bytes, s.max_lines)
            if bundle.revision == self.revision:
                return False
            engine = EmbeddedEngine(bundle)
            await asyncio.to_thread(
                probe, bundle, s.probe_timeout_seconds, s.max_file_bytes, s.max_lines
            )
        except BundleError as exc:
            where, what = exc.problems[0]
            self.last_error = f"{where}: {what}"
            log.error(
                "policy bundle rejected; previous revision keeps serving", where=where, error=what
            )
            await self.audit.emit(
                AuditEventIn(
                    tenant="default",
                    actor="system",
                    action="policy.alert",
                    resource=f"policy:{self.revision}",
                    outcome="error",
                    reason=f"bundle rejected: {where}: {what}"[:1000],
                )
            )
            return False
        old = self.engine
        self.engine = engine  # one assignment: requests see either the old or the new engine
        self.loaded_at = datetime.now(UTC)
        self.last_error = None
        await old.aclose()
        log.info("policy bundle loaded", revision=engine.revision)
        await self.audit.emit(
            AuditEventIn(
                tenant="default",
                actor="system",
                action="policy.reload",
                resource=f"policy:{engine.revision}",
                outcome="success",
            )
        )
        return True
