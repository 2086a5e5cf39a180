"""Tests for the address plan: every example of docs/ARCHITECTURE.md ("The address plan"), and IDs in hex (IPv6) or decimal (IPv4)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Network, ip_address, ip_interface, ip_network
from typing import TYPE_CHECKING, Any

import pytest

from lazyjack import addresses
from lazyjack.addresses import PlanError, embed_ipv4
from lazyjack.config import plan
from lazyjack.config.plan import (
    Route,
    build_plan,
    dns_service_ip,
    kubeadm_api_for,
    kubernetes_minor,
    management_address,
    pod_gateway,
    pod_subnet,
    support_gateway,
)

if TYPE_CHECKING:
    from conftest import ConfigKit

MakePlan = Callable[..., plan.Plan]


@pytest.fixture
def make_plan(kit: ConfigKit) -> MakePlan:
    """`make_plan(base, changes)`: the plan of a valid config (see conftest.variant)."""

    def make(base: str, changes: dict[str, Any] | None = None) -> plan.Plan:
        return build_plan(kit.load(kit.variant(base, changes)))

    return make


def _routes(routes: tuple[Route, ...]) -> set[tuple[str, str]]:
    return {(str(r.destination), str(r.gateway)) for r in routes}


# --- one function per rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "node_id", "expected"),
    [
        pytest.param("fd00:20::/64", 2, "fd00:20::2/64", id="ipv6"),
        pytest.param("10.192.0.0/16", 2, "10.192.0.2/16", id="ipv4"),
        pytest.param("fd00:20::/64", 10, "fd00:20::a/64", id="ipv6-id-10-is-hex"),
        pytest.param("fd00:20::/64", 255, "fd00:20::ff/64", id="ipv6-id-255"),
        pytest.param("10.192.0.0/16", 10, "10.192.0.10/16", id="ipv4-id-10-is-decimal"),
        pytest.param("10.192.0.0/16", 255, "10.192.0.255/16", id="ipv4-id-255-in-16"),
        pytest.param("10.0.0.0/8", 2, "10.0.0.2/8", id="ipv4-8"),
        pytest.param("10.192.0.128/25", 130, "10.192.0.130/25", id="ipv4-25-upper-half"),
        pytest.param("10.192.5.0/24", 7, "10.192.5.7/24", id="ipv4-24-keeps-third-octet"),
    ],
)
def test_management_address(cidr: str, node_id: int, expected: str) -> None:
    assert management_address(ip_network(cidr), node_id) == ip_interface(expected)


@pytest.mark.parametrize(
    ("cidr", "node_id", "fragment"),
    [
        pytest.param("10.192.0.128/25", 2, "outside 10.192.0.128/25", id="ipv4-25-lower-id"),
        pytest.param("10.192.0.0/25", 200, "outside 10.192.0.0/25", id="ipv4-25-upper-id"),
        pytest.param("10.192.0.0/16", 256, "last octet", id="ipv4-256"),
        pytest.param("10.192.0.0/24", 255, "broadcast", id="ipv4-broadcast"),
        pytest.param("fd00:20::/126", 4, "host part", id="ipv6-126"),
    ],
)
def test_management_address_refuses_ids_that_do_not_fit(cidr: str, node_id: int, fragment: str) -> None:
    with pytest.raises(PlanError, match=fragment):
        management_address(ip_network(cidr), node_id)


@pytest.mark.parametrize(
    ("cidr", "node_id", "expected"),
    [
        pytest.param("fd00:40::/72", 2, "fd00:40:0:0:2::/80", id="ipv6-72"),
        pytest.param("fd00:10:20:30::/64", 2, "fd00:10:20:30:200::/72", id="ipv6-64-upper-byte"),
        pytest.param("10.244.0.0/16", 2, "10.244.2.0/24", id="ipv4-16"),
        pytest.param("fd00:40::/72", 10, "fd00:40:0:0:a::/80", id="ipv6-id-10-is-hex"),
        pytest.param("fd00:10:20:30::/64", 10, "fd00:10:20:30:a00::/72", id="ipv6-64-id-10"),
        pytest.param("10.244.0.0/16", 10, "10.244.10.0/24", id="ipv4-id-10-is-decimal"),
        pytest.param("fd00:40::/72", 255, "fd00:40:0:0:ff::/80", id="ipv6-id-255"),
        pytest.param("10.244.0.0/16", 255, "10.244.255.0/24", id="ipv4-id-255"),
        pytest.param("fd00:40::/112", 2, "fd00:40::200/120", id="ipv6-112"),
    ],
)
def test_pod_subnet(cidr: str, node_id: int, expected: str) -> None:
    assert pod_subnet(ip_network(cidr), node_id) == ip_network(expected)


@pytest.mark.parametrize(
    ("cidr", "node_id", "fragment"),
    [
        pytest.param("fd00:40::/72", 256, "8 bits", id="id-256"),
        pytest.param("10.244.0.0/16", 256, "8 bits", id="ipv4-id-256"),
        pytest.param("fd00:40::/121", 2, "no room", id="ipv6-121"),
        pytest.param("10.244.0.0/25", 2, "no room", id="ipv4-25"),
    ],
)
def test_pod_subnet_refuses(cidr: str, node_id: int, fragment: str) -> None:
    with pytest.raises(PlanError, match=fragment):
        pod_subnet(ip_network(cidr), node_id)


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        pytest.param("fd00:40:0:0:2::/80", "fd00:40:0:0:2::1", id="ipv6"),
        pytest.param("10.244.2.0/24", "10.244.2.1", id="ipv4"),
    ],
)
def test_pod_gateway_is_first_host(subnet: str, expected: str) -> None:
    assert pod_gateway(ip_network(subnet)) == ip_address(expected)


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        pytest.param("fd00:30::/110", "fd00:30::a", id="ipv6"),
        pytest.param("10.96.0.0/12", "10.96.0.10", id="ipv4"),
    ],
)
def test_dns_service_ip_is_tenth_address(cidr: str, expected: str) -> None:
    assert dns_service_ip(ip_network(cidr)) == ip_address(expected)


def test_dns_service_ip_needs_room() -> None:
    with pytest.raises(PlanError, match="too small"):
        dns_service_ip(ip_network("10.96.0.0/29"))


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [pytest.param("fd00:10::/64", "fd00:10::1", id="ipv6"), pytest.param("172.18.0.0/16", "172.18.0.1", id="ipv4")],
)
def test_support_gateway_is_first_address(cidr: str, expected: str) -> None:
    assert support_gateway(ip_network(cidr)) == ip_address(expected)


def test_dns64_forwarder_embeds_the_remote_server() -> None:
    assert embed_ipv4(IPv6Network("fd00:10:64:ff9b::/96"), IPv4Address("8.8.8.8")) == ip_address(
        "fd00:10:64:ff9b::8.8.8.8"
    )


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        pytest.param("2001:db8::/32", "2001:db8:c000:221::", id="32"),
        pytest.param("2001:db8:100::/40", "2001:db8:1c0:2:21::", id="40"),
        pytest.param("2001:db8:122::/48", "2001:db8:122:c000:2:2100::", id="48"),
        pytest.param("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::", id="56"),
        pytest.param("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0", id="64"),
        pytest.param("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33", id="96"),
    ],
)
def test_embed_ipv4_rfc6052_table(prefix: str, expected: str) -> None:
    """RFC 6052 section 2.4: 192.0.2.33 under each prefix length."""
    assert embed_ipv4(IPv6Network(prefix), IPv4Address("192.0.2.33")) == ip_address(expected)


def test_embed_ipv4_refuses_other_prefix_lengths() -> None:
    with pytest.raises(PlanError, match="RFC 6052"):
        embed_ipv4(IPv6Network("fd00:10:64:ff9b::/80"), IPv4Address("8.8.8.8"))


@pytest.mark.parametrize(
    ("version", "api"),
    [
        ("v1.11.0", "v1alpha2"),
        ("v1.12.3", "v1alpha3"),
        ("v1.13.0", "v1beta1"),
        ("v1.14.10", "v1beta1"),
        ("v1.15.0", "v1beta2"),
        ("v1.21.14", "v1beta2"),
        ("v1.22.0", "v1beta3"),
        ("v1.30.5", "v1beta3"),
        ("v1.31.0", "v1beta4"),
        ("v1.33.0-rc.1", "v1beta4"),
        ("latest", "v1beta4"),
        ("v1.10.13", None),
        ("v2.0.0", None),
        ("1.31.0", None),
    ],
)
def test_kubeadm_api_for(version: str, api: str | None) -> None:
    assert kubeadm_api_for(version) == api


def test_kubernetes_minor() -> None:
    assert kubernetes_minor("v1.31.2") == 31
    assert kubernetes_minor("latest") is None


# --- the whole plan ----------------------------------------------------------------------------


def test_ipv6_plan(make_plan: MakePlan) -> None:
    p = make_plan("ipv6", {"general.kubernetes-version": "v1.31.0"})
    master, minion = p.nodes["my-master"], p.nodes["a-minion"]

    assert p.mode == "ipv6"
    assert master.management == (ip_interface("fd00:20::2/64"),)
    assert minion.management == (ip_interface("fd00:20::3/64"),)
    assert master.pod_subnets == (ip_network("fd00:40:0:0:2::/80"),)
    assert master.pod_gateways == (ip_address("fd00:40:0:0:2::1"),)
    assert minion.pod_subnets == (ip_network("fd00:40:0:0:3::/80"),)
    assert p.dns_service_ip == ip_address("fd00:30::a")
    assert p.api_advertise_address == ip_address("fd00:20::2")
    assert p.dns64_forwarder == ip_address("fd00:10:64:ff9b::8.8.8.8")
    assert p.kubeadm_api_version == "v1beta4"


def test_ipv6_nameserver_is_dns64_ip(make_plan: MakePlan) -> None:
    p = make_plan("ipv6")

    assert {n.nameserver for n in p.nodes.values()} == {ip_address("fd00:10::100")}


def test_ipv6_cluster_node_routes_go_via_the_nat64_node(make_plan: MakePlan) -> None:
    minion = make_plan("ipv6").nodes["a-minion"]

    assert _routes(minion.routes) == {
        ("fd00:10:64:ff9b::/96", "fd00:20::2"),  # dns64.cidr via the NAT64 node's management IP
        ("fd00:10::/64", "fd00:20::2"),  # support_net.cidr, the same way
        ("fd00:40:0:0:2::/80", "fd00:20::2"),  # the master's pods
    }
    assert {r.device for r in minion.routes} == {"eth1"}


def test_nat64_node_routes_prefix_and_pool_over_the_support_network(make_plan: MakePlan) -> None:
    master = make_plan("ipv6").nodes["my-master"]
    support = [r for r in master.routes if r.phase == "prepare"]

    assert _routes(tuple(support)) == {
        ("fd00:10:64:ff9b::/96", "fd00:10::200"),  # dns64.cidr via nat64.ip
        ("172.18.0.128/25", "172.18.0.200"),  # nat64.v4_cidr via nat64.v4_ip
    }
    assert _routes(master.routes) - _routes(tuple(support)) == {("fd00:40:0:0:3::/80", "fd00:20::3")}


def test_dns64_nat64_on_a_node_of_its_own(make_plan: MakePlan) -> None:
    p = make_plan(
        "ipv6",
        {
            "topology.my-master.opmodes": "master",
            "topology.gw": {"interface": "eno2", "opmodes": "dns64 nat64", "id": 9},
        },
    )
    gw = p.nodes["gw"]

    assert gw.management == (ip_interface("fd00:20::9/64"),)
    assert gw.pod_subnets == ()
    assert gw.nameserver is None
    assert _routes(gw.routes) == {("fd00:10:64:ff9b::/96", "fd00:10::200"), ("172.18.0.128/25", "172.18.0.200")}
    for name in ("my-master", "a-minion"):
        assert {("fd00:10:64:ff9b::/96", "fd00:20::9"), ("fd00:10::/64", "fd00:20::9")} <= _routes(p.nodes[name].routes)
    assert p.nat64_node is gw
    assert [n.name for n in p.cluster_nodes()] == ["a-minion", "my-master"]


def test_ipv6_ids_of_10_and_more_are_hex_everywhere(make_plan: MakePlan) -> None:
    p = make_plan("ipv6", {"topology.my-master.id": 10, "topology.a-minion.id": 11})
    master, minion = p.nodes["my-master"], p.nodes["a-minion"]

    assert master.management == (ip_interface("fd00:20::a/64"),)
    assert minion.management == (ip_interface("fd00:20::b/64"),)
    assert master.pod_subnets == (ip_network("fd00:40:0:0:a::/80"),)
    assert master.pod_gateways == (ip_address("fd00:40:0:0:a::1"),)
    assert p.api_advertise_address == ip_address("fd00:20::a")
    assert _routes(minion.routes) == {
        ("fd00:10:64:ff9b::/96", "fd00:20::a"),
        ("fd00:10::/64", "fd00:20::a"),
        ("fd00:40:0:0:a::/80", "fd00:20::a"),
    }
    assert ("fd00:40:0:0:b::/80", "fd00:20::b") in _routes(master.routes)


def test_ipv4_ids_of_10_and_more_stay_decimal(make_plan: MakePlan) -> None:
    p = make_plan("ipv4", {"topology.my-master.id": 10, "topology.a-minion.id": 11})
    master, minion = p.nodes["my-master"], p.nodes["a-minion"]

    assert master.management == (ip_interface("10.192.0.10/16"),)
    assert master.pod_subnets == (ip_network("10.244.10.0/24"),)
    assert master.pod_gateways == (ip_address("10.244.10.1"),)
    assert _routes(minion.routes) == {("10.244.10.0/24", "10.192.0.10")}
    assert _routes(master.routes) == {("10.244.11.0/24", "10.192.0.11")}
    assert p.api_advertise_address == ip_address("10.192.0.10")


def test_ipv4_plan(make_plan: MakePlan) -> None:
    p = make_plan("ipv4")
    master, minion = p.nodes["my-master"], p.nodes["a-minion"]

    assert master.management == (ip_interface("10.192.0.2/16"),)
    assert master.pod_subnets == (ip_network("10.244.2.0/24"),)
    assert master.pod_gateways == (ip_address("10.244.2.1"),)
    assert p.dns_service_ip == ip_address("10.96.0.10")
    assert p.api_advertise_address == ip_address("10.192.0.2")
    assert p.dns64_forwarder is None
    assert p.kubeadm_api_version is None  # no kubernetes-version: chosen from kubeadm at prepare
    # Outside ipv6 mode each node is its own nameserver, on its management IP.
    assert master.nameserver == ip_address("10.192.0.2")
    assert minion.nameserver == ip_address("10.192.0.3")
    assert _routes(minion.routes) == {("10.244.2.0/24", "10.192.0.2")}


def test_dual_stack_plan_ipv6_services_first(make_plan: MakePlan) -> None:
    p = make_plan("dual-stack")
    master, minion = p.nodes["my-master"], p.nodes["a-minion"]

    assert master.management == (ip_interface("fd00:20::2/64"), ip_interface("10.192.0.2/16"))
    assert master.pod_subnets == (ip_network("fd00:40:0:0:2::/80"), ip_network("10.244.2.0/24"))
    assert master.pod_gateways == (ip_address("fd00:40:0:0:2::1"), ip_address("10.244.2.1"))
    assert p.dns_service_ip == ip_address("fd00:30::a")
    assert p.api_advertise_address == ip_address("fd00:20::2")
    assert minion.nameserver == ip_address("fd00:20::3")
    assert _routes(minion.routes) == {("fd00:40:0:0:2::/80", "fd00:20::2"), ("10.244.2.0/24", "10.192.0.2")}


def test_dual_stack_plan_ipv4_services_first(make_plan: MakePlan) -> None:
    p = make_plan("dual-stack", {"service_net.cidr": "10.96.0.0/12", "service_net.cidr2": "fd00:30::/110"})
    minion = p.nodes["a-minion"]

    assert p.dns_service_ip == ip_address("10.96.0.10")
    assert p.api_advertise_address == ip_address("10.192.0.2")
    assert minion.nameserver == ip_address("10.192.0.3")


def test_dual_stack_management_addresses_follow_the_file_order(make_plan: MakePlan) -> None:
    p = make_plan("dual-stack", {"mgmt_net.cidr": "10.192.0.0/16", "mgmt_net.cidr2": "fd00:20::/64"})

    assert p.nodes["my-master"].management == (ip_interface("10.192.0.2/16"), ip_interface("fd00:20::2/64"))
    assert p.api_advertise_address == ip_address("fd00:20::2")  # still the service family


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ipv6", ["fd00:20::/64", "fd00:40::/72", "fd00:10::/64", "172.18.0.0/16", "::1/128", "127.0.0.0/8"]),
        ("ipv4", ["10.192.0.0/16", "10.244.0.0/16", "::1/128", "127.0.0.0/8"]),
        ("dual-stack", ["fd00:20::/64", "10.192.0.0/16", "fd00:40::/72", "10.244.0.0/16", "::1/128", "127.0.0.0/8"]),
    ],
)
def test_served_networks_are_the_cluster_and_localhost(kit: ConfigKit, mode: str, expected: list[str]) -> None:
    """Who may use DNS64/NAT64: management, pod and support networks and localhost; not the service network."""
    config = kit.load(kit.variant(mode))
    assert [str(n) for n in plan.served_networks(config)] == expected


# --- DNS64 and NAT64 on different nodes, and the site's own ----------------------------------------


def test_split_dns64_and_nat64_routes(make_plan: MakePlan) -> None:
    """DNS64 on the master, NAT64 on the minion (ipv6-split): the prefix via the NAT64 node, the resolver via
    the DNS64 node, and on the NAT64 node the resolver's own address via the DNS64 node."""
    p = make_plan("ipv6-split", {"topology.other": {"interface": "eth1", "opmodes": "minion", "id": 4}})
    master, gateway, other = p.nodes["my-master"], p.nodes["a-minion"], p.nodes["other"]

    prepare = {n: {(str(r.destination), str(r.gateway), r.device) for r in p.nodes[n].routes if r.phase == "prepare"}
               for n in p.nodes}
    assert prepare["my-master"] == {("fd00:10:64:ff9b::/96", "fd00:20::3", "eth1")}
    assert prepare["a-minion"] == {
        ("fd00:10:64:ff9b::/96", "fd00:10::200", None),  # into tayga, over the support network
        ("172.18.0.128/25", "172.18.0.200", None),
        ("fd00:10::100/128", "fd00:20::2", "eth1"),  # the DNS64 server, though inside its own support network
    }
    assert prepare["other"] == {("fd00:10:64:ff9b::/96", "fd00:20::3", "eth1"), ("fd00:10::/64", "fd00:20::2", "eth1")}
    assert {n.nameserver for n in (master, gateway, other)} == {ip_address("fd00:10::100")}
    assert p.dns64_node is master and p.nat64_node is gateway


def test_split_keeps_the_combined_routes_unchanged(make_plan: MakePlan) -> None:
    """One node with both opmodes (lazyjack 1.x) routes exactly as before."""
    p = make_plan("ipv6")
    assert [(str(r.destination), str(r.gateway), r.device) for r in p.nodes["a-minion"].routes if r.phase == "prepare"] \
        == [("fd00:10:64:ff9b::/96", "fd00:20::2", "eth1"), ("fd00:10::/64", "fd00:20::2", "eth1")]
    assert [(str(r.destination), str(r.gateway), r.device) for r in p.nodes["my-master"].routes
            if r.phase == "prepare"] == [("fd00:10:64:ff9b::/96", "fd00:10::200", None),
                                         ("172.18.0.128/25", "172.18.0.200", None)]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, {("64:ff9b::/96", "fd00:20::64", "eth1")}, id="both-on-the-management-network"),
        pytest.param({"dns64.external-server": "fd00:99::53", "dns64.external-via": "fd00:20::1"},
                     {("64:ff9b::/96", "fd00:20::64", "eth1"), ("fd00:99::53/128", "fd00:20::1", "eth1")},
                     id="dns64-behind-a-router"),
    ],
)
def test_the_sites_own_dns64_and_nat64(make_plan: MakePlan, changes: dict[str, Any],
                                       expected: set[tuple[str, str, str]]) -> None:
    p = make_plan("ipv6-external", changes)
    for node in p.nodes.values():
        assert {(str(r.destination), str(r.gateway), r.device) for r in node.routes if r.phase == "prepare"} == expected
        assert node.nameserver == ip_address(changes.get("dns64.external-server", "fd00:20::53"))
    assert p.dns64_node is None and p.nat64_node is None and p.dns64_forwarder is None


def test_own_dns64_with_the_sites_nat64(make_plan: MakePlan) -> None:
    p = make_plan("ipv6-split", {"topology.a-minion.opmodes": "minion", "nat64": {"external-gateway": "fd00:20::64"}})
    assert [(str(r.destination), str(r.gateway)) for r in p.nodes["my-master"].routes if r.phase == "prepare"] == [
        ("fd00:10:64:ff9b::/96", "fd00:20::64")]
    assert _routes(tuple(r for r in p.nodes["a-minion"].routes if r.phase == "prepare")) == {
        ("fd00:10:64:ff9b::/96", "fd00:20::64"), ("fd00:10::/64", "fd00:20::2")}
    assert p.dns64_forwarder == ip_address("fd00:10:64:ff9b::808:808")


# --- RFC 7050: the prefix behind ipv4only.arpa ---------------------------------------------------------


@pytest.mark.parametrize("prefix", ["64:ff9b::/96", "fd00:10:64:ff9b::/96", "2001:db8:122:344::/64",
                                    "2001:db8:122:300::/56", "2001:db8:122::/48", "2001:db8:100::/40",
                                    "2001:db8::/32"])
def test_discovered_prefix_of_each_rfc6052_length(prefix: str) -> None:
    network = IPv6Network(prefix)
    answers = [embed_ipv4(network, a) for a in addresses.IPV4ONLY_ADDRESSES]
    assert addresses.discovered_prefixes(answers) == [network]
    assert [addresses.embedded_ipv4(a, network.prefixlen) for a in answers] == list(addresses.IPV4ONLY_ADDRESSES)


def test_discovered_prefixes_ignore_other_addresses_and_keep_answer_order() -> None:
    answers = [ip_address("2001:db8::1"), ip_address("fd00:10:64:ff9b::c000:ab"), ip_address("64:ff9b::c000:aa")]
    assert addresses.discovered_prefixes(answers) == [IPv6Network("fd00:10:64:ff9b::/96"), IPv6Network("64:ff9b::/96")]  # type: ignore[arg-type]
    assert addresses.discovered_prefixes([]) == []
