"""tayga.conf for the NAT64 gateway."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from lazyjack.addresses import WELL_KNOWN_PREFIX
from lazyjack.config.egress import Egress

#: tayga's tun device, in the support namespace or the NAT64 container.
TUN = "nat64"


def render_tayga_conf(
    *,
    tun_device: str,
    ipv4_addr: IPv4Address,
    prefix: IPv6Network,
    dynamic_pool: IPv4Network,
    data_dir: str,
    ipv6_addr: IPv6Address | None = None,
) -> str:
    """Return tayga.conf: one "key value" line per directive, after a header comment.

    ``ipv6_addr`` may be omitted: tayga then derives its IPv6 address from ``ipv4_addr``
    mapped into ``prefix``.
    """
    lines = [
        "# Written by lazyjack: NAT64 gateway translating the prefix below to IPv4.",
        f"tun-device {_token('tun_device', tun_device)}",
        f"ipv4-addr {ipv4_addr}",
    ]
    if ipv6_addr is not None:
        lines.append(f"ipv6-addr {ipv6_addr}")
    lines += [
        f"prefix {prefix}",
        f"dynamic-pool {dynamic_pool}",
        f"data-dir {_token('data_dir', data_dir)}",
    ]
    return "\n".join(lines) + "\n"


def tayga_conf(egress: Egress, *, data_dir: str, prefix: IPv6Network | None = None) -> str:
    """tayga.conf of the cluster's NAT64 gateway: the DNS64 prefix (or `prefix`: what pre-flight asks tayga
    about) to the pool, its address map in `data_dir`.

    With the well-known prefix tayga cannot derive its own IPv6 address from a private ipv4-addr
    (RFC 6052 forbids it): it is given nat64.ip, its address on the support network.
    """
    nat64 = egress.nat64
    assert nat64 is not None, "only a node with opmode nat64 runs a NAT64 gateway"
    chosen = prefix if prefix is not None else egress.prefix
    return render_tayga_conf(
        tun_device=TUN,
        ipv4_addr=nat64.v4_ip,
        ipv6_addr=nat64.ip if chosen == WELL_KNOWN_PREFIX else None,
        prefix=chosen,
        dynamic_pool=nat64.v4_cidr,
        data_dir=data_dir,
    )


def _token(field: str, value: str) -> str:
    # tayga splits each line on whitespace and has no quoting, so a value with a space or a
    # line break would silently become a different directive.
    if not value or any(c.isspace() for c in value):
        raise ValueError(
            f"{field} {value!r} cannot be written to tayga.conf: it must be non-empty and"
            " contain no whitespace"
        )
    return value
