"""Approved calls run exactly once, by the server; held calls wait for them.

When a request is approved, the runner executes it as the requester (the principal stored
when they asked, re-authorised by policy now) through the normal pipeline. The atomic claim
(`approved -> executing`) makes that exactly-once across replicas and against an agent that
retries with the approval id at the same moment. State lives in the database, so nothing is
lost on restart: at start and every sweep, approved-but-not-run requests are run, expired
ones are closed, and executions a crash interrupted are marked failed (never re-run: whether
they took effect is unknown).

Durable execution: the approval state machine *is* the durable workflow here (one step,
claimed atomically, result stored). DBOS would add a second system database and a
process-global runtime that cannot host several OpsGate apps per process (tests, `--data-dir`
instances side by side); a one-step workflow does not need it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from opsgate.approvals.models import ApprovalRequest
from opsgate.approvals.service import TERMINAL, arguments_of, principal_of
from opsgate.db.base import Tenant
from opsgate.errors import Conflict, NotFound, OpsGateError
from opsgate.identity.principal import Principal
from opsgate.telemetry.logging import get_logger
from opsgate.tools.service import CallOutcome, ToolService, not_executed

log = get_logger("opsgate.tools.held")

# Longest a connector call may run (ToolSpec.timeout_seconds <= 600) plus a margin.
INTERRUPTED_AFTER = timedelta(seconds=900)


class ApprovalRunner:
    def __init__(self, tools: ToolService, *, sweep_seconds: float = 5.0) -> None:
        self.tools, self.approvals = tools, tools.approvals
        self.sweep_seconds = sweep_seconds
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[str] = set()
        self._runs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        ready = [asyncio.Event(), asyncio.Event()]
        self._tasks = [
            asyncio.create_task(self._follow("approval.approved", self._on_approved, ready[0])),
            asyncio.create_task(self._follow("approval.settled", self._on_settled, ready[1])),
            asyncio.create_task(self._sweeper()),
        ]
        for r in ready:
            await r.wait()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _follow(
        self, topic: str, handle: Callable[[dict[str, Any]], Awaitable[None]], ready: asyncio.Event
    ) -> None:
        while True:
            try:
                events = self.tools.bus.subscribe(topic)
                ready.set()
                async for event in events:
                    await handle(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("approval follower failed; resubscribing", topic=topic)
                await asyncio.sleep(1)

    async def _on_approved(self, event: dict[str, Any]) -> None:
        tenant, approval_id = event.get("tenant"), event.get("id")
        if isinstance(tenant, str) and isinstance(approval_id, str):
            # Its own task: a slow tool must not hold up the next approval.
            task = asyncio.create_task(self.run(tenant, approval_id))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _on_settled(self, event: dict[str, Any]) -> None:
        for waiter in self._waiters.get(str(event.get("id")), ()):
            waiter.set()

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("approval sweep failed")
            await asyncio.sleep(self.sweep_seconds)

    async def sweep(self) -> None:
        async with self.approvals.db.session(None) as s:
            tenants = list((await s.execute(select(Tenant.id))).scalars())
        for tenant in tenants:
            await self.approvals.expire_due(tenant)
            await self.approvals.fail_interrupted(tenant, INTERRUPTED_AFTER)
            for approval_id in await self.approvals.approved_ids(tenant):
                await self.run(tenant, approval_id)

    async def run(self, tenant: str, approval_id: str) -> None:
        """Execute an approved request as its requester; at most once (the claim decides)."""
        if approval_id in self._running:
            return
        self._running.add(approval_id)
        try:
            req = await self.approvals.get(tenant, approval_id)
            principal = principal_of(req)
            if req.status != "approved" or principal is None:
                return
            try:
                await self.tools.call(
                    principal, req.tool, arguments_of(req), approval_id=approval_id
                )
            except Conflict:
                return  # someone else claimed it (another replica, or the agent's retry)
            except NotFound:
                # The tool is not in the catalog right now (an upstream still connecting):
                # stay approved; the next sweep tries again.
                log.warning("approved tool not available yet", tool=req.tool, id=approval_id)
            except OpsGateError as exc:
                # Re-authorisation failed (policy, roles or tool changed since the request).
                await self.approvals.abandon(tenant, approval_id, exc.detail)
        finally:
            self._running.discard(approval_id)

    async def wait(
        self,
        tenant: str,
        approval_id: str,
        timeout: float,  # noqa: ASYNC109 - a hold length, not a cancellation scope
        *,
        poll: float,
        tick: Callable[[float], Awaitable[None]] | None = None,
        tick_every: float = 5.0,
    ) -> ApprovalRequest:
        """Wait until the request settles or `timeout` passes; returns its latest state.

        Woken by the bus; re-reads the database every `poll` seconds in case an event was
        missed; calls `tick(elapsed)` every `tick_every` seconds (progress notifications).
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline, next_tick = start + timeout, start + tick_every
        event = asyncio.Event()
        self._waiters.setdefault(approval_id, set()).add(event)
        try:
            while True:
                req = await self.approvals.get(tenant, approval_id)
                if req.status in TERMINAL or loop.time() >= deadline:
                    return req
                next_poll = loop.time() + poll
                while True:
                    wake = min(next_poll, deadline, next_tick if tick else deadline)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), max(0.0, wake - loop.time()))
                    if event.is_set():
                        event.clear()
                        break
                    now = loop.time()
                    if tick is not None and now >= next_tick:
                        await tick(now - start)
                        next_tick = now + tick_every
                    if now >= next_poll or now >= deadline:
                        break
        finally:
            waiters = self._waiters.get(approval_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[approval_id]

    async def hold(
        self,
        principal: Principal,
        args: dict[str, Any],
        pending: CallOutcome,
        seconds: float,
        *,
        tick: Callable[[float], Awaitable[None]] | None = None,
        tick_every: float = 5.0,
    ) -> CallOutcome:
        """Hold a call that needs approval for up to `seconds`: its settled outcome, or
        `pending` itself if nobody decided in time (MCP and REST share this)."""
        if pending.approval_id is None or seconds <= 0:
            return pending
        req = await self.wait(
            principal.tenant,
            pending.approval_id,
            seconds,
            poll=self.tools.settings.approval_poll_seconds,
            tick=tick,
            tick_every=tick_every,
        )
        if req.status in ("denied", "expired", "cancelled"):
            return not_executed(req, pending.gate, pending.reasons)
        if req.status in ("executed", "failed"):
            # Run once by the runner: the retry path returns the stored result.
            return await self.tools.call(principal, pending.tool, args, approval_id=req.id)
        return pending

    @property
    def held(self) -> int:
        return sum(len(w) for w in self._waiters.values())


__all__ = ["ApprovalRunner", "arguments_of"]
