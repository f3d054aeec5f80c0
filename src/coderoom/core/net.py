"""Client addresses: who is really on the other end of a request."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:1234" as some proxies write it
        value = value[1 : value.index("]")]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def resolve_client_ip(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[IPNetwork]
) -> str:
    """The client address, trusting `X-Forwarded-For` only as far as our own proxies wrote it.

    Walks the chain from the right (the hop nearest to us): each address added by a trusted
    proxy is skipped, and the first one that is not a trusted proxy is the client. A forged
    left-hand part of the header therefore never wins over what our proxy saw.
    """
    peer_address = _parse(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not _trusted(peer_address, trusted_proxies):
        return str(peer_address)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # a garbled hop: keep the last address a trusted proxy vouched for
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)


def rate_limit_key(client_ip: str) -> str:
    """The identity a rate limit counts against: the IPv4 address, or the IPv6 /64.

    One IPv6 host usually owns a whole /64 and can rotate through it at will, so counting
    single IPv6 addresses would let it reset its quota by changing address.
    """
    address = _parse(client_ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else client_ip


_SANE_HOST = re.compile(r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def request_origin(
    *,
    scheme: str,
    host: str | None,
    peer: str | None,
    forwarded_proto: str | None,
    forwarded_host: str | None,
    trusted_proxies: Sequence[IPNetwork],
) -> str | None:
    """`scheme://host[:port]` as the client addressed us, or None when the Host is unusable.

    `X-Forwarded-Proto` and `X-Forwarded-Host` count only when the peer is one of our
    proxies (its value is the last one, the one our proxy wrote); anyone else could make
    the links we hand out point elsewhere.
    """
    peer_address = _parse(peer) if peer else None
    if peer_address is not None and _trusted(peer_address, trusted_proxies):
        if forwarded_proto:
            scheme = forwarded_proto.split(",")[-1].strip().lower()
        if forwarded_host:
            host = forwarded_host.split(",")[-1].strip()
    if scheme not in ("http", "https") or not host or not _SANE_HOST.fullmatch(host):
        return None
    return f"{scheme}://{host.lower()}"
