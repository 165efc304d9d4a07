"""The foundation benchmarks still run (tiny counts; numbers are not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_audit_bench_quick() -> None:
    out = _run("audit", "--quick", "--no-pg")
    assert "sqlite" in out and "verify" in out


def test_whoami_bench_quick() -> None:
    out = _run("whoami", "--quick")
    assert "in-process (no network) whoami" in out


def test_policy_bench_quick() -> None:
    out = _run("policy", "--quick")
    assert "bare regorus" in out and "embedded" in out and "opa" in out
