"""Pre-flight of IPv6 egress: the RFC 7050 check of the site's DNS64 server, and what the installed tayga accepts."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network, ip_interface, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fake_host import FakeNetlink, FakeRunner, FakeSysctl
from lazyjack.addresses import IPV4ONLY_ADDRESSES, embed_ipv4
from lazyjack.commands.node import check_external_dns64, uses_external_dns64
from lazyjack.config.plan import build_plan
from lazyjack.errors import PreflightError
from lazyjack.host import Host
from lazyjack.host.dns import DnsAnswer
from lazyjack.host.files import Files
from lazyjack.render.nat64 import tayga_conf
from lazyjack.steps.base import Context
from lazyjack.steps.support import TAYGA_CANDIDATES, check_tayga

if TYPE_CHECKING:
    from conftest import ConfigKit

WKP = IPv6Network("64:ff9b::/96")


class FakeDns:
    """Answers every question with `answer` (or raises it), and records what was asked."""

    def __init__(self, answer: DnsAnswer | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[IPv6Address, str]] = []

    def aaaa(self, server: IPv6Address, name: str, *, timeout: float = 2.0, tries: int = 2) -> DnsAnswer:
        self.asked.append((server, name))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _ctx(kit: ConfigKit, tmp_path: Path, base: str, changes: dict[str, Any], node: str, *,
         dns: FakeDns | None = None, prepared: bool = True) -> tuple[Context, list[str]]:
    config = kit.load(kit.variant(base, changes))
    plan = build_plan(config)
    net = FakeNetlink()
    net.add_link("eth1")
    if prepared:
        for address in plan.nodes[node].management:
            net.add_address("eth1", address)
        for route in plan.nodes[node].routes:
            if route.device == "eth1":
                net.add_route(route.destination, route.gateway, dev="eth1")
    host = Host(net=net, files=Files(tmp_path), sysctl=FakeSysctl(), proc=FakeRunner(),
                dns=dns or FakeDns(DnsAnswer(0)))
    lines: list[str] = []
    return Context(host=host, config=config, plan=plan, node=plan.nodes[node], root=tmp_path,
                   report=lines.append), lines


def _synthesised(prefix: IPv6Network) -> DnsAnswer:
    return DnsAnswer(0, tuple(embed_ipv4(prefix, a) for a in IPV4ONLY_ADDRESSES))


# --- RFC 7050 -----------------------------------------------------------------------------------------


def test_a_dns64_server_that_synthesises_in_dns64_cidr_passes(kit: ConfigKit, tmp_path: Path) -> None:
    dns = FakeDns(_synthesised(WKP))
    ctx, lines = _ctx(kit, tmp_path, "ipv6-external", {}, "a-minion", dns=dns)
    assert uses_external_dns64(ctx)
    assert check_external_dns64(ctx) == []
    assert dns.asked == [(IPv6Address("fd00:20::53"), "ipv4only.arpa")]
    assert lines == ["  · dns64.external-server fd00:20::53 synthesises in 64:ff9b::/96 (ipv4only.arpa, RFC 7050)"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(_synthesised(IPv6Network("2001:db8:64::/48")),
                     "dns64.external-server fd00:20::53 synthesises in 2001:db8:64::/48, not in dns64.cidr "
                     "64:ff9b::/96: the nodes route only 64:ff9b::/96 to the NAT64 gateway; set dns64.cidr: "
                     "2001:db8:64::/48", id="another-prefix"),
        pytest.param(DnsAnswer(0), "synthesised no AAAA for ipv4only.arpa (it answered NOERROR with 0 AAAA; "
                     "RFC 7050)", id="no-aaaa"),
        pytest.param(DnsAnswer(5), "it answered REFUSED with 0 AAAA", id="refused"),
        pytest.param(DnsAnswer(0, (IPv6Address("2001:db8::1"),)), "answered ipv4only.arpa AAAA with 2001:db8::1, "
                     "in which neither 192.0.0.170 nor 192.0.0.171 is embedded", id="not-synthesised"),
        pytest.param(TimeoutError("no answer from fd00:20::53 within 2 x 2s"),
                     "gave no answer for ipv4only.arpa AAAA (no answer from fd00:20::53 within 2 x 2s)", id="silent"),
        pytest.param(OSError(101, "Network is unreachable"), "cannot ask dns64.external-server fd00:20::53 for "
                     "ipv4only.arpa AAAA: Network is unreachable", id="unreachable"),
    ],
)
def test_warnings_name_what_the_server_did(kit: ConfigKit, tmp_path: Path, answer: DnsAnswer | Exception,
                                           expected: str) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6-external", {}, "a-minion", dns=FakeDns(answer))
    warnings = check_external_dns64(ctx)
    assert warnings is not None and len(warnings) == 1 and expected in warnings[0], warnings


@pytest.mark.parametrize("failure", [TimeoutError("silent"), OSError(101, "Network is unreachable")])
@pytest.mark.parametrize(("changes", "prepared"), [
    pytest.param({}, False, id="no-management-address-yet"),
    pytest.param({"dns64.external-server": "fd00:99::53", "dns64.external-via": "fd00:20::1"}, "address-only",
                 id="no-route-to-it-yet"),
])
def test_a_node_without_its_way_to_the_server_asks_after_prepare(
        kit: ConfigKit, tmp_path: Path, failure: Exception, changes: dict[str, Any], prepared: bool | str) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6-external", changes, "a-minion", dns=FakeDns(failure), prepared=False)
    if prepared == "address-only":
        ctx.host.net.add_address("eth1", ip_interface("fd00:20::3/64"))
    assert check_external_dns64(ctx) is None


def test_only_cluster_nodes_using_the_sites_server_ask(kit: ConfigKit, tmp_path: Path) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6", {}, "a-minion")
    assert not uses_external_dns64(ctx)
    changes = {"topology.gw": {"interface": "eth1", "opmodes": "nat64", "id": 9}, "nat64": kit.variant("ipv6")["nat64"],
               "support_net": kit.variant("ipv6")["support_net"]}
    ctx, _ = _ctx(kit, tmp_path, "ipv6-external", {**changes, "nat64.external-gateway": None}, "gw")
    assert not uses_external_dns64(ctx)


# --- what the installed tayga accepts -------------------------------------------------------------------


def _asker(accepts: Callable[[str], bool], said: str = "Cannot use reserved address") -> tuple[
        Callable[[str], tuple[bool, str]], list[str]]:
    asked: list[str] = []

    def ask(conf: str) -> tuple[bool, str]:
        asked.append(conf)
        return (True, "") if accepts(conf) else (False, said)

    return ask, asked


def test_a_config_tayga_accepts_is_asked_once(kit: ConfigKit, tmp_path: Path) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6", {}, "my-master")
    ask, asked = _asker(lambda _conf: True)
    check_tayga(ctx, ask=ask, which="the installed tayga", data_dir="/d")
    assert len(asked) == 1


def test_a_refused_prefix_names_the_ones_that_work(kit: ConfigKit, tmp_path: Path) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6", {"dns64.cidr": "64:ff9b:1::/96"}, "my-master")
    ask, asked = _asker(lambda conf: "prefix 64:ff9b:1::" not in conf)
    with pytest.raises(PreflightError) as caught:
        check_tayga(ctx, ask=ask, which="the installed tayga", data_dir="/d")
    message = str(caught.value)
    assert message.startswith("the installed tayga refuses the NAT64 configuration for dns64.cidr 64:ff9b:1::/96: "
                              "Cannot use reserved address; prefixes it accepts: 64:ff9b::/96, fd00:10:64:ff9b::/96")
    assert "nat64.external-gateway" in message
    # It was asked about each candidate but the refused one, the well-known one with its own address.
    assert len(asked) == 1 + len(TAYGA_CANDIDATES) - 1
    wkp = next(conf for conf in asked if "prefix 64:ff9b::/96" in conf)
    assert "ipv6-addr fd00:10::200" in wkp.splitlines() and "data-dir /d" in wkp.splitlines()


def test_a_tayga_that_accepts_nothing_says_so(kit: ConfigKit, tmp_path: Path) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6", {}, "my-master")
    ask, _ = _asker(lambda _conf: False, said="")
    with pytest.raises(PreflightError, match=r"no reason given; it accepts none of 64:ff9b::/96, 64:ff9b:1::/96, "
                                             r"fd00:10:64:ff9b::/96 either"):
        check_tayga(ctx, ask=ask, which="the installed tayga", data_dir="/d")


@pytest.mark.parametrize(("prefix", "ipv6_addr"), [("64:ff9b::/96", True), ("fd00:10:64:ff9b::/96", False),
                                                    ("64:ff9b:1::/96", False)])
def test_tayga_gets_its_own_address_only_with_the_well_known_prefix(
        kit: ConfigKit, tmp_path: Path, prefix: str, ipv6_addr: bool) -> None:
    ctx, _ = _ctx(kit, tmp_path, "ipv6", {"dns64.cidr": prefix}, "my-master")
    lines = tayga_conf(ctx.egress, data_dir="/d").splitlines()
    assert ("ipv6-addr fd00:10::200" in lines) == ipv6_addr
    assert f"prefix {prefix}" in lines and ip_network(prefix)
