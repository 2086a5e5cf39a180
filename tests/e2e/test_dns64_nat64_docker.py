"""DNS64/NAT64 with the docker and podman runtimes, end to end: an IPv6-only node reaches an IPv4-only site by name.

my-master (master, dns64, nat64) runs a container engine of its own (dockerd, or podman's API
service) inside its namespace; lazyjack creates support_net and the bind9 and tayga containers
there from an image made by debootstrap. Its uplink leads to a simulated IPv4 internet
(tests/e2e/internet.py). a-minion, IPv6 only, resolves, fetches and pings through it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest
from docker_engines import IMAGE, RunningEngine, dockerd, import_image, podman_service, rootfs_tarball, sh
from internet import UPLINK, Internet, internet

from lazyjack.steps.containers import DNS64_NAMES, HASH_LABEL, NAT64_NAME, NETWORK
from lazyjack.steps.support import RULE_COMMENT
from netns.cluster import EXAMPLES, Cluster, Node, assert_nothing_changed, make_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("e2e_programs")]

MASTER, MINION = "my-master", "a-minion"
REMOTE_DNS = IPv4Address("203.0.113.53")
DNS64_SERVER = IPv6Address("fd00:10::100")
NAT64_SERVER = IPv6Address("fd00:10::200")
WWW_SYNTHESISED = IPv6Address("fd00:10:64:ff9b::cb00:7150")  # 203.0.113.80 in the DNS64 prefix
DUAL_SYNTHESISED = IPv6Address("fd00:10:64:ff9b::cb00:7151")  # 203.0.113.81
WORK = "tmp/lazyjack"  # the example's work area, under each node's --root


@dataclass
class Lab:
    cluster: Cluster
    net: Internet
    engine: RunningEngine
    program: str  # the DNS64 server: named or unbound

    @property
    def dns64_name(self) -> str:
        return DNS64_NAMES[self.program]

    @property
    def master(self) -> Node:
        return self.cluster.nodes[MASTER]

    @property
    def minion(self) -> Node:
        return self.cluster.nodes[MINION]

    def lazyjack(self, name: str, *args: str) -> str:
        return self.cluster.ok(name, *args, env=self.engine.env, timeout=300)

    def inspect(self, name: str) -> dict[str, Any] | None:
        return self.engine.api.container(name)


def config_text(runtime: str, server: str = "bind9") -> str:
    text = (EXAMPLES / "ipv6.yaml").read_text()
    for needle in ("dns64-nat64-runtime: native", f"remote_server: {REMOTE_DNS}", f"ip: {DNS64_SERVER}",
                   f"ip: {NAT64_SERVER}", "allow_aaaa_use: false"):
        assert needle in text, f"the example config changed: {needle!r} is gone"
    text = text.replace("dns64-nat64-runtime: native", f"dns64-nat64-runtime: {runtime}")
    for address in (DNS64_SERVER, NAT64_SERVER):
        text = text.replace(f"    ip: {address}\n", f"    ip: {address}\n    image: {IMAGE}\n")
    return text if server == "bind9" else text.replace("dns64:\n", f"dns64:\n    server: {server}\n")


@pytest.fixture(scope="session")
def tarball() -> Path:
    if not any(Path(d, "debootstrap").exists() for d in ("/usr/sbin", "/sbin", "/usr/bin")):
        pytest.fail("debootstrap is not installed (apt-get install debootstrap); it makes the test image",
                    pytrace=False)
    return rootfs_tarball()


@pytest.fixture(params=[("docker", "bind9"), ("podman", "bind9"), ("docker", "unbound"), ("podman", "unbound")],
                ids=["docker-bind9", "podman-bind9", "docker-unbound", "podman-unbound"])
def lab(request: pytest.FixtureRequest, tmp_path: Path, tarball: Path) -> Iterator[Lab]:
    runtime, server = request.param
    cluster = make_cluster(tmp_path, config_text(runtime, server), [MASTER, MINION])
    tag = cluster.namespaces[0].rsplit("-", 1)[0]
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(cluster.destroy)
        net = cleanup.enter_context(
            internet(tmp_path / "internet", netns=f"{tag}-inet", node_netns=cluster.nodes[MASTER].netns,
                     dns=REMOTE_DNS)
        )
        start = dockerd if runtime == "docker" else podman_service
        engine = cleanup.enter_context(start(netns=cluster.nodes[MASTER].netns))
        import_image(engine, tarball)
        yield Lab(cluster, net, engine, "named" if server == "bind9" else "unbound")


def _dig_aaaa(node: Node, name: str) -> list[IPv6Address]:
    out = node.exec("dig", "+short", "+time=2", "+tries=2", "AAAA", name, f"@{DNS64_SERVER}").stdout
    return [IPv6Address(line) for line in out.split()]


def _container_addresses(lab: Lab, name: str, family: str) -> list[str]:
    out = sh(*lab.engine.cli, "exec", name, "ip", "-j", family, "addr", "show", "scope", "global").stdout
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link.get("addr_info", []) if "local" in a)


def _iptables_rules(node: Node) -> str:
    tables = [(program, table) for program in ("iptables", "ip6tables") for table in ("filter", "nat")]
    return "\n".join(node.exec(program, "-w", "5", "-t", table, "-S").stdout for program, table in tables)


def _resolves_within(lab: Lab, seconds: float) -> float:
    """Poll until the minion gets the synthesised AAAA of www; how long that took."""
    start = time.monotonic()
    while True:
        argv = ["dig", "+short", "+time=1", "+tries=1", "AAAA", "www.lab.example", f"@{DNS64_SERVER}"]
        answer = lab.minion.exec(*argv, check=False).stdout.split()
        if answer == [str(WWW_SYNTHESISED)]:
            return time.monotonic() - start
        assert time.monotonic() - start < seconds, f"no answer within {seconds}s (last: {answer})"


def _reaches_ipv4_site(lab: Lab) -> None:
    minion = lab.minion
    assert _dig_aaaa(minion, "www.lab.example") == [WWW_SYNTHESISED]
    page = minion.exec("curl", "-6", "-s", "-g", "--max-time", "5", f"http://[{WWW_SYNTHESISED}]/").stdout
    assert page == lab.net.page
    minion.exec("ping", "-6", "-c", "1", "-W", "2", str(WWW_SYNTHESISED))
    # allow_aaaa_use is false: a name with a real AAAA is synthesised too.
    assert _dig_aaaa(minion, "dual.lab.example") == [DUAL_SYNTHESISED]


def test_ipv6_only_node_reaches_ipv4_site_through_containers(lab: Lab) -> None:
    cluster, master = lab.cluster, lab.master
    before = cluster.snapshots()
    assert UPLINK in before[MASTER]["links"]

    out = lab.lazyjack(MASTER, "prepare")
    assert f"network {NETWORK}" in out and f"container {NAT64_NAME}" in out and f"container {lab.dns64_name}" in out, out
    lab.lazyjack(MINION, "prepare")

    containers = {name: lab.inspect(name) for name in (lab.dns64_name, NAT64_NAME)}
    for name, info in containers.items():
        assert info is not None and info["State"]["Running"], name
        assert info["Config"]["Labels"]["lazyjack"] in ("dns64", "nat64")
        assert not info["HostConfig"].get("Privileged")
        assert "NET_ADMIN" in [c.removeprefix("CAP_") for c in info["HostConfig"]["CapAdd"]]
    # The DNS64 server keeps only its IPv6 address; the NAT64 server has both of its own.
    assert _container_addresses(lab, lab.dns64_name, "-4") == []
    assert _container_addresses(lab, lab.dns64_name, "-6") == [f"{DNS64_SERVER}/64"]
    assert _container_addresses(lab, NAT64_NAME, "-4") == ["172.18.0.200/16"]
    routes = master.exec("ip", "-6", "route", "show", "fd00:10:64:ff9b::/96").stdout
    assert f"via {NAT64_SERVER}" in routes, routes
    assert "via 172.18.0.200" in master.exec("ip", "-4", "route", "show", "172.18.0.128/25").stdout
    conf = (master.root / WORK / f"dns64/{lab.program}.conf").read_text()
    assert ("dns64 fd00:10:64:ff9b::/96" if lab.program == "named" else "dns64-prefix: fd00:10:64:ff9b::/96") in conf

    _reaches_ipv4_site(lab)

    # prepare again: both containers are kept as they are.
    assert_nothing_changed(lab.lazyjack(MASTER, "prepare"), MASTER, "prepared")
    assert {name: lab.inspect(name)["Id"] for name in containers} == {n: i["Id"] for n, i in containers.items()}  # type: ignore[index]

    # A stopped container is replaced, and the path works again.
    sh(*lab.engine.cli, "stop", "-t", "1", NAT64_NAME)
    out = lab.lazyjack(MASTER, "prepare")
    assert f"replace {NAT64_NAME}: it is exited" in out, out
    replaced = lab.inspect(NAT64_NAME)
    assert replaced is not None and replaced["Id"] != containers[NAT64_NAME]["Id"]  # type: ignore[index]
    assert replaced["Config"]["Labels"][HASH_LABEL] == containers[NAT64_NAME]["Config"]["Labels"][HASH_LABEL]  # type: ignore[index]
    if lab.engine.runtime == "podman":
        # KNOWN ISSUE (not fixed in lazyjack yet): netavark's bridge has no MAC of its own and takes its
        # lowest port's, so replacing a container can change the gateway's MAC; bind9 then answers the
        # cluster through a stale neighbour entry until NUD notices (30 s or more). Docker pins its
        # bridge's MAC. Until lazyjack pins podman's bridge MAC too, the test refreshes the entry.
        sh(*lab.engine.cli, "exec", lab.dns64_name, "ip", "-6", "neigh", "flush", "dev", "eth0")
    took = _resolves_within(lab, 10.0)
    print(f"{lab.engine.runtime}: DNS64 through the replaced NAT64 container answered after {took:.1f}s")
    _reaches_ipv4_site(lab)

    # clean, twice, on both: no container, no network, no rule, no generated file; all as before.
    for name in (MINION, MASTER):
        lab.lazyjack(name, "clean")
        assert_nothing_changed(lab.lazyjack(name, "clean"), name, "clean")
    assert lab.inspect(lab.dns64_name) is None and lab.inspect(NAT64_NAME) is None
    assert lab.engine.api.network(NETWORK) is None
    assert RULE_COMMENT not in _iptables_rules(master)
    assert not (master.root / WORK / "dns64").exists() and not (master.root / WORK / "nat64").exists()
    assert cluster.snapshots() == before
