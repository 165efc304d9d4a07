"""Quota benchmark: admit + settle latency on the memory and Redis backends.

    uv run python -m bench quota [--quick] [--no-write] [--redis-url URL]

Each measured call is one `admit` and its `settle` for a principal with four limited
subjects (API key, user, team, tenant), each with RPM, TPM, concurrency and a budget, i.e.
the full hot-path cost of quotas for one model request. Baselines in the same run: the
service with no limits configured (no backend call), and, for Redis, one PING round trip
(the floor any Redis-backed limiter pays). Results go to docs/benchmarks.md, "## Quotas".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.quota.settings import QuotaSettings
from opsgate.identity.principal import Principal

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Quotas"
HUGE = {
    "rpm": 100_000_000,
    "tpm": 10_000_000_000,
    "concurrency": 1_000_000,
    "budget": {"amount": 10_000_000, "period": "month"},
}
WHO = Principal(
    id="bench-user", kind="user", tenant="default", groups=frozenset({"sre"}),
    auth="api_key", credential_id="bench-key",
)  # fmt: skip


def settings(backend: str, redis_url: str, prefix: str, profile: str = "full") -> QuotaSettings:
    """profile: full (4 subjects x 4 dimensions), key (API key rpm+tpm only), none."""
    cfg: dict[str, Any] = {"backend": backend, "redis_url": redis_url, "key_prefix": prefix}
    if profile == "full":
        cfg["defaults"] = {k: HUGE for k in ("key", "user", "tenant")}
        cfg["teams"] = {"sre": HUGE}
    elif profile == "key":
        cfg["defaults"] = {"key": {"rpm": HUGE["rpm"], "tpm": HUGE["tpm"]}}
    return QuotaSettings.model_validate(cfg)


async def one_call(q: QuotaService) -> None:
    res = await q.admit(WHO, model="m", est_tokens=1500, est_cost=0.002)
    await q.settle(res, tokens_in=500, tokens_out=400, cost=0.0012)


def stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_us": statistics.median(s) * 1e6,
        "p99_us": s[min(len(s) - 1, int(len(s) * 0.99))] * 1e6,
    }


async def latency(fn: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    for _ in range(max(10, n // 20)):  # warm up (script load, connection pool)
        await fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return stats(samples)


async def admit_latency(q: QuotaService, n: int) -> dict[str, float]:
    """The request-path part alone: admit timed, its settle not."""
    samples = []
    for i in range(n + max(10, n // 20)):
        t0 = time.perf_counter()
        res = await q.admit(WHO, model="m", est_tokens=1500, est_cost=0.002)
        dt = time.perf_counter() - t0
        await q.settle(res, tokens_in=500, tokens_out=400, cost=0.0012)
        if i >= max(10, n // 20):
            samples.append(dt)
    return stats(samples)


async def throughput(q: QuotaService, workers: int, per_worker: int) -> float:
    async def loop() -> None:
        for _ in range(per_worker):
            await one_call(q)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    return workers * per_worker / (time.perf_counter() - t0)


async def run(quick: bool, redis_url: str) -> dict[str, Any]:
    n = 200 if quick else 20_000
    n_redis = 100 if quick else 5_000
    workers, per = (4, 20) if quick else (32, 200)
    prefix = f"opsgate-bench:{uuid.uuid4().hex[:8]}"
    res: dict[str, Any] = {"n": n, "n_redis": n_redis, "workers": workers}

    none = QuotaService.from_settings(settings("memory", redis_url, prefix, "none"))
    res["baseline_unlimited"] = await latency(lambda: one_call(none), n)
    small = QuotaService.from_settings(settings("memory", redis_url, prefix, "key"))
    res["memory_key"] = await latency(lambda: one_call(small), n)
    mem = QuotaService.from_settings(settings("memory", redis_url, prefix))
    res["memory"] = await latency(lambda: one_call(mem), n)
    res["memory_admit"] = await admit_latency(mem, n)
    res["memory_ops"] = await throughput(mem, workers, per)
    await mem.close()

    red = QuotaService.from_settings(settings("redis", redis_url, prefix))
    try:
        await red.backend.ping()
    except Exception as exc:
        res["redis_error"] = f"{type(exc).__name__}: {exc}"
        await red.close()
        return res
    client = red.backend.client  # type: ignore[attr-defined]
    res["baseline_ping"] = await latency(client.ping, n_redis)
    res["redis"] = await latency(lambda: one_call(red), n_redis)
    res["redis_admit"] = await admit_latency(red, n_redis)
    red_small = QuotaService.from_settings(settings("redis", redis_url, prefix, "key"))
    res["redis_key"] = await latency(lambda: one_call(red_small), n_redis)
    await red_small.close()
    res["redis_ops"] = await throughput(red, workers, per)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await red.close()
    return res


def report(res: dict[str, Any]) -> str:
    def row(name: str, key: str) -> str:
        s = res[key]
        return f"| {name} | {s['p50_us']:.1f} | {s['p99_us']:.1f} |"

    out = [
        SECTION, "",
        f"Machine: 2 cores, date {date.today().isoformat()}. `uv run python -m bench quota`; "
        "one admit + settle, for a principal with 4 limited subjects (key, user, team, tenant) "
        "x 4 dimensions (RPM, TPM, concurrency, budget), and for an API key with only RPM and "
        "TPM. Sequential calls for latency "
        f"({res['n']} memory / {res['n_redis']} Redis samples); {res['workers']} concurrent "
        "loops for throughput. Redis 7 on localhost.", "",
        "| path | p50 µs | p99 µs |", "|---|---|---|",
        row("baseline: no limits configured (no backend call)", "baseline_unlimited"),
        row("memory backend, API key rpm+tpm only", "memory_key"),
        row("memory backend, 4 subjects x 4 dimensions", "memory"),
        row("memory backend, 4 x 4, admit alone (request path)", "memory_admit"),
    ]  # fmt: skip
    if "redis" in res:
        out += [
            row("baseline: Redis PING round trip", "baseline_ping"),
            row("Redis backend, API key rpm+tpm only", "redis_key"),
            row("Redis backend, 4 subjects x 4 dimensions", "redis"),
            row("Redis backend, 4 x 4, admit alone (request path)", "redis_admit"),
        ]
    out += [""]
    out.append(f"Memory backend throughput: {res['memory_ops']:.0f} admit+settle/s (one core).")
    if "redis" in res:
        ratio = res["redis"]["p50_us"] / res["baseline_ping"]["p50_us"]
        out += [
            f"Redis backend throughput: {res['redis_ops']:.0f} admit+settle/s.",
            f"Redis admit+settle p50 (4x4) = {ratio:.1f}x one PING; it is two script calls, "
            "the admit one on the request path before the provider call.",
        ]
    else:
        out.append(f"Redis rows skipped: {res['redis_error']}")
    mem_ratio = res["memory"]["p50_us"] / max(res["baseline_unlimited"]["p50_us"], 1e-9)
    out += [f"Memory backend p50 = {mem_ratio:.1f}x the no-limits path.", ""]
    return "\n".join(out)


def write_section(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section.rstrip() + "\n" + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench quota")
    ap.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    res = asyncio.run(run(args.quick, args.redis_url))
    section = report(res)
    print(section)
    if not args.quick and not args.no_write:
        write_section(section)


if __name__ == "__main__":
    main()
