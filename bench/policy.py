"""Policy decision latency: embedded regorus vs an OPA-style Data API server on loopback.

Decision logging is ON for the embedded runs (records go to the real audit writer on
SQLite). Baseline in the same run: the bare regorus evaluation without OpsGate's service
(validation, precedence, record). Usage: python -m bench policy [--n N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opsgate.audit.service import AuditLog
from opsgate.audit.settings import AuditSettings
from opsgate.audit.signing import Signer
from opsgate.db import migrate
from opsgate.db.engine import Database
from opsgate.identity.principal import Principal
from opsgate.policy.bundle import DEFAULT_BUNDLE, read_bundle
from opsgate.policy.engines import EmbeddedEngine
from opsgate.policy.service import PolicyService
from opsgate.policy.settings import PolicySettings

AGENT = Principal(
    id="key:a1", kind="agent", tenant="default", groups=frozenset({"g"}), roles=frozenset({"agent"})
)
RES = {
    "kind": "tool",
    "name": "k8s.delete_pod",
    "zone": "kubernetes",
    "risk": "destructive",
    "gate": "L1",
    "namespace": "prod",
}


def _stats(lat: list[float]) -> str:
    lat.sort()
    p50 = statistics.median(lat) * 1e6
    p99 = lat[int(len(lat) * 0.99) - 1] * 1e6
    return f"p50 {p50:8.1f} µs  p99 {p99:8.1f} µs"


class _Opa(BaseHTTPRequestHandler):
    """Answers with a decision computed once (regorus engines cannot cross threads): the
    difference to the embedded figure is the network and HTTP cost."""

    result: dict[str, Any] = {}

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        raw = json.dumps({"result": self.result}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


async def amain(n: int) -> None:
    bundle = read_bundle(DEFAULT_BUNDLE, 10**6, 10**5)
    raw = EmbeddedEngine(bundle)
    doc = {
        "principal": AGENT.as_policy_input(),
        "action": "tool.call",
        "resource": RES,
        "context": {"hour": 10, "weekday": 2},
    }
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        raw.evaluate_sync(doc)
        lat.append(time.perf_counter() - t0)
    print(f"baseline  bare regorus eval            {_stats(lat)}")

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite+aiosqlite:///{d}/o.db"
        await migrate.upgrade(url)
        db = Database(url)
        await db.ensure_tenant("default")
        audit = AuditLog(db, AuditSettings(), Signer.from_data_dir(Path(d)))
        await audit.start()
        svc = PolicyService(PolicySettings(), audit)
        lat = []
        t_all = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await svc.decide(AGENT, "tool.call", RES, {"hour": 10, "weekday": 2})
            lat.append(time.perf_counter() - t0)
        await audit.flush()
        total = time.perf_counter() - t_all
        print(
            f"embedded  decide + decision record     {_stats(lat)}   "
            f"{n / total:,.0f} decisions/s incl. durable records (1 core)"
        )
        await audit.close()
        await db.dispose()

    _Opa.result = raw.evaluate_sync(doc)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Opa)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    opa = PolicyService(
        PolicySettings(backend="opa", opa_url=f"http://127.0.0.1:{srv.server_address[1]}"),
        _NullAudit(),
    )
    lat = []
    for _ in range(max(200, n // 20)):
        t0 = time.perf_counter()
        await opa.decide(AGENT, "tool.call", RES, {"hour": 10, "weekday": 2}, record=False)
        lat.append(time.perf_counter() - t0)
    print(f"opa       Data API over loopback HTTP   {_stats(lat)}")
    await opa.aclose()
    srv.shutdown()


class _NullAudit:
    async def emit(self, event: Any) -> None:
        return None

    async def flush(self) -> None:
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        # "On one core": the decisions, the audit writer and SQLite's thread share core 1.
        os.sched_setaffinity(0, {1})
    asyncio.run(amain(500 if a.quick else a.n))


if __name__ == "__main__":
    main()
