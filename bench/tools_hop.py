"""The upstream hop alone: what one federated call costs OpsGate between its pipeline and the
upstream MCP server, without the rest of OpsGate around it.

    uv run python -m bench tools_hop [--calls N] [--sse]

The bench upstream (bench/tools_upstream.py, official SDK server, stateless; JSON answers, or
SSE with --sse) runs on core 0; this process on core 1. Sequential `echo` calls in alternating
blocks over three clients of that one upstream:

- `connector`: `FederatedConnector.call` as OpsGate runs it (its upstream link, the entry
  lookup, the timeout, the result mapping), with the link it has now;
- `sdk_session`: the official SDK's `ClientSession` over `streamable_http_client` (httpx2),
  one persistent session, as OpsGate's connector used until 2026-11-30;
- `bare_post`: one aiohttp POST of the JSON-RPC request and a JSON parse of the answer, no
  session handshake, no validation: the floor of any client in Python, not a competitor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx2
import pydantic_core
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.gateway_procs import free_port, process, python
from bench.tools import pct
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.base import CallContext
from opsgate.tools.federation import Discovered, FederatedConnector, UpstreamTool
from opsgate.tools.federation_settings import UpstreamSpec

Call = Callable[[int], Awaitable[None]]


async def _secret(ref: str) -> str:
    return "unused"


async def _trust(c: FederatedConnector, found: list[Discovered]) -> list[UpstreamTool]:
    return [UpstreamTool(d, "enabled" if d.spec else "rejected", d.reject) for d in found]


async def measure(url: str, calls: int, block: int) -> dict[str, list[float]]:
    spec = UpstreamSpec.model_validate(
        {"name": "bench", "transport": "http", "url": url, "zone": "monitoring",
         "process_area": "health-checks", "risk": "read", "gate": "L0"}
    )  # fmt: skip
    connector = FederatedConnector(spec, load_zones(ZONES_FILE), _secret, verify=_trust)
    await connector.refresh()
    agent = Principal(id="key:bench", kind="agent", tenant="default", roles=frozenset({"agent"}))
    ctx = CallContext(agent, "default", _secret)
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    headers["mcp-protocol-version"] = "2025-11-25"
    async with (
        httpx2.AsyncClient(trust_env=False) as hx,
        streamable_http_client(url, http_client=hx) as (read, write),
        ClientSession(read, write) as sdk,
        aiohttp.ClientSession(headers=headers) as bare,
    ):
        await sdk.initialize()
        await sdk.list_tools()

        async def via_connector(i: int) -> None:
            r = await connector.call("bench.echo", {"text": f"hello {i}"}, ctx)
            assert not r.is_error and r.content == {"text": f"hello {i}"}, r.content

        async def via_sdk(i: int) -> None:
            r = await sdk.call_tool("echo", {"text": f"hello {i}"})
            assert not r.is_error

        async def via_post(i: int) -> None:
            body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": f"hello {i}"}}}  # fmt: skip
            async with bare.post(url, data=pydantic_core.to_json(body)) as resp:
                raw = await resp.read()
            if resp.content_type == "text/event-stream":  # the answer is the last event
                raw = [ln[5:] for ln in raw.splitlines() if ln.startswith(b"data:")][-1]
            assert "result" in pydantic_core.from_json(raw)

        paths: dict[str, Call] = {
            "connector": via_connector,
            "sdk_session": via_sdk,
            "bare_post": via_post,
        }
        out: dict[str, list[float]] = {name: [] for name in paths}
        for call in paths.values():  # warm-up
            for i in range(50):
                await call(i)
        order = list(paths)
        for b in range(max(1, calls // block)):
            k = b % len(order)
            for name in order[k:] + order[:k]:
                for i in range(block):
                    t0 = time.perf_counter()
                    await paths[name](i)
                    out[name].append(time.perf_counter() - t0)
    await connector.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench tools_hop")
    ap.add_argument("--calls", type=int, default=3000, help="calls per client")
    ap.add_argument("--sse", action="store_true", help="the upstream answers as SSE streams")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-hop-") as d:
        port = free_port()
        cmd = [python(), "-m", "bench.tools_upstream", "--port", str(port)]
        cmd += ["--starts", str(Path(d) / "starts.jsonl")] + (["--sse"] if args.sse else [])
        with process(cmd, port, Path(d) / "upstream.log", core=0):
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(0, {1})
            started = time.monotonic()
            lat = asyncio.run(measure(f"http://127.0.0.1:{port}/mcp", args.calls, 100))
    base = lat["sdk_session"]
    print(
        f"`uv run python -m bench tools_hop{' --sse' if args.sse else ''}` "
        f"({time.monotonic() - started:.0f} s); {args.calls} sequential calls per client "
        f"in alternating blocks of 100; upstream answers {'SSE' if args.sse else 'JSON'}.\n"
    )
    print("| client | p50 ms | p99 ms | p50 / SDK session | p99 / SDK session |")
    print("|---|---|---|---|---|")
    for name, xs in lat.items():
        r50, r99 = pct(xs, 50) / pct(base, 50), pct(xs, 99) / pct(base, 99)
        print(f"| {name} | {pct(xs, 50) * 1000:.2f} | {pct(xs, 99) * 1000:.2f} | "
              f"{r50:.2f} | {r99:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
