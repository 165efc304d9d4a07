"""Authenticated no-op request latency: GET /api/v1/whoami with an API key.

Runs OpsGate in a subprocess with uvicorn (and granian, if `--granian` and installed) on a
free loopback port, and drives it with wrk at a fixed connection count. Baseline in the same
run: GET /healthz (no auth, no DB). Usage: python -m bench whoami [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from opsgate.bootstrap import bootstrap
from opsgate.db import migrate
from opsgate.settings import load_settings

APP = """
import os
from pathlib import Path
from opsgate.app import create_app
from opsgate.settings import load_settings
app = create_app(load_settings(None, data_dir=Path(os.environ["BENCH_DATA"])))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk(url: str, seconds: int, key: str | None) -> dict[str, float]:
    cmd = ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", url]
    if key:
        cmd[1:1] = ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"p50_ms": ms("50%"), "p99_ms": ms("99%"), "rps": rps}


def _inprocess(data: Path, key: str, n: int) -> tuple[float, float]:
    """Server-side time without the network: the ASGI app called in-process."""
    from asgi_lifespan import LifespanManager

    from opsgate.app import create_app

    async def go() -> tuple[float, float]:
        app = create_app(load_settings(None, data_dir=data))
        async with LifespanManager(app):
            t = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=t, base_url="http://localhost") as c:
                h = {"Authorization": f"Bearer {key}"}
                lat = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    r = await c.get("/api/v1/whoami", headers=h)
                    lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200
        lat.sort()
        return statistics.median(lat) * 1e3, lat[int(n * 0.99) - 1] * 1e3

    return asyncio.run(go())


def _serve(server: str, data: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    (workdir / "benchapp.py").write_text(APP)
    env = {**os.environ, "BENCH_DATA": str(data), "PYTHONPATH": str(workdir)}
    if server == "granian":
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "benchapp:app",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "benchapp:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{server} did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--granian", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        s = load_settings(None, data_dir=data)
        asyncio.run(migrate.upgrade(s.database_admin_url))
        key = asyncio.run(bootstrap(s))
        assert key
        p50, p99 = _inprocess(data, key, 200 if a.quick else 3000)
        print(f"in-process (no network) whoami: p50 {p50:.3f} ms  p99 {p99:.3f} ms")
        if a.quick or not shutil.which("wrk"):
            return
        servers = ["uvicorn"] + (["granian"] if a.granian else [])
        for server in servers:
            port = _port()
            proc = _serve(server, data, port, Path(d))
            try:
                base = _wrk(f"http://127.0.0.1:{port}/healthz", a.seconds, None)
                who = _wrk(f"http://127.0.0.1:{port}/api/v1/whoami", a.seconds, key)
            finally:
                proc.terminate()
                proc.wait()
            print(
                f"{server:8} healthz  p50 {base['p50_ms']:.2f} ms p99 {base['p99_ms']:.2f} ms "
                f"{base['rps']:,.0f} rps"
            )
            print(
                f"{server:8} whoami   p50 {who['p50_ms']:.2f} ms p99 {who['p99_ms']:.2f} ms "
                f"{who['rps']:,.0f} rps  (auth adds {who['p50_ms'] - base['p50_ms']:+.2f} ms p50)"
            )


if __name__ == "__main__":
    main()
