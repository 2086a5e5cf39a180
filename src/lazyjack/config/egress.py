"""The typed view of how an IPv6-only cluster reaches IPv4 sites: what validation proved about it, in narrow types.

In ipv6 mode the configuration has a support network with both families, a DNS64 server and a
NAT64 gateway. The file's sections accept either family everywhere (`IPv4Network | IPv6Network`);
once every rule has passed, `egress_of` hands the same values over with the one family each may
have, so that steps and renderers use them without checks of their own. It is the one place where
those types narrow: a new egress setting is a field here and a line in `egress_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING

from lazyjack.addresses import IPAddr, IPNet

if TYPE_CHECKING:
    from lazyjack.config import schema


@dataclass(frozen=True)
class SupportNetwork:
    """support_net: the network of both families the DNS64 and NAT64 servers sit on."""

    cidr: IPv6Network
    v4cidr: IPv4Network


@dataclass(frozen=True)
class Dns64Server:
    """dns64: the server that synthesises AAAA records inside `cidr`, forwarding to `remote_server`."""

    cidr: IPv6Network
    ip: IPv6Address
    remote_server: IPv4Address
    allow_aaaa: bool
    image: str


@dataclass(frozen=True)
class Nat64Gateway:
    """nat64: tayga at `ip` / `v4_ip`, translating the DNS64 prefix to IPv4 with the pool `v4_cidr`."""

    ip: IPv6Address
    v4_ip: IPv4Address
    v4_cidr: IPv4Network
    image: str


@dataclass(frozen=True)
class Egress:
    """Everything an ipv6-mode cluster needs to reach IPv4 sites (how the servers run is general's)."""

    support: SupportNetwork
    dns64: Dns64Server
    nat64: Nat64Gateway


def _v6(value: IPAddr) -> IPv6Address:
    assert isinstance(value, IPv6Address), value  # the family rules (rules.check_families) passed
    return value


def _v4(value: IPAddr) -> IPv4Address:
    assert isinstance(value, IPv4Address), value
    return value


def _v6net(value: IPNet) -> IPv6Network:
    assert isinstance(value, IPv6Network), value
    return value


def _v4net(value: IPNet) -> IPv4Network:
    assert isinstance(value, IPv4Network), value
    return value


def egress_of(support: schema.SupportNet, nat64: schema.Nat64, dns64: schema.Dns64, *, allow_aaaa: bool) -> Egress:
    """The sections of an ipv6-mode config that passed every rule, in the types the rules proved."""
    return Egress(
        support=SupportNetwork(cidr=_v6net(support.cidr), v4cidr=_v4net(support.v4cidr)),
        dns64=Dns64Server(cidr=_v6net(dns64.cidr), ip=_v6(dns64.ip), remote_server=_v4(dns64.remote_server),
                          allow_aaaa=allow_aaaa, image=dns64.image),
        nat64=Nat64Gateway(ip=_v6(nat64.ip), v4_ip=_v4(nat64.v4_ip), v4_cidr=_v4net(nat64.v4_cidr), image=nat64.image),
    )
