"""The quota benchmark runs end to end with tiny counts."""

from __future__ import annotations

import pytest

from bench import quota as bench_quota


@pytest.mark.redis
async def test_quota_bench_quick(redis_url: str) -> None:
    res = await bench_quota.run(quick=True, redis_url=redis_url)
    section = bench_quota.report(res)
    assert section.startswith("## Quotas")
    assert "redis_error" not in res
    for key in (
        "baseline_unlimited",
        "memory",
        "memory_key",
        "memory_admit",
        "baseline_ping",
        "redis",
        "redis_key",
        "redis_admit",
    ):
        assert res[key]["p50_us"] > 0, key
    # Limits cost more than no limits, and Redis more than one PING (the baselines are real).
    assert res["memory"]["p50_us"] > res["baseline_unlimited"]["p50_us"]
    assert res["redis"]["p50_us"] > res["baseline_ping"]["p50_us"]
