"""Outbound address checks for tools that take a host or URL (SSRF defence).

Names are resolved once with the system resolver (which also turns octal, hex and integer
IPv4 forms into addresses), every resulting address is checked, and the caller connects to
the checked address, so a DNS answer cannot change between check and use (rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from opsgate.errors import Forbidden, ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetGuard:
    def __init__(self, allow: list[str]) -> None:
        self.nets = []
        self.hosts = set()
        for item in allow:
            try:
                self.nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item.lower().rstrip("."))

    def _blocked(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in n for n in self.nets):
            return False
        return (
            ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified
        )  # fmt: skip

    async def resolve(self, host: str, port: int) -> list[str]:
        """Checked addresses for host:port, or Forbidden naming why."""
        name = host.strip().lower().rstrip(".").strip("[]")
        if not name or len(name) > 253:
            raise ValidationFailed("invalid host name")
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, name, port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise ValidationFailed(f"cannot resolve {host!r}") from None
        addrs = sorted({str(i[4][0]) for i in infos})
        if name in self.hosts:
            return addrs
        for a in addrs:
            if self._blocked(ipaddress.ip_address(a.split("%")[0])):
                raise Forbidden(
                    f"{host!r} resolves to a private, loopback or reserved address; "
                    "add it to tools.allow_targets to permit it",
                    code="target_not_allowed",
                )
        return addrs
