"""The guard benchmark runs end to end with tiny counts."""

from __future__ import annotations

from bench import guard as bench_guard


def test_guard_bench_quick() -> None:
    res = bench_guard.run(quick=True)
    section = bench_guard.report(res)
    assert section.startswith("## Guard")
    assert res["ours_latency"]["p50_ms"] > 0
    assert "presidio_latency" in res  # the comparison ran in the same process
    assert res["ours"].micro(["EMAIL", "CREDIT_CARD"]).f1 >= 0.97
    assert 0.0 <= res["injection"]["fpr"] <= 1.0
