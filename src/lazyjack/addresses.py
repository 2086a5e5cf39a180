"""IP address types every layer shares, the RFC 6052 embedding of an IPv4 address in a DNS64/NAT64 prefix (both
ways), and the RFC 7050 discovery of a prefix."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

IPNet = IPv4Network | IPv6Network
IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface

#: Prefix lengths RFC 6052 allows for an IPv4-embedded IPv6 prefix.
RFC6052_LENGTHS = (32, 40, 48, 56, 64, 96)
#: Byte 8 of an RFC 6052 address (bits 64-71), reserved and zero.
U_OCTET = 8
#: RFC 6052 section 2.1: the prefix NAT64 reserves for global IPv4 addresses.
WELL_KNOWN_PREFIX = IPv6Network("64:ff9b::/96")
#: RFC 8215: the prefix for local use inside a site.
LOCAL_USE_PREFIX = IPv6Network("64:ff9b:1::/48")
#: RFC 7050: the only addresses of ipv4only.arpa, so every AAAA of it is synthesised from one of them.
IPV4ONLY_NAME = "ipv4only.arpa"
IPV4ONLY_ADDRESSES = (IPv4Address("192.0.0.170"), IPv4Address("192.0.0.171"))


class PlanError(ValueError):
    """A value does not fit the address rule it is used in; the message says why."""


def embed_ipv4(prefix: IPv6Network, v4: IPv4Address) -> IPv6Address:
    """The IPv6 address that stands for `v4` inside a DNS64/NAT64 prefix (RFC 6052 section 2.2).

    The IPv4 octets follow the prefix, skipping byte 8 (the reserved "u" octet, bits
    64-71), so for prefix lengths 40 to 56 they straddle it; the suffix stays zero.
    """
    if prefix.prefixlen not in RFC6052_LENGTHS:
        allowed = ", ".join(f"/{n}" for n in RFC6052_LENGTHS)
        raise PlanError(f"prefix {prefix} has length /{prefix.prefixlen}; RFC 6052 allows {allowed}")
    packed = bytearray(prefix.network_address.packed)
    if packed[U_OCTET] != 0:  # only a /96 covers the u octet, so only a /96 can set it
        raise PlanError(f"prefix {prefix} sets bits 64-71, which RFC 6052 reserves and requires to be zero")
    for slot, octet in zip(_ipv4_slots(prefix.prefixlen), v4.packed, strict=True):
        packed[slot] = octet
    return IPv6Address(bytes(packed))


def _ipv4_slots(prefixlen: int) -> list[int]:
    """The byte positions of the IPv4 address after a prefix of `prefixlen` bits (RFC 6052 section 2.2)."""
    return [i for i in range(prefixlen // 8, 16) if i != U_OCTET][:4]


def embedded_ipv4(address: IPv6Address, prefixlen: int) -> IPv4Address:
    """The IPv4 address `address` carries behind a prefix of `prefixlen` bits; the inverse of embed_ipv4."""
    if prefixlen not in RFC6052_LENGTHS:
        raise PlanError(f"/{prefixlen} is not an RFC 6052 prefix length")
    return IPv4Address(bytes(address.packed[i] for i in _ipv4_slots(prefixlen)))


def discovered_prefixes(addresses: Iterable[IPv6Address]) -> list[IPv6Network]:
    """The NAT64 prefixes behind AAAA records of ipv4only.arpa (RFC 7050 section 3), in answer order.

    A record counts where one of the well-known addresses sits at the RFC 6052 position of a
    prefix length (the longest that matches), with the reserved octet zero.
    """
    found: list[IPv6Network] = []
    for address in addresses:
        for length in sorted(RFC6052_LENGTHS, reverse=True):
            if length < 96 and address.packed[U_OCTET] != 0:
                continue
            if embedded_ipv4(address, length) in IPV4ONLY_ADDRESSES:
                prefix = IPv6Network((address, length), strict=False)
                if prefix not in found:
                    found.append(prefix)
                break
    return found
