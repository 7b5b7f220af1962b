"""Which network an address belongs to, for refusing hosts a remote names inside ours.

A remote registry may name other hosts (a token realm). Before this server
dials one, every address it resolves to is placed in a network:
``internal_network`` gives the loopback, private, link-local, shared,
unspecified, multicast or reserved network it is in, or None for a public
address. IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
6to4 ``2002:AABB:CCDD::``, NAT64 ``64:ff9b::a.b.c.d``) are read as that IPv4
address, so ``[::ffff:169.254.169.254]`` is the metadata service too.
"""
from __future__ import annotations

import ipaddress
import socket

# Networks a remote may not send us into unless it lives there itself; checked in this order
# (::/96 is the deprecated IPv4-compatible form, after :: and ::1). Other non-global addresses
# (documentation, benchmarking ranges...) each count as a network of their own.
_INTERNAL = [ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "::/96", "fc00::/7", "fe80::/10", "ff00::/8")]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def internal_network(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The internal network ``address`` is in (IPv4 embedded in IPv6 read as IPv4); None when public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        ip = embedded or ip
    for net in _INTERNAL:
        if ip in net:
            return net
    return None if ip.is_global else ipaddress.ip_network(ip)


def resolve(host: str, port: int) -> set[str]:
    """Every address ``host`` resolves to. Raises: OSError (socket.gaierror when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # an IDNA label too long...
        raise OSError(f"bad host name: {exc}") from None
    return {str(info[4][0]) for info in infos}
