"""IPv6 egress the way sites run it, native runtime, end to end against the simulated IPv4 internet.

- the well-known prefix 64:ff9b::/96 with a private NAT64 pool (tayga gets an ipv6-addr);
- the local-use prefix 64:ff9b:1::/96, which Debian 12's tayga refuses: pre-flight says so first;
- the site's own DNS64 server and NAT64 gateway (a namespace the test runs, site.py): lazyjack
  starts no server and the nodes still resolve and fetch; pre-flight checks it with RFC 7050;
- DNS64 on one node and NAT64 on another.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

import pytest
from internet import Internet, Records, internet
from servers import kill_servers, namespaces, server_pids
from site_servers import Site, site, start

from lazyjack.addresses import embed_ipv4
from lazyjack.host.netns import support_netns
from lazyjack.steps.support import SUPPORT_LINK
from netns.cluster import EXAMPLES, Cluster, Node, make_cluster, sh

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("e2e_programs")]

MASTER, MINION, GATEWAY = "my-master", "a-minion", "nat-gw"
NSP = IPv6Network("fd00:10:64:ff9b::/96")
WKP = IPv6Network("64:ff9b::/96")
LOCAL_USE = IPv6Network("64:ff9b:1::/96")
DNS64_SERVER = IPv6Address("fd00:10::100")
DOCUMENTATION = Records(IPv4Address("203.0.113.80"), IPv4Address("203.0.113.81"), IPv6Address("2001:db8:80::80"))
REMOTE_DNS = IPv4Address("203.0.113.53")
# tayga drops every documentation range under the well-known prefix (RFC 6052 section 3.1): that internet
# uses the shared address space instead, which Debian 12's tayga 0.9.2 translates (docs/IPV6-EGRESS.md).
SHARED = Records(IPv4Address("100.64.113.80"), IPv4Address("100.64.113.81"), IPv6Address("2001:db8:80::80"))
SHARED_DNS = IPv4Address("100.64.113.53")


def example(**replace: str) -> str:
    """The packaged IPv6 example with whole lines replaced (`'    cidr: fd00:10:64:ff9b::/96': '...'`)."""
    text = (EXAMPLES / "ipv6.yaml").read_text()
    for old, new in replace.items():
        assert old in text, f"the example config changed: {old!r} is gone"
        text = text.replace(old, new)
    return text


@dataclass
class Egress:
    cluster: Cluster
    net: Internet
    tmp: Path

    def node(self, name: str) -> Node:
        return self.cluster.nodes[name]


@contextlib.contextmanager
def egress(tmp_path: Path, config: str, nodes: list[str], *, uplink: str | None, dns: IPv4Address,
           records: Records) -> Iterator[tuple[Cluster, contextlib.ExitStack, str]]:
    """The cluster, an ExitStack that tears it down, and the namespace tag; the internet attached to `uplink`'s
    node (None: the caller attaches it, to a site)."""
    cluster = make_cluster(tmp_path, config, nodes)
    tag = cluster.namespaces[0].rsplit("-", 1)[0]
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(cluster.destroy)
        for node in cluster.nodes.values():
            cleanup.callback(sh, "ip", "netns", "del", support_netns(node.root), check=False)
            cleanup.callback(kill_servers, node.root)
        if uplink is not None:
            cleanup.enter_context(internet(tmp_path / "internet", netns=f"{tag}-inet",
                                           node_netns=cluster.nodes[uplink].netns, dns=dns, records=records))
        yield cluster, cleanup, tag


def dig_aaaa(node: Node, name: str, server: IPv6Address) -> list[IPv6Address]:
    out = node.exec("dig", "+short", "+time=2", "+tries=2", "AAAA", name, f"@{server}").stdout
    return [IPv6Address(line) for line in out.split()]


def fetch(node: Node, address: IPv6Address) -> str:
    return node.exec("curl", "-6", "-s", "-g", "--max-time", "5", f"http://[{address}]/").stdout


def nameserver(node: Node) -> IPv6Address:
    lines = (node.root / "etc/resolv.conf").read_text().splitlines()
    return IPv6Address(next(line.split()[1] for line in lines if line.startswith("nameserver")))


def reaches(node: Node, records: Records, prefix: IPv6Network, page: str) -> None:
    """The node resolves www through its first nameserver into `prefix` and fetches and pings it."""
    server = nameserver(node)
    synthesised = embed_ipv4(prefix, records.www_a)
    assert dig_aaaa(node, "www.lab.example", server) == [synthesised], node.name
    assert fetch(node, synthesised) == page, node.name
    node.exec("ping", "-6", "-c", "1", "-W", "2", str(synthesised))


def clean_all(cluster: Cluster, order: list[str], before: dict[str, object]) -> None:
    for name in order:
        cluster.ok(name, "clean")
        assert "nothing to change" in cluster.ok(name, "clean")
    for node in cluster.nodes.values():
        assert server_pids(node.root) == {}
        assert support_netns(node.root) not in namespaces()
    assert cluster.snapshots() == before


# --- the well-known prefix --------------------------------------------------------------------------


def test_well_known_prefix_with_a_private_pool(tmp_path: Path) -> None:
    config = example(**{"    cidr: fd00:10:64:ff9b::/96": f"    cidr: {WKP}",
                        f"    remote_server: {REMOTE_DNS}": f"    remote_server: {SHARED_DNS}"})
    with egress(tmp_path, config, [MASTER, MINION], uplink=MASTER, dns=SHARED_DNS, records=SHARED) as (cluster, *_):
        before = cluster.snapshots()
        cluster.ok(MASTER, "prepare")
        cluster.ok(MINION, "prepare")
        tayga = (cluster.nodes[MASTER].root / "tmp/lazyjack/nat64/tayga.conf").read_text().splitlines()
        assert "ipv6-addr fd00:10::200" in tayga and "ipv4-addr 172.18.0.200" in tayga, tayga
        assert "dynamic-pool 172.18.0.128/25" in tayga and f"prefix {WKP}" in tayga
        page = (tmp_path / "internet/www/index.html").read_text()
        for name in (MINION, MASTER):
            reaches(cluster.nodes[name], SHARED, WKP, page)
        clean_all(cluster, [MINION, MASTER], before)


def _tayga_accepts(prefix: IPv6Network) -> bool:
    conf = f"tun-device nat64\nipv4-addr 172.18.0.200\nprefix {prefix}\ndynamic-pool 172.18.0.128/25\ndata-dir /\n"
    argv = ["unshare", "--net", "tayga", "--config", "/dev/stdin", "--mktun"]
    return subprocess.run(argv, input=conf, capture_output=True, text=True, timeout=30).returncode == 0


def test_a_prefix_the_installed_tayga_refuses_stops_prepare_before_any_change(tmp_path: Path) -> None:
    config = example(**{"    cidr: fd00:10:64:ff9b::/96": f"    cidr: {LOCAL_USE}"})
    with egress(tmp_path, config, [MASTER, MINION], uplink=MASTER, dns=REMOTE_DNS,
                records=DOCUMENTATION) as (cluster, *_):
        before = cluster.snapshots()
        # Only tun devices: other tests running at the same time make and remove links of their own.
        tuns = sh("ip", "link", "show", "type", "tun").stdout
        result = cluster.run(MASTER, "prepare")
        if _tayga_accepts(LOCAL_USE):  # a tayga newer than Debian 12's takes the local-use prefix
            assert result.returncode == 0, result.stdout + result.stderr
            cluster.ok(MASTER, "clean")
            return
        assert result.returncode == 1, result.stdout + result.stderr
        message = result.stderr
        assert "prepare stopped before changing anything" in message
        assert f"the installed tayga refuses the NAT64 configuration for dns64.cidr {LOCAL_USE}" in message
        assert "Cannot use reserved address 64:ff9b:1::/96" in message  # what tayga itself said
        assert f"prefixes it accepts: {WKP}, {NSP}" in message, message
        assert "Traceback" not in message
        assert cluster.snapshots() == before
        assert support_netns(cluster.nodes[MASTER].root) not in namespaces()
        assert sh("ip", "link", "show", "type", "tun").stdout == tuns  # no tun left here by the question


# --- the site's own DNS64 server and NAT64 gateway -------------------------------------------------


def external_config(*, server: IPv6Address, gateway: IPv6Address, prefix: IPv6Network,
                    via: IPv6Address | None = None) -> str:
    """The example with the site's DNS64/NAT64 instead of its own: no dns64/nat64 opmode, no support_net."""
    text = example(**{"        opmodes: master dns64 nat64": "        opmodes: master"})
    head, _, _ = text.partition("support_net:")
    nets = text[text.index("mgmt_net:"):text.index("nat64:")]
    lines = [f"nat64:\n    external-gateway: {gateway}\n", f"dns64:\n    cidr: {prefix}\n",
             f"    external-server: {server}\n"]
    if via is not None:
        lines.append(f"    external-via: {via}\n")
    return head + nets + "".join(lines)


@dataclass
class SiteCase:
    on_switch: list[str]
    server: str
    gateway: str
    via: str | None = None


SITES = {
    "on-the-management-network": SiteCase(["fd00:20::53/64", "fd00:20::64/64"], "fd00:20::53", "fd00:20::64"),
    # The DNS64 server sits on another network; the site's router (on the management network) reaches it.
    "dns64-behind-a-router": SiteCase(["fd00:20::1/64"], "fd00:99::53", "fd00:20::1", via="fd00:20::1"),
}


@contextlib.contextmanager
def site_cluster(tmp_path: Path, case: SiteCase, *, prefix: IPv6Network,
                 config_prefix: IPv6Network | None = None) -> Iterator[tuple[Cluster, Site]]:
    config = external_config(server=IPv6Address(case.server), gateway=IPv6Address(case.gateway),
                             prefix=config_prefix or prefix, via=IPv6Address(case.via) if case.via else None)
    with egress(tmp_path, config, [MASTER, MINION], uplink=None, dns=REMOTE_DNS,
                records=DOCUMENTATION) as (cluster, cleanup, tag):
        the_site = cleanup.enter_context(site(
            tmp_path / "site", netns=f"{tag}-site", switch=cluster.namespaces[0],
            on_switch=[IPv6Interface(a) for a in case.on_switch], dns64=IPv6Address(case.server), prefix=prefix))
        cleanup.enter_context(internet(tmp_path / "internet", netns=f"{tag}-inet", node_netns=the_site.netns,
                                       dns=REMOTE_DNS, records=DOCUMENTATION))
        start(the_site, tmp_path / "site", remote=REMOTE_DNS)
        yield cluster, the_site


@pytest.mark.parametrize("case", list(SITES.values()), ids=list(SITES))
def test_the_sites_own_dns64_and_nat64(tmp_path: Path, case: SiteCase) -> None:
    with site_cluster(tmp_path, case, prefix=NSP) as (cluster, the_site):
        before = cluster.snapshots()
        for name in (MASTER, MINION):
            out = cluster.ok(name, "prepare")
            assert f"dns64.external-server {case.server} synthesises in {NSP}" in out, out
            assert not [line for line in out.splitlines() if "warning" in line and "dns64" in line], out
        page = (tmp_path / "internet/www/index.html").read_text()
        for name in (MASTER, MINION):
            node = cluster.nodes[name]
            assert nameserver(node) == IPv6Address(case.server)
            routes = node.exec("ip", "-6", "route", "show", str(NSP)).stdout
            assert f"via {case.gateway} dev eth1" in routes, routes
            reaches(node, DOCUMENTATION, NSP, page)
        # lazyjack started no server and made no support network anywhere.
        for node in cluster.nodes.values():
            assert server_pids(node.root) == {}
            assert support_netns(node.root) not in namespaces()
            assert SUPPORT_LINK not in node.snapshot()["links"]
        clean_all(cluster, [MINION, MASTER], before)
        assert the_site.processes and all(p.poll() is None for p in the_site.processes)


def test_pre_flight_warns_when_the_sites_dns64_synthesises_elsewhere_or_not_at_all(tmp_path: Path) -> None:
    case = SITES["on-the-management-network"]
    elsewhere = IPv6Network("fd00:64::/96")
    with site_cluster(tmp_path, case, prefix=NSP, config_prefix=elsewhere) as (cluster, _):
        result = cluster.run(MINION, "prepare", "--dry-run")
        assert result.returncode == 0, result.stderr
        # Before prepare the minion has no address on the management network: it asks once prepare made one.
        assert "is asked (RFC 7050) once prepare has set up the way to it" in result.stdout, result.stdout
        out = cluster.ok(MINION, "prepare")
        assert (f"! warning: dns64.external-server {case.server} synthesises in {NSP}, not in dns64.cidr "
                f"{elsewhere}") in out, out
        assert f"set dns64.cidr: {NSP}" in out
        # Asked again when prepared: the same warning, now from pre-flight.
        out = cluster.ok(MINION, "prepare")
        assert f"synthesises in {NSP}, not in dns64.cidr {elsewhere}" in out, out
        cluster.ok(MINION, "clean")

        # A server that does not answer at all (nothing listens at that address of the site).
        text = cluster.config.read_text().replace(f"external-server: {case.server}", "external-server: fd00:20::64")
        cluster.config.write_text(text)
        out = cluster.ok(MINION, "prepare")
        assert "! warning: dns64.external-server fd00:20::64 gave no answer for ipv4only.arpa AAAA" in out \
            or "! warning: cannot ask dns64.external-server fd00:20::64" in out, out
        cluster.ok(MINION, "clean")


# --- DNS64 and NAT64 on different nodes ---------------------------------------------------------------


def test_dns64_and_nat64_on_different_nodes(tmp_path: Path) -> None:
    config = example(**{"        opmodes: master dns64 nat64": "        opmodes: master dns64",
                        "    a-minion:\n": f"    {GATEWAY}:\n        interface: eth1\n        opmodes: nat64\n"
                                          "        id: 9\n    a-minion:\n",
                        "dns64:\n": "dns64:\n    server: unbound\n"})
    with egress(tmp_path, config, [MASTER, GATEWAY, MINION], uplink=GATEWAY, dns=REMOTE_DNS,
                records=DOCUMENTATION) as (cluster, *_):
        before = cluster.snapshots()
        out = cluster.ok(GATEWAY, "prepare")
        assert "NAT64 server (tayga)" in out and "DNS64 server" not in out, out
        out = cluster.ok(MASTER, "prepare")
        assert "DNS64 server (unbound)" in out and "NAT64 server" not in out, out
        cluster.ok(MINION, "prepare")
        assert sorted(server_pids(cluster.nodes[GATEWAY].root)) == ["tayga"]
        assert sorted(server_pids(cluster.nodes[MASTER].root)) == ["unbound"]

        master, gateway, minion = (cluster.nodes[n] for n in (MASTER, GATEWAY, MINION))
        # Every node routes the prefix via the NAT64 node; the minion reaches the resolver via the DNS64 node;
        # the NAT64 node reaches the resolver (inside its own support network) via the DNS64 node.
        for node in (master, minion):
            assert "via fd00:20::9 dev eth1" in node.exec("ip", "-6", "route", "show", str(NSP)).stdout
        assert "via fd00:20::2 dev eth1" in minion.exec("ip", "-6", "route", "show", "fd00:10::/64").stdout
        assert "via fd00:20::2 dev eth1" in gateway.exec("ip", "-6", "route", "show", str(DNS64_SERVER)).stdout
        assert json.loads(master.exec("ip", "-j", "-6", "route", "show", str(NSP)).stdout)
        page = (tmp_path / "internet/www/index.html").read_text()
        for node in (minion, master):
            assert nameserver(node) == DNS64_SERVER
            reaches(node, DOCUMENTATION, NSP, page)
        clean_all(cluster, [MINION, MASTER, GATEWAY], before)
