"""The gateway bench end to end with tiny counts: mock, OpsGate, load driver, report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gateway_bench_smoke() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "gateway", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| OpsGate |")]
    assert len(rows) == 1, out.stdout
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[-1] == "0"  # no failed requests
    assert float(cells[3]) > 0  # a max RPS was measured
    assert "| mock, direct |" in out.stdout
