"""Tests for the tayga.conf renderer: exact text."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from lazyjack.render.nat64 import render_tayga_conf


def test_tayga_conf_without_ipv6_addr() -> None:
    rendered = render_tayga_conf(
        tun_device="nat64",
        ipv4_addr=IPv4Address("172.18.0.200"),
        prefix=IPv6Network("fd00:10:64:ff9b::/96"),
        dynamic_pool=IPv4Network("172.18.0.128/25"),
        data_dir="/var/db/tayga",
    )
    assert rendered == (
        "# Written by lazyjack: NAT64 gateway translating the prefix below to IPv4.\n"
        "tun-device nat64\n"
        "ipv4-addr 172.18.0.200\n"
        "prefix fd00:10:64:ff9b::/96\n"
        "dynamic-pool 172.18.0.128/25\n"
        "data-dir /var/db/tayga\n"
    )


def test_tayga_conf_with_ipv6_addr_puts_it_after_ipv4_addr() -> None:
    rendered = render_tayga_conf(
        tun_device="nat64",
        ipv4_addr=IPv4Address("172.18.0.200"),
        ipv6_addr=IPv6Address("fd00:10::200"),
        prefix=IPv6Network("fd00:10:64:ff9b::/96"),
        dynamic_pool=IPv4Network("172.18.0.128/25"),
        data_dir="/var/lib/lazyjack/tayga",
    )
    assert rendered == (
        "# Written by lazyjack: NAT64 gateway translating the prefix below to IPv4.\n"
        "tun-device nat64\n"
        "ipv4-addr 172.18.0.200\n"
        "ipv6-addr fd00:10::200\n"
        "prefix fd00:10:64:ff9b::/96\n"
        "dynamic-pool 172.18.0.128/25\n"
        "data-dir /var/lib/lazyjack/tayga\n"
    )


@pytest.mark.parametrize(
    ("tun_device", "data_dir"),
    [("", "/var/db/tayga"), ("nat 64", "/var/db/tayga"), ("nat64", "/var/db/tayga\nmap x y")],
)
def test_tayga_conf_rejects_values_that_would_split_into_other_directives(
    tun_device: str, data_dir: str
) -> None:
    with pytest.raises(ValueError, match=r"cannot be written to tayga\.conf"):
        render_tayga_conf(
            tun_device=tun_device,
            ipv4_addr=IPv4Address("172.18.0.200"),
            prefix=IPv6Network("fd00:10:64:ff9b::/96"),
            dynamic_pool=IPv4Network("172.18.0.128/25"),
            data_dir=data_dir,
        )
