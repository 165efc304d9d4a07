"""`host` connector: read-only diagnostics (HTTP, TLS, DNS, TCP, local resources)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from opsgate.errors import ValidationFailed
from opsgate.tools.catalog import ToolSpec, ZoneSpec, load_tools
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult
from opsgate.tools.netguard import NetGuard

MAX_REDIRECTS = 5


class HostConnector:
    name = "host"

    def __init__(self, zones: dict[str, ZoneSpec], guard: NetGuard) -> None:
        self._tools = load_tools(Path(__file__).with_name("host.yaml"), zones)
        self.guard = guard
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    def tools(self) -> list[ToolSpec]:
        return list(self._tools)

    async def status(self) -> ConnectorStatus:
        return ConnectorStatus("ready")

    async def dry_run(
        self, tool: str, args: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult:
        op = tool.split(".", 1)[1]
        fn = getattr(self, f"_{op}", None)
        if fn is None:
            raise ValidationFailed(f"unknown host tool {tool!r}")
        content: Any = await fn(args, ctx.timeout)
        return ToolResult(content)

    async def _http_check(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        url = str(args["url"])
        method = str(args.get("method", "GET"))
        start = time.perf_counter()
        hops = []
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationFailed("only http(s) URLs with a host are allowed")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            ip = (await self.guard.resolve(parts.hostname, port))[0]
            # Connect to the address that was checked; Host header and TLS name stay the name.
            netloc = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            r = await self._client.request(
                method,
                pinned,
                timeout=limit_s,
                headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "opsgate-check"},
                extensions={"sni_hostname": parts.hostname},
            )
            hops.append({"url": url, "status": r.status_code})
            location = r.headers.get("location")
            if r.is_redirect and location:
                url = urljoin(url, location)  # the next hop is checked again
                continue
            ok = (
                r.status_code == args["expect_status"]
                if "expect_status" in args
                else r.status_code < 400
            )
            return {
                "ok": ok,
                "status": r.status_code,
                "final_url": url,
                "redirects": hops[:-1],
                "latency_ms": round((time.perf_counter() - start) * 1000, 1),
                "tls": parts.scheme == "https",
                "bytes": len(r.content),
            }
        raise ValidationFailed(f"more than {MAX_REDIRECTS} redirects")

    async def _tls_expiry(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        host, port = str(args["host"]), int(args.get("port", 443))
        ip = (await self.guard.resolve(host, port))[0]
        ctx = ssl.create_default_context()
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, port, ssl=ctx, server_hostname=host), limit_s
        )
        try:
            cert = writer.get_extra_info("peercert") or {}
        finally:
            writer.close()
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
        days = (not_after - datetime.now(UTC)).total_seconds() / 86400
        subject = dict(x[0] for x in cert.get("subject", ()))
        issuer = dict(x[0] for x in cert.get("issuer", ()))
        return {
            "host": host,
            "not_after": not_after.isoformat(),
            "days_left": round(days, 1),
            "subject": subject.get("commonName"),
            "issuer": issuer.get("organizationName"),
        }

    async def _dns_resolve(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        host = str(args["host"])
        try:
            infos = await asyncio.wait_for(
                asyncio.to_thread(socket.getaddrinfo, host, None, 0, socket.SOCK_STREAM), limit_s
            )
        except (socket.gaierror, UnicodeError):
            return {"host": host, "resolved": False, "addresses": []}
        return {"host": host, "resolved": True, "addresses": sorted({str(i[4][0]) for i in infos})}

    async def _tcp_check(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        host, port = str(args["host"]), int(args["port"])
        ip = (await self.guard.resolve(host, port))[0]
        start = time.perf_counter()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), limit_s)
        except (OSError, TimeoutError) as exc:
            return {"host": host, "port": port, "open": False, "error": type(exc).__name__}
        writer.close()
        ms = round((time.perf_counter() - start) * 1000, 1)
        return {"host": host, "port": port, "open": True, "latency_ms": ms}

    async def _local_disk(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        path = str(args.get("path", "/"))
        if ".." in Path(path).parts:
            raise ValidationFailed("path must not contain '..'")
        usage = shutil.disk_usage(path)
        return {"path": path, "total": usage.total, "used": usage.used, "free": usage.free}

    async def _local_memory(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        info: dict[str, int] = {}
        text = await asyncio.to_thread(_read_meminfo)
        if text:
            for line in text.splitlines():
                key, _, rest = line.partition(":")
                if key in {"MemTotal", "MemAvailable", "MemFree", "SwapTotal", "SwapFree"}:
                    info[key] = int(rest.split()[0]) * 1024
        return info

    async def _local_load(self, args: dict[str, Any], limit_s: float) -> dict[str, Any]:
        one, five, fifteen = os.getloadavg()
        return {"load1": one, "load5": five, "load15": fifteen, "cpus": os.cpu_count()}


def _read_meminfo() -> str:
    p = Path("/proc/meminfo")
    return p.read_text() if p.exists() else ""
