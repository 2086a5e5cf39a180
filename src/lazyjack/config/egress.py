"""The typed view of how an IPv6-only cluster reaches IPv4 sites: what validation proved about it, in narrow types.

In ipv6 mode the cluster has a DNS64 prefix, a DNS64 server and a NAT64 gateway: each server either
runs on a node (opmode dns64 / nat64, on the support network) or is the site's own
(dns64.external-server, nat64.external-gateway). The file's sections accept either family
everywhere (`IPv4Network | IPv6Network`) and make the servers' keys optional; once every rule has
passed, `egress_of` hands the same values over with the one family each may have and only the
parts that are in use, so that steps and renderers use them without checks of their own. It is the
one place where those types narrow: a new egress setting is a field here and a line in `egress_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Literal

from lazyjack.addresses import WELL_KNOWN_PREFIX, IPAddr, IPNet

if TYPE_CHECKING:
    from lazyjack.config import schema

#: dns64.server -> the program it runs.
DNS64_PROGRAMS = {"bind9": "named", "unbound": "unbound"}


@dataclass(frozen=True)
class SupportNetwork:
    """support_net: the network of both families the DNS64 and NAT64 servers of the nodes sit on."""

    cidr: IPv6Network
    v4cidr: IPv4Network


@dataclass(frozen=True)
class Dns64Server:
    """dns64 of a node with opmode dns64: its server synthesises AAAA records in the prefix, forwarding to
    `remote_server` through NAT64."""

    ip: IPv6Address
    remote_server: IPv4Address
    allow_aaaa: bool
    server: Literal["bind9", "unbound"]
    image: str

    @property
    def program(self) -> str:
        return DNS64_PROGRAMS[self.server]


@dataclass(frozen=True)
class Nat64Gateway:
    """nat64 of a node with opmode nat64: tayga at `ip` / `v4_ip`, translating the prefix to IPv4 with the pool
    `v4_cidr`."""

    ip: IPv6Address
    v4_ip: IPv4Address
    v4_cidr: IPv4Network
    image: str


@dataclass(frozen=True)
class SiteDns64:
    """dns64.external-server: the site's own DNS64 server; `via` the router on the management network that
    reaches it, when it is not on that network."""

    server: IPv6Address
    via: IPv6Address | None


@dataclass(frozen=True)
class Egress:
    """Everything an ipv6-mode cluster needs to reach IPv4 sites (how the servers run is general's).

    Exactly one of `dns64` and `site_dns64` is set, and one of `nat64` and `site_gateway`; `support`
    is set when a node runs either server.
    """

    prefix: IPv6Network
    support: SupportNetwork | None
    dns64: Dns64Server | None
    nat64: Nat64Gateway | None
    site_dns64: SiteDns64 | None = None
    site_gateway: IPv6Address | None = None

    @property
    def resolver(self) -> IPv6Address:
        """The cluster nodes' first nameserver: the DNS64 server, the node's or the site's."""
        if self.dns64 is not None:
            return self.dns64.ip
        assert self.site_dns64 is not None
        return self.site_dns64.server

    @property
    def well_known(self) -> bool:
        return self.prefix == WELL_KNOWN_PREFIX


def _v6(value: IPAddr | None) -> IPv6Address:
    assert isinstance(value, IPv6Address), value  # the family rules (rules.check_families) passed
    return value


def _v4(value: IPAddr | None) -> IPv4Address:
    assert isinstance(value, IPv4Address), value
    return value


def _v6net(value: IPNet | None) -> IPv6Network:
    assert isinstance(value, IPv6Network), value
    return value


def _v4net(value: IPNet | None) -> IPv4Network:
    assert isinstance(value, IPv4Network), value
    return value


def egress_of(support: schema.SupportNet | None, nat64: schema.Nat64, dns64: schema.Dns64, *, allow_aaaa: bool,
              dns64_node: bool, nat64_node: bool) -> Egress:
    """The sections of an ipv6-mode config that passed every rule, in the types the rules proved.

    `dns64_node` / `nat64_node`: whether a node has that opmode (else the site's own serves the cluster).
    """
    return Egress(
        prefix=_v6net(dns64.cidr),
        support=SupportNetwork(cidr=_v6net(support.cidr), v4cidr=_v4net(support.v4cidr))
        if support is not None and (dns64_node or nat64_node) else None,
        dns64=Dns64Server(ip=_v6(dns64.ip), remote_server=_v4(dns64.remote_server), allow_aaaa=allow_aaaa,
                          server=dns64.server, image=dns64.server_image) if dns64_node else None,
        nat64=Nat64Gateway(ip=_v6(nat64.ip), v4_ip=_v4(nat64.v4_ip), v4_cidr=_v4net(nat64.v4_cidr),
                           image=nat64.image) if nat64_node else None,
        site_dns64=None if dns64_node else SiteDns64(
            server=_v6(dns64.external_server),
            via=_v6(dns64.external_via) if dns64.external_via is not None else None),
        site_gateway=None if nat64_node else _v6(nat64.external_gateway),
    )
