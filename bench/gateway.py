"""Gateway bench: OpsGate vs LiteLLM Proxy vs calling the mock provider directly.

    uv run python -m bench gateway [--quick | --smoke] [--no-litellm] [--no-docs]

One run starts the mock provider (core 0, with the load driver), then OpsGate (core 1;
API-key auth, guard, audit and metrics on), then LiteLLM Proxy pinned to
`litellm[proxy]==1.83.14` in its own venv (core 1), each against the same mock, and reports
side by side, with a bare pass-through proxy on the same core as the floor
(bench.gateway_passthrough): added latency p50/p99 at 200 RPS (open loop; 0 ms and 50 ms mock), max
sustained RPS on one core (wrk when installed, else the asyncio closed loop), RSS after 20k
and 100k requests, and streaming time-to-first-byte overhead. Results go to
docs/benchmarks.md under "## Gateway".
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.gateway_load import Result, Target, chat_body, closed_loop, open_loop, ttfb
from bench.gateway_procs import (
    LITELLM_PIN,
    ROOT,
    WORK,
    ensure_litellm,
    free_port,
    pinned,
    process,
    python,
    rss_mb,
)

RATE = 200.0
LOW_RATE = 50.0


# What the profile (py-spy) and ablations of this machine showed; kept with the numbers.
NOTES = [
    "",
    "Two full runs on 2026-12-01 of the same code (the second adds only the pass-through floor and "
    "drops the gateway's second, non-recording span per call): at 09:30 on a quiet machine the "
    "targets were met (added p50 0.92 / p99 3.18 ms, 10.1x LiteLLM, RSS +0.1%; its row above); at "
    "10:25 the machine was slower (the floor's max RPS 4055 vs 4928 in a short run minutes before, "
    "its added p50 0.73 vs 0.52 ms) and the latency targets were not met (the table). What moves "
    "the latency on this machine is CPU that is cold at 200 RPS: the same server costs 2.5-3.5 ms "
    "of CPU per request at 200 RPS and ~1 ms at full load, and a hello-world ASGI app under the "
    "same uvicorn 575 us per request at 50 RPS against 146 us at 2000 RPS (perf: 64% of it in the "
    "interpreter). OpsGate's own share of the added p50 (over the floor) was ~1.35 ms at 10:25; the"
    " 09:30 run had no floor row (shorter alternating runs between 10:00 and 10:30 measured the "
    "floor at 0.0-0.5 ms).",
    "Where OpsGate's time goes now (py-spy at max load under wrk, 2026-12-01 evening, share "
    "of the samples holding the GIL): the policy decision ~12% (regorus evaluation ~8%); "
    "uvicorn ~10%; the event loop ~8%; the edge middleware (request id, span, Host and body "
    "guards) ~5%; audit ~5% (event encoding on the loop, the SQLite writer thread); guard "
    "~4%; the upstream call ~5% (it was ~15% through aiohttp); pydantic validation of the "
    "request and the audit event ~3%; span start ~3%. At 200 RPS each request costs about "
    "twice the CPU it costs at full load: the core idles between requests and every commit "
    "carries one or two events.",
    "Tail latency: the p99 of 85 ms was the cyclic garbage collector. A gc callback trace "
    "showed ~20 full collections per 10k requests of 50-370 ms each over the ~250k objects "
    "created at start-up; with the young collections the collector took ~20% of the CPU. "
    "The app now freezes "
    "the start-up heap (gc.freeze) and raises the young-generation threshold to 20k "
    "(opsgate.telemetry.gc; pauses are exported as opsgate_gc_pause_seconds).",
    "Changes made for these numbers (2026-11-30): the GC settings above; the model-call "
    "routes matched before every other route (FastAPI walked ~100 included routes, twice, "
    "before the gateway's); one API-key lookup per credential when its 1 s cache entry "
    "expires (concurrent misses used to query the database each); integer cost/latency in "
    "the gateway's audit event (a float sent each event through the pure-Python RFC 8785 "
    "encoder, ~6%); usage rows by Core executemany; cached metric children; one "
    "set_attributes call per span update. Earlier (2026-11-23): aiohttp instead of httpx "
    "for upstream calls, the model endpoints as plain Starlette routes, async dependencies "
    "only, GenAI attributes on the request's server span instead of a second span.",
    "Noise: this box is shared. The same code measured on 2026-11-30 under load (the mock's "
    "own p99 7.46 ms instead of ~2 ms) added p50 2.87 / p99 34.00 ms with 555 RPS (3.7x "
    "LiteLLM's 150); on a quiet machine the same evening +1.64 / +10.45 ms, 1124 RPS "
    "(5.5x). Since then (2026-12-01): the audit writer commits on SQLite in one thread hop "
    "on its own connection, plain fractions and integral floats stay on the canonical JSON "
    "fast path, and small documents are scanned by the guard inline.",
    "Changes for the 2026-12-01 afternoon run: usage rows on SQLite through their own "
    "connection in one thread hop (as the audit log), metrics and span attributes after the "
    "response body is sent (quota, usage and audit are settled before it), spans recorded "
    "only when something exports them. Same harness, alternating runs against the previous "
    "commit: CPU per request at 200 RPS -7% (1.24-1.30 vs 1.34-1.38 ms), added p50 "
    "-0.07 ms. Max RPS is now measured with wrk (Debian package) for both systems; the "
    "asyncio driver measured 1446 for OpsGate in the morning run.",
    "Changes for the 2026-12-01 evening run: (1) model-call POSTs take a lane past FastAPI's "
    "and Starlette's generic per-request layers (server-error, exception, body-limit, "
    "telemetry and exit-stack middleware, router, request_response) with the same edge "
    "middleware and exception handlers (opsgate.http.lane): -6% CPU per request in process "
    "(1390 vs 1477 us, medians of 21 alternating blocks). (2) Upstream calls through a small "
    "HTTP/1.1 client on asyncio and httptools (opsgate.gateway.upstream_http) instead of "
    "aiohttp: 122 vs 297 us of CPU per call with 16 in flight against the same mock, and a "
    "lower idle-call latency; pyreqwest (Rust) measured 150 us but could not abort a "
    "cancelled call. Together, wrk at max load, old (b86327a) and new servers alternating "
    "five times in one run: 403 vs 532 RPS (medians; every pair favoured the new code, "
    "1.03-1.31x).",
    "Noise: the machine of the evening run was ~2.5x slower than the morning's (the mock "
    "alone 3.9-4.5k RPS; OpsGate at b86327a 350-800 RPS over the session where it measured "
    "1751 in the morning; a bare regorus evaluation 59 us vs 32 us). Only the ratios of a run "
    "compare across runs.",
    "Added latency, old (b86327a) vs new, same run, 200 RPS open loop, 2000 requests per "
    "block, 4 alternating pairs (2026-12-01 evening, slow machine; the mock alone p50 1.87 "
    "ms): OpsGate p50 4.86 -> 4.11 ms and p99 15.98 -> 10.00 ms (medians), i.e. added p50 "
    "2.99 -> 2.24 ms (-25%, every pair), added p99 12.9 -> 7.0 ms. On the morning's quiet "
    "machine the old code added 1.06-1.08 ms p50; the same reduction would bring that to ~0.8"
    " ms, which this machine could not confirm.",
    "An earlier full run the same evening (before the guard rule-cache change, steal not yet "
    "recorded, the mock alone at p50 2.27 ms) measured OpsGate 528 RPS vs LiteLLM 50 (10.5x), "
    "added p50 15.45 / p99 200.78 ms at 200 RPS (queueing on a starved core) and RSS +0.8%.",
]


# The previous published row, kept in the table for comparison (same machine and harness).
PREVIOUS_ROWS = [
    "| OpsGate, 2026-12-01 09:30 (same code, quiet machine: steal 0.0%, LiteLLM 113 RPS in "
    "that run: 10.1x) | 0.92 / 3.18 ms | 2.18 / 8.53 ms | 1144 | 186 (20k), 186 (100k) | "
    "1.52 ms | 0 |",
    "| OpsGate, 2026-12-01 morning (before; max RPS by the asyncio driver) | 1.14 / 1.96 ms | "
    "1.13 / 2.70 ms | 1446 | 199 (20k), 201 (100k) | 1.21 ms | 0 |",
    "| OpsGate, 2026-11-23 (before) | 3.13 / 85.28 ms | 2.98 / 67.71 ms | 707 | "
    "175 (20k), 178 (100k) | 2.23 ms | 0 |",
]


@dataclass
class Counts:
    latency: int
    rss_first: int
    rss_total: int
    ttfb: int
    max_seconds: int
    litellm_rss: int


FULL = Counts(6000, 20_000, 100_000, 300, 10, 20_000)
QUICK = Counts(1000, 2000, 10_000, 100, 5, 2000)
SMOKE = Counts(40, 100, 300, 5, 1, 100)


@dataclass
class Row:
    name: str
    lat0: Result | None = None
    lat50: Result | None = None
    # Only for a system that cannot sustain RATE: its overhead at LOW_RATE, for comparison.
    lat_low: Result | None = None
    max_rps: float = 0.0
    rss: list[tuple[int, float]] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Endpoint:
    base: str  # URL up to (not including) /chat/completions
    fast: str  # model for the 0 ms mock
    slow: str  # model for the 50 ms mock
    headers: dict[str, str]

    def target(self, model: str, stream: bool = False) -> Target:
        return Target(f"{self.base}/chat/completions", chat_body(model, stream), self.headers)


def wrk_rps(target: Target, seconds: int, connections: int = 64) -> float | None:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = WORK / "post.lua"
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = [[{target.body.decode()}]]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    cmd = pinned(
        [exe, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), target.url], 0
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m is None or (bad and int(bad.group(1)) > 0):
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(m.group(1))


async def measure(ep: Endpoint, c: Counts, pid: int | None, row: Row, rss_count: int) -> None:
    fast, slow = ep.target(ep.fast), ep.target(ep.slow)
    await open_loop(fast, RATE, min(200, c.latency))  # warm-up
    row.lat0 = await open_loop(fast, RATE, c.latency)
    row.lat50 = await open_loop(slow, RATE, c.latency)
    row.ttfb = await ttfb(ep.target(ep.fast, stream=True), c.ttfb)
    wrk = await asyncio.to_thread(wrk_rps, fast, c.max_seconds)
    if wrk is None:
        r = await closed_loop(fast, 10**6, 64, c.max_seconds)
        wrk = r.rps
    row.max_rps = wrk
    if row.max_rps < RATE:
        row.lat_low = await open_loop(fast, LOW_RATE, min(1000, c.latency))
    if pid is not None and rss_count:
        first = min(c.rss_first, rss_count)
        done = 0
        for upto in sorted({first, rss_count}):
            r = await closed_loop(fast, upto - done, 32, 600)
            done = upto
            row.errors += r.errors
            row.rss.append((upto, rss_mb(pid)))
    row.errors += sum(x.errors for x in (row.lat0, row.lat50) if x)


def run_opsgate(mock: str, c: Counts, log_dir: Path) -> Row:
    port = free_port()
    data = WORK / "opsgate-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    cmd = [
        python(),
        "-m",
        "bench.gateway_server",
        "--port",
        str(port),
        "--mock",
        mock,
        "--data",
        str(data),
    ]
    row = Row("OpsGate")
    with process(cmd, port, log_dir / "opsgate.log", core=1) as proc:
        key = (data / "key.txt").read_text().strip()
        ep = Endpoint(
            f"http://127.0.0.1:{port}/v1", "ops-default", "slow", {"Authorization": f"Bearer {key}"}
        )
        asyncio.run(measure(ep, c, proc.pid, row, c.rss_total))
    return row


def run_floor(mock: str, c: Counts, log_dir: Path) -> Row:
    """The bare pass-through proxy (bench.gateway_passthrough) on the same core: what one
    Python HTTP hop costs on this machine, with none of OpsGate's governance."""
    port = free_port()
    cmd = [python(), "-m", "bench.gateway_passthrough", "--port", str(port), "--mock", mock]
    row = Row("bare pass-through proxy (floor)")
    with process(cmd, port, log_dir / "passthrough.log", core=1):
        ep = Endpoint(f"http://127.0.0.1:{port}/v1", "ops-default", "slow", {})

        async def go() -> None:
            fast, slow = ep.target(ep.fast), ep.target(ep.slow)
            await open_loop(fast, RATE, min(200, c.latency))
            row.lat0 = await open_loop(fast, RATE, c.latency)
            row.lat50 = await open_loop(slow, RATE, c.latency)
            wrk = await asyncio.to_thread(wrk_rps, fast, c.max_seconds)
            row.max_rps = wrk or (await closed_loop(fast, 10**6, 64, c.max_seconds)).rps

        asyncio.run(go())
    row.errors = sum(x.errors for x in (row.lat0, row.lat50) if x)
    return row


def run_litellm(mock: str, c: Counts, log_dir: Path) -> Row | None:
    exe = ensure_litellm(log_dir / "litellm-install.log")
    if exe is None:
        return None
    port = free_port()
    cfg = WORK / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        + "".join(
            f"  - model_name: {name}\n    litellm_params:\n      model: openai/up-model\n"
            f"      api_base: {mock}/{sc}/v1\n      api_key: sk-bench\n"
            for name, sc in (("ops-default", "ok"), ("slow", "delay-50"))
        )
        + "general_settings:\n  master_key: sk-litellm-bench\n"
        + "litellm_settings:\n  telemetry: false\n  set_verbose: false\n"
    )
    cmd = [
        str(exe),
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "true",
    }
    row = Row(f"LiteLLM {LITELLM_PIN.split('==')[1]}")
    with process(cmd, port, log_dir / "litellm.log", core=1, env=env) as proc:
        ep = Endpoint(
            f"http://127.0.0.1:{port}/v1",
            "ops-default",
            "slow",
            {"Authorization": "Bearer sk-litellm-bench"},
        )
        asyncio.run(measure(ep, c, proc.pid, row, c.litellm_rss))
    return row


def direct_row(mock: str, c: Counts) -> Row:
    row = Row("mock, direct")
    ep = Endpoint(f"{mock}/ok/v1", "m", "m", {})
    slow = Endpoint(f"{mock}/delay-50/v1", "m", "m", {})

    async def go() -> None:
        await open_loop(ep.target("m"), RATE, min(200, c.latency))
        row.lat0 = await open_loop(ep.target("m"), RATE, c.latency)
        row.lat50 = await open_loop(slow.target("m"), RATE, c.latency)
        row.ttfb = await ttfb(ep.target("m", stream=True), c.ttfb)

    asyncio.run(go())
    return row


def ms(x: float) -> str:
    return f"{x * 1000:.2f}"


def added(r: Row, direct: Row) -> tuple[float, float, float, float]:
    """Added p50, p99 (0 ms mock), p50, p99 (50 ms mock) over calling the mock directly."""
    assert r.lat0 and r.lat50 and direct.lat0 and direct.lat50
    return (
        r.lat0.pct(50) - direct.lat0.pct(50),
        r.lat0.pct(99) - direct.lat0.pct(99),
        r.lat50.pct(50) - direct.lat50.pct(50),
        r.lat50.pct(99) - direct.lat50.pct(99),
    )


def table(direct: Row, rows: list[Row], floor: Row | None = None) -> list[str]:
    assert direct.lat0 and direct.lat50
    d_ttfb = statistics.median(direct.ttfb) if direct.ttfb else float("nan")
    out = [
        "| | added p50 / p99 (0 ms mock) | added p50 / p99 (50 ms mock) | max RPS, 1 core | "
        "RSS MB (requests) | stream TTFB overhead p50 | errors |",
        "|---|---|---|---|---|---|---|",
        f"| mock, direct | p50 {ms(direct.lat0.pct(50))} / p99 {ms(direct.lat0.pct(99))} ms "
        f"(absolute) | p50 {ms(direct.lat50.pct(50))} / p99 {ms(direct.lat50.pct(99))} ms "
        f"(absolute) | - | - | TTFB {ms(d_ttfb)} ms (absolute) | 0 |",
    ]
    if floor is not None:
        f = added(floor, direct)
        out.append(
            f"| {floor.name} | {ms(f[0])} / {ms(f[1])} ms | {ms(f[2])} / {ms(f[3])} ms | "
            f"{floor.max_rps:.0f} | - | - | {floor.errors} |"
        )
    for r in rows:
        a = added(r, direct)
        a0, a5 = a[:2], a[2:]
        rss = (
            ", ".join(
                f"{mb:.0f} ({n // 1000}k)" if n >= 1000 else f"{mb:.0f} ({n})" for n, mb in r.rss
            )
            or "-"
        )
        t = statistics.median(r.ttfb) - d_ttfb if r.ttfb else float("nan")
        out.append(
            f"| {r.name} | {ms(a0[0])} / {ms(a0[1])} ms | {ms(a5[0])} / {ms(a5[1])} ms | "
            f"{r.max_rps:.0f} | {rss} | {ms(t)} ms | {r.errors} |"
        )
        if r.name == "OpsGate":
            out += PREVIOUS_ROWS
    return out


def summary(direct: Row, rows: list[Row], floor: Row | None = None) -> list[str]:
    out = []
    og = rows[0]
    assert direct.lat0
    for r in rows:
        if r.lat_low is not None:
            out.append(
                f"- {r.name} cannot sustain {RATE:.0f} RPS on one core (its row above is "
                f"queueing); at {LOW_RATE:.0f} RPS it adds p50 "
                f"{ms(r.lat_low.pct(50) - direct.lat0.pct(50))} / p99 "
                f"{ms(r.lat_low.pct(99) - direct.lat0.pct(99))} ms."
            )
    if og.lat0 is not None:
        p50 = og.lat0.pct(50) - direct.lat0.pct(50)
        p99 = og.lat0.pct(99) - direct.lat0.pct(99)
        out.append(
            f"- OpsGate added latency at {RATE:.0f} RPS (0 ms mock): p50 {ms(p50)} ms (target "
            f"≤ 1 ms: {'met' if p50 <= 0.001 else 'not met'}), p99 {ms(p99)} ms (target ≤ 5 ms: "
            f"{'met' if p99 <= 0.005 else 'not met'})."
        )
    if og.lat50 is not None:
        a = added(og, direct)
        out.append(
            f"- OpsGate added latency at {RATE:.0f} RPS (50 ms mock, ~10 requests in flight): "
            f"p50 {ms(a[2])} ms ({'met' if a[2] <= 0.001 else 'not met'}), p99 {ms(a[3])} ms "
            f"({'met' if a[3] <= 0.005 else 'not met'})."
        )
    if floor is not None and og.lat0 is not None:
        a, f = added(og, direct), added(floor, direct)
        out.append(
            f"- Of OpsGate's added p50, the bare hop (same server, client and core, no "
            f"governance) accounts for {ms(f[0])} ms (0 ms mock) and {ms(f[2])} ms (50 ms "
            f"mock); authentication, policy, guard, quota, audit and metrics for the rest "
            f"({ms(a[0] - f[0])} / {ms(a[2] - f[2])} ms)."
        )
    if og.rss and len(og.rss) == 2 and og.rss[0][1]:
        growth = (og.rss[1][1] - og.rss[0][1]) / og.rss[0][1] * 100
        out.append(
            f"- OpsGate RSS {og.rss[0][0]:,} -> {og.rss[1][0]:,} requests: "
            f"{growth:+.1f}% (target: within ±10%)."
        )
    if len(rows) > 1 and rows[1].max_rps:
        out.append(
            f"- Max RPS per core, OpsGate / LiteLLM: "
            f"{og.max_rps / rows[1].max_rps:.1f}x (target ≥ 10x)."
        )
    return out


def write_docs(lines: list[str]) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "## Gateway\n\n" + "\n".join(lines) + "\n"
    m = re.search(r"^## Gateway\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    if m:
        text = text[: m.start()] + section + ("\n" if text[m.end() :] else "") + text[m.end() :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def cpu_ticks() -> tuple[int, int]:
    """(stolen, total) CPU ticks of the machine so far, from /proc/stat ((0, 0) elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int]) -> str:
    """The share of CPU time the hypervisor gave other guests since `before`."""
    after = cpu_ticks()
    total = after[1] - before[1]
    return f"{100 * (after[0] - before[0]) / total:.1f}%" if total > 0 else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench gateway")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny counts, no LiteLLM, no docs")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    c = SMOKE if args.smoke else QUICK if args.quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    logs = WORK / "logs"
    mock_port = free_port()
    mock = f"http://127.0.0.1:{mock_port}"
    started = time.time()
    mock_cmd = [python(), "-m", "bench.gateway_mock", "--port", str(mock_port)]
    with process(mock_cmd, mock_port, logs / "mock.log", core=0):
        t0 = cpu_ticks()
        direct = direct_row(mock, c)
        floor = run_floor(mock, c, logs)
        rows = [run_opsgate(mock, c, logs)]
        steal = [f"mock and OpsGate {steal_share(t0)}"]
        note = ""
        if not (args.smoke or args.no_litellm):
            t1 = cpu_ticks()
            lite = run_litellm(mock, c, logs)
            if lite is None:
                note = f"LiteLLM ({LITELLM_PIN}) could not be installed; OpsGate numbers alone."
            else:
                rows.append(lite)
                steal.append(f"LiteLLM {steal_share(t1)}")
    lines = [
        f"Machine: 2 cores, date {time.strftime('%Y-%m-%d', time.gmtime())}. "
        f"`uv run python -m bench gateway"
        f"{' --quick' if args.quick else ''}` ({time.time() - started:.0f} s). Mock provider "
        "(tests/fakes/provider.py under uvicorn) and the load driver on core 0; the system "
        "under test alone on core 1. Latency: open loop at 200 RPS, "
        f"{c.latency} requests per row, measured from each request's scheduled start, "
        "minus the same percentile calling the mock directly. Max RPS: "
        f"{'wrk' if shutil.which('wrk') else 'the asyncio driver (wrk not installed)'}, "
        f"64 connections, {c.max_seconds} s, closed loop. OpsGate runs with API-key auth, "
        "quotas (every dimension reserved and settled), the guard, audit and metrics on, "
        "and tracing as shipped (no exporter configured: spans non-recording, trace ids "
        "propagated); LiteLLM with its master key. CPU time the hypervisor gave other "
        f"guests (steal, /proc/stat) during each phase: {', '.join(steal)}.",
        "",
        *table(direct, rows, floor),
        "",
        *summary(direct, rows, floor),
        *NOTES,
    ]
    if note:
        lines.append(f"- {note}")
    print("\n".join(lines))
    if not (args.smoke or args.no_docs):
        write_docs(lines)
