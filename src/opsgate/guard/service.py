"""The guard as a runtime service: per-tenant rule sets, NER, rule storage, events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select

from opsgate.audit.base import Auditor
from opsgate.audit.schemas import AuditEventIn, Outcome
from opsgate.bus.base import EventBus
from opsgate.db.engine import Database
from opsgate.errors import NotFound, ValidationFailed
from opsgate.guard.apply import Applied
from opsgate.guard.core import Guard
from opsgate.guard.custom import CustomRule, check_rules, load_yaml_rules
from opsgate.guard.detector import Detector
from opsgate.guard.findings import ScanContext, ScanResult
from opsgate.guard.jsonscan import JsonScan, apply_json, scan_json
from opsgate.guard.models import GuardRuleRow
from opsgate.guard.ner import NerDetector, NerUnavailable
from opsgate.guard.policy import Action
from opsgate.guard.pseudonym import PseudonymVault
from opsgate.guard.settings import GuardSettings
from opsgate.telemetry.logging import get_logger

log = get_logger("opsgate.guard")

RULES_TOPIC = "guard.rules.changed"


def guard_hash_key(secret_key: bytes) -> bytes:
    """The `hash` action's key, derived so it is never the instance secret itself."""
    return hmac.new(secret_key, b"opsgate.guard.hash.v1", hashlib.sha256).digest()


@dataclass(slots=True)
class _Cached:
    expires: float
    fingerprint: bytes
    guard: Guard


def load_ner(settings: GuardSettings) -> tuple[list[Detector], str | None]:
    """The NER detector if enabled and installed; otherwise why it is off."""
    if not settings.ner.enabled:
        return [], None
    try:
        return [NerDetector(settings.ner)], None
    except NerUnavailable as exc:
        if settings.ner.required:
            raise
        log.warning("guard NER is off", reason=str(exc))
        return [], f"ner: off ({exc})"


class GuardService:
    """Builds and caches one `Guard` per tenant (built-in + YAML + API rules)."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        hash_key: bytes,
        db: Database | None = None,
        audit: Auditor | None = None,
        bus: EventBus | None = None,
        detectors: Sequence[Detector] = (),
        ner_note: str | None = None,
    ) -> None:
        self.settings = settings
        self.hash_key = hash_key
        self.db = db
        self.audit = audit
        self.bus = bus
        self.detectors = tuple(detectors)
        self.ner_note = ner_note
        self.base = self._build([], "default")
        self._cache: dict[str, _Cached] = {}
        # One rule load per tenant at a time; bumped generations discard loads that a rule
        # change overtook.
        self._loading: dict[str, asyncio.Future[Guard]] = {}
        self._generation: dict[str, int] = {}
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        settings: GuardSettings,
        *,
        hash_key: bytes,
        db: Database | None = None,
        audit: Auditor | None = None,
        bus: EventBus | None = None,
    ) -> GuardService:
        # Loading a spaCy model takes seconds: keep it off the event loop.
        detectors, note = await asyncio.to_thread(load_ner, settings)
        svc = cls(
            settings, hash_key=hash_key, db=db, audit=audit, bus=bus,
            detectors=detectors, ner_note=note,
        )  # fmt: skip
        if bus is not None:
            svc._watch = asyncio.create_task(svc._watch_rules(bus))
        return svc

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)

    async def _watch_rules(self, bus: EventBus) -> None:
        async for event in bus.subscribe(RULES_TOPIC):
            self._invalidate(str(event.get("tenant", "")))

    def _invalidate(self, tenant: str) -> None:
        self._cache.pop(tenant, None)
        self._loading.pop(tenant, None)
        self._generation[tenant] = self._generation.get(tenant, 0) + 1

    def ready(self) -> str:
        return "ok"

    def _build(self, custom: Sequence[CustomRule], tenant: str) -> Guard:
        return Guard(
            self.settings, hash_key=self.hash_key, custom=custom, tenant=tenant,
            detectors=self.detectors, ner_note=self.ner_note,
        )  # fmt: skip

    # --- per-tenant guards ------------------------------------------------------------

    async def guard_for(self, tenant: str) -> Guard:
        now = time.monotonic()
        hit = self._cache.get(tenant)
        if hit is not None and hit.expires > now:
            return hit.guard
        # Callers arriving while the rules are read share that one read (under load, every
        # request in that window used to query the database again); an expired entry keeps
        # serving until the read is done.
        loading = self._loading.get(tenant)
        if loading is None:
            loading = asyncio.ensure_future(self._load(tenant, hit))
            self._loading[tenant] = loading
            loading.add_done_callback(lambda f: self._loaded(tenant, f))
        if hit is not None and not loading.done():
            return hit.guard
        return await asyncio.shield(loading)

    def _loaded(self, tenant: str, done: asyncio.Future[Guard]) -> None:
        if self._loading.get(tenant) is done:
            del self._loading[tenant]
        if not done.cancelled():
            done.exception()  # retrieved: the callers that awaited it may all have gone

    async def _load(self, tenant: str, hit: _Cached | None) -> Guard:
        generation = self._generation.get(tenant, 0)
        custom = await self.custom_rules(tenant)
        fp = orjson.dumps([r.model_dump() for r in custom], option=orjson.OPT_SORT_KEYS)
        expires = time.monotonic() + self.settings.rules_cache_seconds
        if hit is not None and hit.fingerprint == fp:
            guard = hit.guard
        else:
            guard = (
                self.base if not custom else await asyncio.to_thread(self._build, custom, tenant)
            )
        if self._generation.get(tenant, 0) == generation:
            self._cache[tenant] = _Cached(expires, fp, guard)
        return guard

    async def custom_rules(self, tenant: str) -> list[CustomRule]:
        """YAML rules (global + tenant file) then API rules; an API rule replaces a YAML
        rule of the same name."""
        rules: dict[str, CustomRule] = {}
        if self.settings.rules_dir is not None:
            yaml_rules = await asyncio.to_thread(
                load_yaml_rules, self.settings.rules_dir, tenant, self.settings
            )
            rules.update((r.name, r) for r in yaml_rules)
        rules.update((r.name, r) for r in await self.stored_rules(tenant))
        return list(rules.values())

    # --- scanning ---------------------------------------------------------------------

    async def _run(self, text_len: int, fn: Any, *args: Any) -> Any:
        # Small inputs inline: a thread hop costs more than scanning a few KiB (measured on
        # the tool path: two hops per call were ~8% of an MCP tool call's CPU).
        if text_len > self.settings.thread_above_chars:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def scan(self, tenant: str, text: str, ctx: ScanContext) -> ScanResult:
        guard = await self.guard_for(tenant)
        result: ScanResult = await self._run(len(text), guard.scan, text, ctx)
        return result

    async def redact(
        self,
        tenant: str,
        text: str,
        ctx: ScanContext,
        actions: Mapping[str, Action] | None = None,
        vault: PseudonymVault | None = None,
    ) -> tuple[ScanResult, Applied]:
        guard = await self.guard_for(tenant)
        out: tuple[ScanResult, Applied] = await self._run(
            len(text), lambda: guard.redact(text, ctx, actions, vault=vault)
        )
        return out

    async def scan_json(self, tenant: str, obj: Any, ctx: ScanContext) -> JsonScan:
        guard = await self.guard_for(tenant)
        scan: JsonScan = await self._run(_json_len(obj), scan_json, guard, obj, ctx)
        return scan

    async def redact_json(
        self,
        tenant: str,
        obj: Any,
        ctx: ScanContext,
        actions: Mapping[str, Action] | None = None,
        vault: PseudonymVault | None = None,
    ) -> tuple[JsonScan, Any, list[Any]]:
        guard = await self.guard_for(tenant)
        scan: JsonScan = await self._run(_json_len(obj), scan_json, guard, obj, ctx)
        new, applied = apply_json(guard, obj, scan, actions, vault=vault)
        return scan, new, applied

    async def record(
        self, *, tenant: str, actor: str, ctx: ScanContext, result: ScanResult, applied: Applied
    ) -> None:
        """A detection event: types, offsets and actions, never the matched values."""
        if self.audit is None or not result.findings:
            return
        outcome: Outcome = "denied" if applied.blocked else "info"
        payload = {
            "direction": ctx.direction,
            "classification": result.classification,
            "injection_score": result.injection_score,
            "findings": [f.public() for f in result.findings[:200]],
            "actions": sorted({f"{f.type}:{a.value}" for f, a in applied.changed}),
            "flagged": sorted({f.type for f in applied.flagged}),
            "blocked": sorted({f.type for f in applied.blocked}),
        }
        await self.audit.emit(
            AuditEventIn(
                tenant=tenant, actor=actor, action="guard.detection",
                resource=f"guard:{ctx.direction}", outcome=outcome,
                reason=applied.block_reason() if applied.blocked else "", payload=payload,
            )
        )  # fmt: skip

    # --- stored rules -----------------------------------------------------------------

    def _need_db(self) -> Database:
        if self.db is None:
            raise NotFound("custom rules are not stored here (no database)")
        return self.db

    async def stored_rules(self, tenant: str) -> list[CustomRule]:
        if self.db is None:
            return []
        async with self.db.session(tenant) as s:
            rows = (await s.execute(select(GuardRuleRow).order_by(GuardRuleRow.name))).scalars()
            return [CustomRule.model_validate_json(r.spec) for r in rows]

    async def _announce(self, tenant: str, actor: str, action: str, names: list[str]) -> None:
        self._invalidate(tenant)
        if self.bus is not None:
            await self.bus.publish(RULES_TOPIC, {"tenant": tenant})
        if self.audit is not None:
            await self.audit.emit(
                AuditEventIn(
                    tenant=tenant, actor=actor, action=action, resource="guard:rules",
                    outcome="success", payload={"rules": names},
                )
            )  # fmt: skip

    def _check(self, rules: Sequence[CustomRule]) -> None:
        problems = check_rules(rules, self.settings)
        if problems:
            raise ValidationFailed("the rule set was refused", errors=problems)

    async def replace_rules(self, tenant: str, rules: list[CustomRule], actor: str) -> None:
        self._check(rules)
        async with self._need_db().session(tenant) as s:
            await s.execute(delete(GuardRuleRow).where(GuardRuleRow.tenant_id == tenant))
            for r in rules:
                s.add(GuardRuleRow(tenant_id=tenant, name=r.name, spec=r.model_dump_json(),
                                   updated_by=actor))  # fmt: skip
        await self._announce(tenant, actor, "guard.rules.replace", [r.name for r in rules])

    async def put_rule(self, tenant: str, rule: CustomRule, actor: str) -> None:
        current = [r for r in await self.stored_rules(tenant) if r.name != rule.name]
        self._check([*current, rule])
        async with self._need_db().session(tenant) as s:
            row = await s.get(GuardRuleRow, {"tenant_id": tenant, "name": rule.name})
            if row is None:
                s.add(GuardRuleRow(tenant_id=tenant, name=rule.name, spec=rule.model_dump_json(),
                                   updated_by=actor))  # fmt: skip
            else:
                row.spec, row.updated_by = rule.model_dump_json(), actor
        await self._announce(tenant, actor, "guard.rules.put", [rule.name])

    async def delete_rule(self, tenant: str, name: str | None, actor: str) -> int:
        async with self._need_db().session(tenant) as s:
            stmt = delete(GuardRuleRow).where(GuardRuleRow.tenant_id == tenant)
            if name is not None:
                stmt = stmt.where(GuardRuleRow.name == name)
            result = await s.execute(stmt)
            count = int(getattr(result, "rowcount", 0) or 0)
        if name is not None and count == 0:
            raise NotFound(f"no guard rule named {name!r}")
        await self._announce(tenant, actor, "guard.rules.delete", [name] if name else ["*"])
        return count


def _json_len(obj: Any) -> int:
    """The size of `obj` as JSON, to choose inline or thread; unknown sizes count as large."""
    try:
        return len(orjson.dumps(obj))
    except TypeError:
        return 1 << 62
