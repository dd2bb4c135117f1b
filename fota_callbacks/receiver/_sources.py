"""Which source addresses may send callback messages (`allowed_ips`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from .._errors import InvalidArgumentError
from ..callbacks import VERIZON_CALLBACK_SOURCE_IPS

__all__ = ["AllowedIps", "Networks", "networks", "source_allowed"]

AllowedIps = Literal["verizon"] | Iterable[str] | None
"""`"verizon"` (Verizon's published source addresses), addresses and CIDR networks (`"verizon"` may be one of
them: `["verizon", "127.0.0.1"]`), or None: any source."""

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def networks(allowed_ips: AllowedIps) -> Networks | None:
    """The networks `allowed_ips` names, checked once; None: any source."""
    if allowed_ips is None:
        return None
    if isinstance(allowed_ips, str):
        if allowed_ips != "verizon":
            raise InvalidArgumentError(
                "allowed_ips", f"expected 'verizon' or an iterable of addresses, got {allowed_ips!r}"
            )
        allowed_ips = ["verizon"]
    entries: list[str] = []
    for entry in allowed_ips:
        entries.extend(sorted(VERIZON_CALLBACK_SOURCE_IPS) if entry == "verizon" else [entry])
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("allowed_ips", str(exc)) from None


def source_allowed(host: str | None, allowed: Networks) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in allowed)
