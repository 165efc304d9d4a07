"""The tool control plane bench end to end with tiny counts: upstream MCP server, OpsGate,
held approvals, report. The issue's targets are not asserted here, only sane numbers."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _row(out: str, prefix: str) -> list[str]:
    rows = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, out
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_tools_bench_smoke() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "tools", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = out.stdout
    for prefix in (
        "| upstream directly",
        "| OpsGate `/mcp` -> `bench.echo`",
        "| OpsGate `/mcp` -> `host",
    ):
        cells = _row(report, prefix)
        p50, p99 = float(cells[1]), float(cells[2])
        assert 0 < p50 <= p99 < 10_000, cells
        assert cells[-1] == "0", cells  # no failed calls
    rss = _row(report, "| round 1 |")
    assert all(50 < float(mb) < 5000 for mb in rss[1:]), rss
    assert "Held calls that returned the executed result: 10 of 10 (0 not)" in report
    for prefix in ("| one at a time |", "| back to back,"):
        cells = _row(report, prefix)
        assert math.isfinite(float(cells[2])) and float(cells[3]) < 60_000, cells
