"""tayga.conf for the NAT64 gateway."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network


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


def _token(field: str, value: str) -> str:
    # tayga splits each line on whitespace and has no quoting, so a value with a space or a
    # line break would silently become a different directive.
    if not value or any(c.isspace() for c in value):
        raise ValueError(
            f"{field} {value!r} cannot be written to tayga.conf: it must be non-empty and"
            " contain no whitespace"
        )
    return value
