"""Tests for the kubelet systemd drop-in renderer: exact text."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from lazyjack.render.kubelet import DROPIN_PATH, render_kubelet_dropin

HEADER = (
    "# Written by lazyjack; `lazyjack clean` removes this file.\n"
    "# Cluster DNS and the node IP are set in the kubeadm configuration\n"
    "# (KubeletConfiguration.clusterDNS, nodeRegistration.kubeletExtraArgs node-ip),\n"
    "# which is where current kubelets read them. KUBELET_DNS_ARGS below is kept for\n"
    "# kubelet units that still read it (lazyjack 1.x compatibility).\n"
)


def test_dropin_path_is_the_one_lazyjack_1x_used() -> None:
    assert DROPIN_PATH == "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"


def test_dropin_ipv6_dns() -> None:
    assert render_kubelet_dropin(dns_ip=IPv6Address("fd00:30::a")) == HEADER + (
        "[Service]\n"
        'Environment="KUBELET_DNS_ARGS=--cluster-dns=fd00:30::a --cluster-domain=cluster.local"\n'
    )


def test_dropin_ipv4_dns_and_custom_domain() -> None:
    rendered = render_kubelet_dropin(dns_ip=IPv4Address("10.96.0.10"), cluster_domain="lab.example")
    assert rendered == HEADER + (
        "[Service]\n"
        'Environment="KUBELET_DNS_ARGS=--cluster-dns=10.96.0.10 --cluster-domain=lab.example"\n'
    )


@pytest.mark.parametrize("domain", ["", "cluster local", 'x"y', "-bad.local", "a..b", "x\n[Unit]"])
def test_dropin_rejects_a_domain_that_is_not_a_dns_name(domain: str) -> None:
    with pytest.raises(ValueError, match="not a DNS name"):
        render_kubelet_dropin(dns_ip=IPv4Address("10.96.0.10"), cluster_domain=domain)
