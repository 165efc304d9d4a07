"""Processes for the gateway bench: start on a pinned core, wait for the port, read RSS."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "gateway"
LITELLM_VENV = ROOT / "bench" / ".work" / "litellm-venv"
LITELLM_PIN = "litellm[proxy]==1.83.14"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open in {limit}s")


def pinned(cmd: list[str], core: int | None) -> list[str]:
    if core is not None and shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


@contextmanager
def process(
    cmd: list[str], port: int, log: Path, core: int | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(cmd, core),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            wait_port(port, proc)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of the process tree rooted at `pid` (taskset execs in place)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out += _children(k)
    return out


def python() -> str:
    return sys.executable


def ensure_litellm(log: Path) -> Path | None:
    """The pinned LiteLLM proxy in its own venv (not the project's lock); None if it fails."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    uv = shutil.which("uv")
    if uv is None:
        return None
    with log.open("ab") as out:
        ok = (
            subprocess.run(
                [uv, "venv", "-q", str(LITELLM_VENV), "--python", "3.11"], stdout=out, stderr=out
            ).returncode
            == 0
        )
        ok = (
            ok
            and subprocess.run(
                [
                    uv,
                    "pip",
                    "install",
                    "-q",
                    "--python",
                    str(LITELLM_VENV / "bin" / "python"),
                    LITELLM_PIN,
                ],
                stdout=out,
                stderr=out,
            ).returncode
            == 0
        )
    return exe if ok and exe.exists() else None
