"""Execution records of write tools, and undo through the same gates.

`undo(execution)` builds the inverse call from the tool's declared inverse (arguments from
the original call's `args.*` and the recorded `prior.*` state) and sends it through the
normal pipeline as the caller: policy, roles, guard and the inverse tool's own gate apply,
so undoing an L2 operation may itself need an approval.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select, update

from opsgate.audit.canonical import canonical
from opsgate.db.engine import Database
from opsgate.errors import Conflict, NotFound, ValidationFailed
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ToolSpec
from opsgate.tools.models import ToolExecution

if TYPE_CHECKING:
    from opsgate.tools.service import CallOutcome, ToolService


@dataclass(frozen=True)
class Executed:
    spec: ToolSpec
    principal: Principal
    args: dict[str, Any]
    gate: str
    ok: bool
    prior: dict[str, Any] | None
    approval_id: str | None
    undo_of: str | None


class ExecutionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, e: Executed) -> str:
        tenant = e.principal.tenant
        undo_of = e.undo_of
        async with self.db.session(tenant) as s:
            if undo_of is None and e.approval_id is not None:
                # An undo that waited for approval: find the execution it reverses.
                undo_of = await s.scalar(
                    select(ToolExecution.id).where(ToolExecution.undo_approval_id == e.approval_id)
                )
            row = ToolExecution(
                tenant_id=tenant,
                id=str(uuid.uuid4()),
                tool=e.spec.name,
                arguments=canonical(e.args).decode(),
                actor=e.principal.id,
                actor_kind=e.principal.kind,
                gate=e.gate,
                status="executed" if e.ok else "failed",
                prior=e.prior,
                approval_id=e.approval_id,
                undo_of=undo_of,
            )
            s.add(row)
            if undo_of is not None and e.ok:
                await s.execute(
                    update(ToolExecution)
                    .where(ToolExecution.id == undo_of, ToolExecution.undone_by.is_(None))
                    .values(undone_by=row.id)
                )
        return row.id

    async def get(self, tenant: str, execution_id: str) -> ToolExecution:
        async with self.db.session(tenant) as s:
            row = await s.get(ToolExecution, (tenant, execution_id))
        if row is None:
            raise NotFound(f"no execution {execution_id!r}")
        return row

    async def recent(self, tenant: str, limit: int = 100) -> list[ToolExecution]:
        q = select(ToolExecution).order_by(ToolExecution.created_at.desc()).limit(limit)
        async with self.db.session(tenant) as s:
            return list((await s.execute(q)).scalars())

    async def mark_undo_pending(self, tenant: str, execution_id: str, approval_id: str) -> None:
        async with self.db.session(tenant) as s:
            await s.execute(
                update(ToolExecution)
                .where(ToolExecution.id == execution_id)
                .values(undo_approval_id=approval_id)
            )


def inverse_arguments(spec: ToolSpec, row: ToolExecution) -> dict[str, Any]:
    """The inverse call's arguments from `args.<name>` and `prior.<name>` references."""
    assert spec.inverse is not None
    sources: dict[str, Any] = {"args": orjson.loads(row.arguments), "prior": row.prior or {}}
    out: dict[str, Any] = {}
    for name, ref in spec.inverse.arguments.items():
        where, _, key = ref.partition(".")
        source = sources.get(where)
        if not isinstance(source, dict) or not key:
            raise ValidationFailed(
                f"{spec.name}: inverse argument {name} has a bad reference {ref!r}"
            )
        if key in source:
            out[name] = source[key]
        elif where == "prior":
            raise Conflict(
                f"cannot undo: the prior state has no {key!r} (it was not recorded)",
                code="no_prior_state",
            )
        # a missing optional `args.*` value stays absent: the inverse uses its default
    return out


async def undo(
    tools: ToolService, principal: Principal, execution_id: str, rationale: str = ""
) -> CallOutcome:
    store = tools.executions
    row = await store.get(principal.tenant, execution_id)
    entry = tools.tools.get(row.tool)
    if entry is None:
        raise Conflict(f"{row.tool} is not in the catalog any more", code="tool_unavailable")
    spec = entry[0]
    if spec.inverse is None:
        raise Conflict(f"{row.tool} declares no inverse operation", code="no_inverse")
    if row.status != "executed":
        raise Conflict("only a successful execution can be undone", code="not_executed")
    if row.undone_by is not None:
        raise Conflict(f"already undone by {row.undone_by}", code="already_undone")
    if row.undo_approval_id is not None:
        req = await tools.approvals.get(principal.tenant, row.undo_approval_id)
        if req.status in ("pending", "approved", "executing"):
            raise Conflict(f"an undo is already waiting: approval {req.id}", code="undo_pending")
    args = inverse_arguments(spec, row)
    why = f"undo of execution {execution_id}" + (f": {rationale}" if rationale else "")
    outcome = await tools.call(
        principal, spec.inverse.tool, args, rationale=why[:4000], undo_of=execution_id
    )
    if outcome.status == "pending_approval" and outcome.approval_id:
        await store.mark_undo_pending(principal.tenant, execution_id, outcome.approval_id)
    return outcome
