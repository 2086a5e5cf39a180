"""DNS64/NAT64 with the native runtime, end to end: an IPv6-only node reaches an IPv4-only site by name.

my-master (master, dns64, nat64) runs named or unbound, and tayga, in its support namespace; its uplink
leads to a simulated IPv4 internet (tests/e2e/internet.py) with an authoritative DNS server
and a web server. a-minion, IPv6 only, resolves, fetches and pings through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from internet import UPLINK, ZONE, Internet, internet
from servers import kill_servers, namespaces, server_pids

from lazyjack.host.netns import support_netns
from lazyjack.steps.support import RULE_COMMENT, SUPPORT_LINK
from netns.cluster import EXAMPLES, Cluster, Node, assert_nothing_changed, make_cluster, sh

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("e2e_programs")]

MASTER, MINION = "my-master", "a-minion"
# From the example config (src/lazyjack/examples/ipv6.yaml).
REMOTE_DNS = IPv4Address("203.0.113.53")
DNS64_SERVER = IPv6Address("fd00:10::100")
# The records of the simulated internet, embedded in the DNS64 prefix fd00:10:64:ff9b::/96.
WWW_SYNTHESISED = IPv6Address("fd00:10:64:ff9b::cb00:7150")  # 203.0.113.80
DUAL_SYNTHESISED = IPv6Address("fd00:10:64:ff9b::cb00:7151")  # 203.0.113.81
DUAL_REAL = IPv6Address("2001:db8:80::80")


@dataclass
class Lab:
    cluster: Cluster
    net: Internet
    allow_aaaa: bool
    program: str  # the DNS64 server: named or unbound

    @property
    def master(self) -> Node:
        return self.cluster.nodes[MASTER]

    @property
    def minion(self) -> Node:
        return self.cluster.nodes[MINION]


def _config_text(*, allow_aaaa: bool, server: str) -> str:
    text = (EXAMPLES / "ipv6.yaml").read_text()
    for needle in ("dns64-nat64-runtime: native", f"remote_server: {REMOTE_DNS}", f"ip: {DNS64_SERVER}",
                   "cidr: fd00:10:64:ff9b::/96", "allow_aaaa_use: false"):
        assert needle in text, f"the example config changed: {needle!r} is gone"
    text = text.replace("allow_aaaa_use: false", f"allow_aaaa_use: {str(allow_aaaa).lower()}")
    # bind9 is the default: its configs do not say so (as every 1.x config).
    return text if server == "bind9" else text.replace("dns64:\n", f"dns64:\n    server: {server}\n")


@pytest.fixture(params=[("bind9", False), ("bind9", True), ("unbound", False), ("unbound", True)],
                ids=["bind9-synthesised", "bind9-allow-aaaa", "unbound-synthesised", "unbound-allow-aaaa"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    server, allow_aaaa = request.param
    cluster = make_cluster(tmp_path, _config_text(allow_aaaa=allow_aaaa, server=server), [MASTER, MINION])
    tag = cluster.namespaces[0].rsplit("-", 1)[0]  # "ljt-<tag>" of make_cluster's namespaces
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(cluster.destroy)
        for node in cluster.nodes.values():
            # Whatever a failed run left: the servers (never reaped by a clean that did not run) and
            # the support namespace, which outlives the node's namespace.
            cleanup.callback(sh, "ip", "netns", "del", support_netns(node.root), check=False)
            cleanup.callback(kill_servers, node.root)
        net = cleanup.enter_context(
            internet(tmp_path / "internet", netns=f"{tag}-inet", node_netns=cluster.nodes[MASTER].netns,
                     dns=REMOTE_DNS)
        )
        yield Lab(cluster, net, allow_aaaa, "named" if server == "bind9" else "unbound")


def _dig_aaaa(node: Node, name: str) -> list[IPv6Address]:
    out = node.exec("dig", "+short", "+time=2", "+tries=2", "AAAA", name, f"@{DNS64_SERVER}").stdout
    return [IPv6Address(line) for line in out.split()]


def _dig_soa(net: Internet) -> bool:
    argv = ["ip", "netns", "exec", net.netns, "dig", "+short", "+time=2", "+tries=1", f"@{net.dns}", "SOA", ZONE]
    return bool(sh(*argv).stdout.strip())


def _iptables_rules(node: Node) -> str:
    tables = [(program, table) for program in ("iptables", "ip6tables") for table in ("filter", "nat")]
    return "\n".join(node.exec(program, "-w", "5", "-t", table, "-S").stdout for program, table in tables)


def test_ipv6_only_node_reaches_ipv4_site_by_name(lab: Lab) -> None:
    cluster, master, minion, program = lab.cluster, lab.master, lab.minion, lab.program
    support = support_netns(master.root)
    before = cluster.snapshots()
    assert UPLINK in before[MASTER]["links"]

    out = cluster.ok(MASTER, "prepare")
    assert "NAT64 server (tayga)" in out and f"DNS64 server ({program})" in out, out
    cluster.ok(MINION, "prepare")
    pids = server_pids(master.root)
    assert sorted(pids) == sorted([program, "tayga"]) and all(len(p) == 1 for p in pids.values()), pids
    assert support in namespaces()
    # The server keeps its pid file in the work area, away from the host's own (/run/named, /run/unbound.pid).
    pid_file = master.root / f"tmp/lazyjack/dns64/data/{program}.pid"
    assert pid_file.read_text().split() == [str(pids[program][0])]
    assert RULE_COMMENT in _iptables_rules(master)

    # The minion resolves an IPv4-only name to an address of the NAT64 prefix, and reaches it.
    assert _dig_aaaa(minion, "www.lab.example") == [WWW_SYNTHESISED]
    page = minion.exec("curl", "-6", "-s", "-g", "--max-time", "5", f"http://[{WWW_SYNTHESISED}]/").stdout
    assert page == lab.net.page
    minion.exec("ping", "-6", "-c", "1", "-W", "2", str(WWW_SYNTHESISED))
    # A name with a real AAAA keeps it only when allow_aaaa_use says so.
    assert _dig_aaaa(minion, "dual.lab.example") == ([DUAL_REAL] if lab.allow_aaaa else [DUAL_SYNTHESISED])

    # prepare again: the servers keep running, nothing changes.
    out = cluster.ok(MASTER, "prepare")
    assert_nothing_changed(out, MASTER, "prepared")
    running = [line for line in out.splitlines() if "running (pid" in line]
    assert len(running) == 2 and any(program in line for line in running) and any("tayga" in line for line in running), out
    assert server_pids(master.root) == pids

    # clean, twice, on both: no server, no support namespace or link, no rule; all as before.
    for name in (MINION, MASTER):
        cluster.ok(name, "clean")
        assert_nothing_changed(cluster.ok(name, "clean"), name, "clean")
    for node in cluster.nodes.values():
        assert server_pids(node.root) == {}
        assert support_netns(node.root) not in namespaces()
    assert SUPPORT_LINK not in master.snapshot()["links"]
    assert RULE_COMMENT not in _iptables_rules(master)
    assert cluster.snapshots() == before

    # A stale pid file (say, after a reboot) whose pid now belongs to another named is not trusted:
    # prepare starts its own server and leaves that one alone; clean stops only its own.
    other = lab.net.processes[0]  # the internet's named: another configuration (and for unbound, program)
    stale = master.root / f"tmp/lazyjack/dns64/{program}.pid"
    stale.parent.mkdir(parents=True)
    stale.write_text(f"{other.pid}\n")
    out = cluster.ok(MASTER, "prepare")
    assert any(f"DNS64 server ({program}): start {program}" in line for line in out.splitlines()), out
    assert other.poll() is None and _dig_soa(lab.net)
    ours = server_pids(master.root)[program]
    assert stale.read_text().split() == [str(ours[0])]
    cluster.ok(MASTER, "clean")
    assert other.poll() is None and _dig_soa(lab.net)
    assert server_pids(master.root) == {}


# --- only the cluster may use DNS64 and NAT64 ------------------------------------------------------

# A client on the uplink side of the DNS64/NAT64 node: the simulated internet's end of the uplink, with
# an IPv6 address of its own (documentation prefix) and routes to the support network and the DNS64
# prefix via the node, as any neighbour on the node's uplink could set up.
OUTSIDE_LINK = "2001:db8:5::/64"
OUTSIDE_CLIENT, OUTSIDE_NODE = "2001:db8:5::1", "2001:db8:5::2"
SUPPORT_NET, DNS64_PREFIX = "fd00:10::/64", "fd00:10:64:ff9b::/96"


def _dig_status(netns: str, name: str) -> str:
    """dig's answer status from inside `netns` to the DNS64 server ('NOERROR', 'REFUSED', ...), or 'no answer'."""
    out = sh("ip", "netns", "exec", netns, "dig", "+time=2", "+tries=1", "AAAA", name, f"@{DNS64_SERVER}",
             check=False).stdout
    for line in out.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return "no answer"


def _rule(node: Node, action: str, *spec: str) -> None:
    node.exec("ip6tables", "-w", "5", action, "FORWARD", *spec, "-m", "comment", "--comment", RULE_COMMENT,
              "-j", "DROP")


@pytest.mark.parametrize("lab", [("bind9", False), ("unbound", False)], ids=["bind9", "unbound"], indirect=True)
def test_only_the_cluster_may_use_dns64_and_nat64(lab: Lab) -> None:
    cluster, master, minion, net = lab.cluster, lab.master, lab.minion, lab.net
    outside = ["ip", "netns", "exec", net.netns]
    sh("ip", "-n", net.netns, "addr", "add", f"{OUTSIDE_CLIENT}/64", "dev", "wan0", "nodad")
    sh("ip", "-n", master.netns, "addr", "add", f"{OUTSIDE_NODE}/64", "dev", UPLINK, "nodad")
    for destination in (SUPPORT_NET, DNS64_PREFIX):
        sh("ip", "-n", net.netns, "-6", "route", "add", destination, "via", OUTSIDE_NODE)
    cluster.ok(MASTER, "prepare")
    cluster.ok(MINION, "prepare")

    # The cluster resolves and fetches through DNS64 and NAT64 ...
    assert _dig_aaaa(minion, "www.lab.example") == [WWW_SYNTHESISED]
    page = minion.exec("curl", "-6", "-s", "-g", "--max-time", "5", f"http://[{WWW_SYNTHESISED}]/").stdout
    assert page == net.page
    # ... a neighbour on the uplink side gets no answer from the resolver and nothing through the translator.
    assert _dig_status(net.netns, "www.lab.example") == "no answer"
    fetched = sh(*outside, "curl", "-6", "-s", "-g", "--max-time", "3", f"http://[{WWW_SYNTHESISED}]/", check=False)
    assert fetched.returncode != 0 and fetched.stdout == ""
    ping = sh(*outside, "ping", "-6", "-c", "1", "-W", "2", str(WWW_SYNTHESISED), check=False)
    assert ping.returncode != 0
    # The resolver itself refuses it too, should its packets get through (the firewall rule taken out for a moment).
    _rule(master, "-D", "-d", SUPPORT_NET)
    try:
        assert _dig_status(net.netns, "www.lab.example") == "REFUSED"
        assert _dig_status(minion.netns, "www.lab.example") == "NOERROR"
    finally:
        _rule(master, "-A", "-d", SUPPORT_NET)

    for name in (MINION, MASTER):
        cluster.ok(name, "clean")
    assert RULE_COMMENT not in _iptables_rules(master)
