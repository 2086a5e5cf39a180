"""IP address types every layer shares, and the RFC 6052 embedding of an IPv4 address in a DNS64/NAT64 prefix."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

IPNet = IPv4Network | IPv6Network
IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface

#: Prefix lengths RFC 6052 allows for an IPv4-embedded IPv6 prefix.
RFC6052_LENGTHS = (32, 40, 48, 56, 64, 96)
#: Byte 8 of an RFC 6052 address (bits 64-71), reserved and zero.
U_OCTET = 8


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
    slots = [i for i in range(prefix.prefixlen // 8, 16) if i != U_OCTET][:4]
    for slot, octet in zip(slots, v4.packed, strict=True):
        packed[slot] = octet
    return IPv6Address(bytes(packed))
