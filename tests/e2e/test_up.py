"""`opsgate up` as a real process: first-run init, URL and admin key printed, serve, stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGATE_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsgate.cli.main",
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    # Generous: a first start imports every connector library and runs all migrations, and
    # CI shares two cores with the rest of the suite (12 s measured on a busy laptop-class box).
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean stop.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "opsgate stopped" in err, err
    return out


def test_up_first_run_prints_url_and_admin_key(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(tmp_path, port)
    try:
        _wait_ready(port, proc)
        r = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert r.status_code == 200
    finally:
        out = _stop(proc)
    assert f"http://127.0.0.1:{port}" in out
    key = re.search(r"^\s+(\S+_\S+)\s*$", out, re.M)
    assert key, out
    # a second run does not print a new key
    port2 = _free_port()
    proc = _start(tmp_path, port2)
    try:
        _wait_ready(port2, proc)
        who = httpx.get(
            f"http://127.0.0.1:{port2}/api/v1/whoami",
            headers={"Authorization": f"Bearer {key.group(1)}"},
        )
        assert who.status_code == 200, who.text
        assert "admin" in who.json()["roles"]
    finally:
        out2 = _stop(proc)
    assert "Admin API key" not in out2


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("signals differ on Windows", allow_module_level=True)
