"""Tool control plane bench: OpsGate's `/mcp` versus calling the upstream MCP server directly.

    uv run python -m bench tools [--smoke] [--calls N] [--held N] [--latency-only]

One run starts an upstream MCP server (bench/tools_upstream.py: official SDK, streamable HTTP,
stateless, core 0) and OpsGate (`opsgate serve`, its own process on core 1, SQLite in a temp
data dir, guard, audit and policy on as by default) with the upstream federated as `bench`
(`bench.echo`: risk read, gate L0; `bench.act`: risk write, gate L2). The client is the
official MCP client with one persistent session per path.

1. Latency: sequential `echo` calls, alternating blocks between the upstream directly
   (baseline), `bench.echo` through OpsGate, and `host.local_load` through OpsGate (a local
   L0 tool: OpsGate's own cost without the upstream hop). Added = OpsGate minus direct, per
   percentile.
2. Held approvals: N concurrent `bench.act` calls held open by OpsGate; its RSS at 0, N/5,
   N/2 and N held, while held, and after all were approved and settled (two rounds).
3. Approval decision -> execution start: `POST /api/v1/approvals/{id}/approve` (an OIDC user
   in the approver group) until the upstream tool records its own start time; back to back
   over the N held calls, and one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.gateway_procs import ROOT, free_port, process, python, rss_mb
from opsgate.tools.settings import ToolsSettings

WORK = ROOT / "bench" / ".work" / "tools"
HOLD_SECONDS = 300
FIRST_ERRORS: dict[str, str] = {}  # long enough that no held call times out during the run


@dataclass
class Counts:
    calls: int  # sequential calls per latency path
    block: int  # calls per block before switching path
    held: int  # concurrent held approvals
    isolated: int  # one-at-a-time approvals
    rounds: int  # rounds of `held` (a second round shows whether memory is reused)
    observe: float  # seconds to watch RSS while everything is held


FULL = Counts(3000, 100, 500, 50, 2, 10.0)
SMOKE = Counts(20, 10, 10, 3, 1, 0.5)


@dataclass
class Report:
    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rss: list[list[tuple[str, float]]] = field(default_factory=list)  # per round
    burst: list[float] = field(default_factory=list)  # decision -> start, back to back
    approve_rtt: list[float] = field(default_factory=list)
    isolated: list[float] = field(default_factory=list)
    executed: int = 0
    held_failures: int = 0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)] if s else float("nan")


class BenchIdP:
    """An OIDC issuer for the approver: an RSA key and its JWKS on loopback HTTP (API keys
    carry no directory groups, and approvals need a member of the approver group)."""

    ISSUER, AUDIENCE = "https://idp.bench.test", "api://opsgate-bench"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        body = orjson.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

        class Jwks(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)

    def __enter__(self) -> BenchIdP:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issuer_settings(self) -> dict[str, Any]:
        port = self.server.server_address[1]
        return {
            "issuer": self.ISSUER,
            "audience": [self.AUDIENCE],
            "jwks_url": f"http://127.0.0.1:{port}/jwks",
        }

    def token(self, sub: str, groups: list[str]) -> str:
        now = int(time.time())
        claims = {"iss": self.ISSUER, "aud": self.AUDIENCE, "sub": sub, "iat": now}
        claims |= {"exp": now + 3600, "groups": groups}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


# --- processes -----------------------------------------------------------------------------


def opsgate_exe() -> list[str]:
    exe = Path(sys.executable).with_name("opsgate")
    return (
        [str(exe)]
        if exe.exists()
        else [python(), "-c", "from opsgate.cli.main import main; main()"]
    )


def write_config(tmp: Path, port: int, upstream: str, idp: BenchIdP) -> Path:
    cfg: dict[str, Any] = {
        "data_dir": str(tmp / "data"),
        "server": {"host": "127.0.0.1", "port": port},
        "telemetry": {"log_level": "warning"},
        "identity": {
            "oidc": [idp.issuer_settings()],
            "group_roles": {"sg-change-approvers": ["approver"]},
        },
        "tools": {
            "approval_hold_seconds": HOLD_SECONDS,
            "federation": {
                "upstreams": [
                    {
                        "name": "bench",
                        "transport": "http",
                        "url": upstream,
                        "zone": "monitoring",
                        "process_area": "health-checks",
                        "risk": "read",
                        "gate": "L0",
                        "tools": {"act": {"risk": "write", "gate": "L2"}},
                        "trust_on_first_use": True,
                    }
                ]
            },
        },
    }
    if "agent_calls_per_minute" in ToolsSettings.model_fields:
        # One agent key makes thousands of calls a minute here; the loop caps (default 120
        # calls a minute per agent) would refuse them. Off: the bench measures the pipeline.
        cfg["tools"] |= {"agent_calls_per_minute": 0, "agent_repeat_limit": 0}
    path = tmp / "opsgate.yaml"
    path.write_text(orjson.dumps(cfg).decode())  # JSON is YAML
    return path


def admin_key(log: Path) -> str:
    """The bootstrap admin key `opsgate up` prints once on first run."""
    lines = log.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Admin API key"))
    return next(line.strip() for line in lines[at + 1 :] if line.strip())


async def agent_key(base: str, admin: str) -> str:
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
        r = await http.post(
            f"{base}/api/v1/keys",
            json={"name": "bench-agent", "kind": "agent", "roles": ["agent"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        r.raise_for_status()
        return str(r.json()["key"])


# --- clients -------------------------------------------------------------------------------


@asynccontextmanager
async def mcp_session(url: str, key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30, read=HOLD_SECONDS + 60),
        limits=httpx2.Limits(max_connections=2000, max_keepalive_connections=50),
        trust_env=False,
    )
    async with (
        http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


Caller = Callable[[int], Awaitable[bool]]  # call number -> failed?


def mcp_caller(s: ClientSession, tool: str, args: dict[str, str]) -> Caller:
    async def call(i: int) -> bool:
        # Distinct arguments per call, as a real agent's would be (repeat caps key on them).
        r = await s.call_tool(tool, {k: f"{v} {i}" for k, v in args.items()})
        if r.is_error:
            FIRST_ERRORS.setdefault(tool, str(r.content)[:300])
        return bool(r.is_error)

    return call


def rest_caller(http: httpx2.AsyncClient, url: str, args: dict[str, str]) -> Caller:
    async def call(i: int) -> bool:
        r = await http.post(url, json={"arguments": {k: f"{v} {i}" for k, v in args.items()}})
        failed = r.status_code != 200 or r.json().get("status") != "executed"
        if failed:
            FIRST_ERRORS.setdefault(url, r.text[:300])
        return failed

    return call


async def timed(call: Caller, n: int, out: list[float]) -> int:
    errors = 0
    for i in range(n):
        t0 = time.perf_counter()
        errors += await call(i)
        out.append(time.perf_counter() - t0)
    return errors


async def latency(c: Counts, direct: str, og: str, key: str, rep: Report) -> None:
    rest = f"{og.removesuffix('/mcp')}/api/v1/tools"
    echo = {"text": "hello"}
    async with (
        mcp_session(direct) as d,
        mcp_session(og, key) as f,
        mcp_session(og, key) as loc,
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, trust_env=False) as http,
    ):
        paths = {
            "direct": mcp_caller(d, "echo", echo),
            "federated": mcp_caller(f, "bench.echo", echo),
            "local": mcp_caller(loc, "host.local_load", {}),
            "rest_local": rest_caller(http, f"{rest}/host.local_load/call", {}),
        }
        for name, call in paths.items():  # warm-up: connections, caches, lazy imports
            await timed(call, min(50, c.calls), [])
            rep.latency[name], rep.errors[name] = [], 0
        order = list(paths)
        for block in range(max(1, c.calls // c.block)):
            # Rotate the order so no path always runs right after another.
            k = block % len(order)
            for name in order[k:] + order[:k]:
                rep.errors[name] += await timed(paths[name], c.block, rep.latency[name])


# --- held approvals ------------------------------------------------------------------------


class Approver:
    def __init__(self, base: str, token: str) -> None:
        self.url = f"{base}/api/v1/approvals"
        self.http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            trust_env=False,
        )

    async def pending(self) -> dict[str, int]:
        """Pending approval id -> the call's `n`."""
        r = await self.http.get(self.url, params={"status": "pending", "limit": 500})
        r.raise_for_status()
        return {a["id"]: int(a["arguments"]["n"]) for a in r.json()}

    async def wait_pending(self, count: int, limit: float = 120) -> dict[str, int]:
        deadline = time.monotonic() + limit
        while True:
            got = await self.pending()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(got)} of {count} calls became pending")
            await asyncio.sleep(0.01 if count == 1 else 0.2)

    async def approve(self, approval_id: str) -> tuple[float, float]:
        """(sent, answered) wall-clock times of one approval."""
        sent = time.time()
        r = await self.http.post(f"{self.url}/{approval_id}/approve", json={"reason": "bench"})
        answered = time.time()
        r.raise_for_status()
        return sent, answered


def read_starts(path: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        out[int(row["n"])] = float(row["t"])
    return out


def settled_ok(r: Any) -> bool:
    sc = getattr(r, "structured_content", None) or {}
    return not r.is_error and sc.get("status") == "executed"


def rss_now(pid: int, samples: int = 3) -> float:
    vals = []
    for _ in range(samples):
        vals.append(rss_mb(pid))
        time.sleep(0.1)
    return statistics.median(vals)


async def held_round(
    c: Counts, s: ClientSession, ap: Approver, pid: int, starts: Path, first: int, rep: Report
) -> None:
    await asyncio.sleep(1)
    rss = [("0 held", rss_now(pid))]
    tasks: list[asyncio.Task[Any]] = []
    for target in sorted({max(1, c.held // 5), max(1, c.held // 2), c.held}):
        while len(tasks) < target:
            n = first + len(tasks)
            tasks.append(asyncio.create_task(s.call_tool("bench.act", {"n": n})))
        await ap.wait_pending(target)
        await asyncio.sleep(0.5)
        rss.append((f"{target} held", rss_now(pid)))
    await asyncio.sleep(c.observe)
    rss.append((f"{c.held} held, +{c.observe:g} s", rss_now(pid)))
    if any(t.done() for t in tasks):
        raise RuntimeError("a held call returned before it was approved")
    decided: dict[int, float] = {}
    for approval_id, n in (await ap.pending()).items():
        sent, answered = await ap.approve(approval_id)
        decided[n] = answered
        rep.approve_rtt.append(answered - sent)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = sum(1 for r in results if not isinstance(r, BaseException) and settled_ok(r))
    rep.executed += ok
    rep.held_failures += len(results) - ok
    began = read_starts(starts)
    rep.burst += [began[n] - t for n, t in decided.items() if n in began]
    await asyncio.sleep(2)
    rss.append(("settled", rss_now(pid)))
    rep.rss.append(rss)


async def isolated(
    c: Counts, s: ClientSession, ap: Approver, starts: Path, first: int
) -> list[float]:
    out = []
    for i in range(c.isolated):
        n = first + i
        task = asyncio.create_task(s.call_tool("bench.act", {"n": n}))
        (approval_id,) = (await ap.wait_pending(1)).keys()
        _, answered = await ap.approve(approval_id)
        r = await task
        if not settled_ok(r):
            raise RuntimeError(f"isolated approval {n} did not execute: {r}")
        out.append(read_starts(starts)[n] - answered)
    return out


async def approvals(
    c: Counts, og: str, key: str, token: str, pid: int, starts: Path, rep: Report
) -> None:
    ap = Approver(og.removesuffix("/mcp"), token)
    try:
        async with mcp_session(og, key) as s:
            rep.isolated = await isolated(c, s, ap, starts, 1_000_000)
            for r in range(c.rounds):
                await held_round(c, s, ap, pid, starts, r * 100_000, rep)
    finally:
        await ap.http.aclose()


# --- report --------------------------------------------------------------------------------


def ms(x: float) -> str:
    return f"{x * 1000:.2f}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def report_lines(c: Counts, rep: Report, seconds: float) -> list[str]:
    d = rep.latency["direct"]
    names = {
        "direct": "upstream directly (baseline)",
        "federated": "OpsGate `/mcp` -> `bench.echo` (federated, L0)",
        "local": "OpsGate `/mcp` -> `host.local_load` (local L0, no upstream hop)",
        "rest_local": "OpsGate REST `POST /api/v1/tools/host.local_load/call` (no MCP)",
    }
    out = [
        f"`uv run python -m bench tools{' --smoke' if c is SMOKE else ''}` ({seconds:.0f} s); "
        f"{c.calls} sequential calls per path in alternating blocks of {c.block}.",
        "",
        "| path | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for key, lat in rep.latency.items():
        added = (
            ("-", "-")
            if key == "direct"
            else (ms(pct(lat, 50) - pct(d, 50)), ms(pct(lat, 99) - pct(d, 99)))
        )
        out.append(
            f"| {names[key]} | {ms(pct(lat, 50))} | {ms(pct(lat, 99))} | {added[0]} | "
            f"{added[1]} | {rep.errors[key]} |"
        )
    f, loc, rl = rep.latency["federated"], rep.latency["local"], rep.latency["rest_local"]
    a50, a99 = pct(f, 50) - pct(d, 50), pct(f, 99) - pct(d, 99)
    out += [
        "",
        f"- Added latency, federated L0 call: p50 {ms(a50)} ms (target ≤ 3 ms: "
        f"{verdict(a50 <= 0.003)}), p99 {ms(a99)} ms (target ≤ 10 ms: {verdict(a99 <= 0.010)}).",
        f"- Breakdown (p50): the upstream hop inside OpsGate (federated minus local over "
        f"`/mcp`) {ms(pct(f, 50) - pct(loc, 50))} ms; the MCP server layer (local over `/mcp` "
        f"minus local over REST) {ms(pct(loc, 50) - pct(rl, 50))} ms; the direct call to the "
        f"upstream, for comparison, {ms(pct(d, 50))} ms.",
    ]
    if not rep.rss:  # --latency-only
        return out
    out += [
        "",
        "| OpsGate RSS MB | " + " | ".join(label for label, _ in rep.rss[0]) + " |",
        "|---|" + "---|" * len(rep.rss[0]),
    ]
    for i, rnd in enumerate(rep.rss):
        out.append(f"| round {i + 1} | " + " | ".join(f"{mb:.1f}" for _, mb in rnd) + " |")
    r1 = rep.rss[0]
    per = (r1[-3][1] - r1[0][1]) * 1024 / c.held
    drift = (r1[-2][1] - r1[-3][1]) * 1024
    out += [
        "",
        f"- {c.held} held calls: {per:.0f} KiB RSS per held call (round 1, 0 -> {c.held} held); "
        f"{drift:+.0f} KiB while all were held for {c.observe:g} s; "
        f"after settling {r1[-1][1] - r1[0][1]:+.1f} MB versus before.",
    ]
    if len(rep.rss) > 1:
        r2 = rep.rss[1]
        out.append(
            f"- Round 2 peak versus round 1 peak: {r2[-3][1] - r1[-3][1]:+.1f} MB; "
            f"round 2 settled versus round 1 settled: {r2[-1][1] - r1[-1][1]:+.1f} MB."
        )
    out.append(
        f"- Held calls that returned the executed result: {rep.executed} of "
        f"{c.held * c.rounds} ({rep.held_failures} not)."
    )
    b, iso = rep.burst, rep.isolated
    worst = max(pct(b, 99), pct(iso, 99))
    out += [
        "",
        "| decision -> execution start | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        f"| one at a time | {len(iso)} | {ms(pct(iso, 50))} | {ms(pct(iso, 99))} | "
        f"{ms(max(iso))} |",
        f"| back to back, {c.held} held | {len(b)} | {ms(pct(b, 50))} | {ms(pct(b, 99))} | "
        f"{ms(max(b))} |",
        "",
        f"- Measured from the approve response to the upstream tool's own start timestamp; "
        f"the approve request itself took p50 {ms(pct(rep.approve_rtt, 50))} ms. "
        f"Target ≤ 500 ms (p99): {verdict(worst <= 0.5)}.",
    ]
    return out


# --- main ----------------------------------------------------------------------------------


def run(c: Counts, approvals_too: bool = True) -> tuple[Report, float]:
    WORK.mkdir(parents=True, exist_ok=True)
    logs = WORK / "logs"
    started = time.monotonic()
    rep = Report()
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-tools-") as d, BenchIdP() as idp:
        tmp = Path(d)
        starts = tmp / "starts.jsonl"
        starts.touch()
        up_port, og_port = free_port(), free_port()
        up_cmd = [python(), "-m", "bench.tools_upstream", "--port", str(up_port)]
        up_cmd += ["--starts", str(starts)]
        with process(up_cmd, up_port, logs / "upstream.log", core=0):
            direct = f"http://127.0.0.1:{up_port}/mcp"
            cfg = write_config(tmp, og_port, direct, idp)
            # First run: migrations, default tenant, admin key (printed once), then serve.
            og_cmd = [*opsgate_exe(), "up", "--config", str(cfg)]
            with process(og_cmd, og_port, logs / "opsgate.log", core=1) as og_proc:
                og = f"http://127.0.0.1:{og_port}/mcp"
                admin = admin_key(logs / "opsgate.log")
                key = asyncio.run(agent_key(og.removesuffix("/mcp"), admin))
                asyncio.run(latency(c, direct, og, key, rep))
                if not approvals_too:
                    return rep, time.monotonic() - started
                token = idp.token("bench-approver", ["sg-change-approvers"])
                asyncio.run(approvals(c, og, key, token, og_proc.pid, starts, rep))
    return rep, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench tools")
    ap.add_argument("--smoke", action="store_true", help="tiny counts; targets not asserted")
    ap.add_argument("--calls", type=int, help="sequential calls per latency path")
    ap.add_argument("--held", type=int, help="concurrent held approvals (at most 500)")
    ap.add_argument("--latency-only", action="store_true", help="skip the held approvals")
    args = ap.parse_args()
    c = SMOKE if args.smoke else FULL
    if args.calls or args.held:
        c = Counts(**{**asdict(c), "calls": args.calls or c.calls, "held": args.held or c.held})
    if c.held > 500:
        raise SystemExit("--held: at most 500 (the approvals list returns 500 at most)")
    rep, seconds = run(c, approvals_too=not args.latency_only)
    lines = report_lines(c, rep, seconds)
    print("\n".join(lines))
    for tool, text in FIRST_ERRORS.items():
        print(f"first error from {tool}: {text}")
    (WORK / ("smoke.json" if args.smoke else "result.json")).write_bytes(
        orjson.dumps({"counts": asdict(c), "seconds": seconds, **asdict(rep)})
    )


if __name__ == "__main__":
    main()
