"""The simulated IPv4 internet of an IPv6 lab: an authoritative DNS server at dns64.remote_server and a web server.

It is a namespace of its own, linked by a veth to each namespace whose NAT64 traffic goes out (the NAT64
node, the lab's site: their uplink, with its default IPv4 route), so that it has somewhere real to go.
It uses only 198.51.100.0/24 (the links) and 203.0.113.0/24 (the servers), or 100.64.113.0/24 for the
servers with the well-known prefix. Its DNS server also holds ipv4only.arpa (RFC 7050).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from lazyjack.addresses import IPV4ONLY_ADDRESSES, IPV4ONLY_NAME, WELL_KNOWN_PREFIX
from lazyjack.config.model import Config
from lazyjack.host.daemon import DaemonsAPI
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError
from lazyjack.lab.topology import ip, link_pair, nsenter

ZONE = "lab.example"
WWW = f"www.{ZONE}"
LINK_NET = IPv4Network("198.51.100.0/24")
#: The servers' network: the documentation range, or with the well-known prefix the shared address space,
#: because tayga translates only what it deems global there (RFC 6052 section 3.1) and drops documentation
#: ranges; Debian 12's tayga 0.9.2 translates 100.64.0.0/10 (docs/IPV6-EGRESS.md).
SERVERS_NET = IPv4Network("203.0.113.0/24")
SHARED_SERVERS_NET = IPv4Network("100.64.113.0/24")
DNS_HOST, WWW_HOSTS = 53, (80, 81)
WAN = "wan"
PAGE = "lazyjack lab: hello from the IPv4-only internet\n"
START_TIMEOUT = 10.0
POLL = 0.05


@dataclass(frozen=True)
class Uplink:
    """A link from the internet to a namespace that sends NAT64 traffic out (a NAT64 node, the lab's site).

    Link `index` takes the index-th /30 of LINK_NET: the internet's end its first address, the other end
    the second, with a default IPv4 route via the first.
    """

    node: str
    netns: str
    interface: str
    index: int

    @property
    def inside(self) -> IPv4Interface:
        return IPv4Interface((LINK_NET.network_address + 4 * self.index + 1, 30))

    @property
    def outside(self) -> IPv4Interface:
        return IPv4Interface((LINK_NET.network_address + 4 * self.index + 2, 30))

    @property
    def wan(self) -> str:
        return f"{WAN}{self.index}"


@dataclass(frozen=True)
class InternetPlan:
    """Who is where in the simulated internet."""

    netns: str
    dns: IPv4Address
    www: IPv4Address
    uplinks: tuple[Uplink, ...]

    def to_state(self) -> dict[str, object]:
        return {"netns": self.netns, "dns": str(self.dns), "www": str(self.www),
                "uplinks": [[u.node, u.netns, u.interface] for u in self.uplinks]}

    @classmethod
    def from_state(cls, data: dict[str, object]) -> InternetPlan:
        links = data.get("uplinks")
        if links is None:  # a lab made before there could be several
            links = [[data["node"], data["node_netns"], data["uplink"]]]
        assert isinstance(links, list)
        uplinks = tuple(Uplink(str(n), str(ns), str(i), index) for index, (n, ns, i) in enumerate(links))
        return cls(netns=str(data["netns"]), dns=IPv4Address(str(data["dns"])), www=IPv4Address(str(data["www"])),
                   uplinks=uplinks)

    @property
    def where(self) -> str:
        return ", ".join(f"{u.node} ({u.interface} {u.outside})" for u in self.uplinks)


def servers_net(config: Config) -> IPv4Network:
    """Where the lab's internet puts its servers for `config`'s DNS64 prefix."""
    return SHARED_SERVERS_NET if config.egress is not None and config.egress.well_known else SERVERS_NET


def plan_internet(config: Config, *, netns: str, uplinks: list[tuple[str, str, str]]) -> InternetPlan:
    """The internet for `config`: its DNS server at remote_server where the cluster runs its own DNS64 server
    (refused outside the lab's range), else at the range's .53; `uplinks` are (node, netns, interface)."""
    egress = config.egress
    assert egress is not None
    net = servers_net(config)
    dns = egress.dns64.remote_server if egress.dns64 is not None else net.network_address + DNS_HOST
    if dns not in net:
        why = (f"with the well-known prefix {WELL_KNOWN_PREFIX} tayga translates only IPv4 addresses it deems "
               f"global, not the documentation ranges, so the lab's internet uses {net} instead"
               if net == SHARED_SERVERS_NET else f"the lab's simulated internet serves DNS only inside {net}")
        raise LabError(f"dns64.remote_server is {dns}; {why}: set remote_server to an address there for the lab "
                       f"(such as {net.network_address + DNS_HOST})")
    for name, networks in (("mgmt_net", config.mgmt), ("pod_net", config.pod), ("service_net", config.service)):
        for cidr in networks:
            for used in (LINK_NET, net):
                if cidr.version == 4 and cidr.overlaps(used):
                    raise LabError(f"{name} {cidr} overlaps {used}, which the lab's simulated internet uses")
    www = next(net.network_address + h for h in WWW_HOSTS if net.network_address + h != dns)
    links = tuple(Uplink(node, ns, interface, index) for index, (node, ns, interface) in enumerate(uplinks))
    return InternetPlan(netns=netns, dns=dns, www=www, uplinks=links)


#: RFC 7050: ipv4only.arpa has only these A records; DNS64 servers synthesise its AAAA from them.
IPV4ONLY_ZONE = "\n".join([
    "$TTL 60",
    f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
    f"@ IN NS ns.{ZONE}.",
    *(f"@ IN A {address}" for address in IPV4ONLY_ADDRESSES),
    "",
])


def zone_text(plan: InternetPlan) -> str:
    """The zone: `www` has an A record only, so an IPv6-only client needs DNS64 to reach it."""
    return "\n".join([
        "$TTL 60",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
        f"@ IN NS ns.{ZONE}.",
        f"ns IN A {plan.dns}",
        f"www IN A {plan.www}",
        "",
    ])


def named_conf(plan: InternetPlan, directory: Path) -> str:
    """Authoritative only; every file it writes inside `directory`, so it never meets another named."""
    return "\n".join([
        "// Written by lazyjack lab: the simulated internet's authoritative server.",
        "options {",
        f'    directory "{directory}";',
        f'    pid-file "{directory}/named.pid";',
        f'    lock-file "{directory}/named.lock";',
        f'    session-keyfile "{directory}/session.key";',
        f"    listen-on {{ {plan.dns}; }};",
        "    listen-on-v6 { none; };",
        "    recursion no;",
        "    dnssec-validation no;",
        "};",
        "controls { };",
        f'zone "{ZONE}" {{ type primary; file "{directory}/{ZONE}.zone"; }};',
        f'zone "{IPV4ONLY_NAME}" {{ type primary; file "{directory}/{IPV4ONLY_NAME}.zone"; }};',
        "",
    ])


def build_links(proc: RunnerAPI, plan: InternetPlan) -> None:
    """Server addresses on lo, a link to each uplinked namespace, and its default IPv4 route through it."""
    ip(proc, plan.netns, "addr", "add", f"{plan.dns}/32", "dev", "lo")
    ip(proc, plan.netns, "addr", "add", f"{plan.www}/32", "dev", "lo")
    for link in plan.uplinks:
        link_pair(proc, a=(plan.netns, link.wan), b=(link.netns, link.interface))
        ip(proc, plan.netns, "addr", "add", str(link.inside), "dev", link.wan)
        node_uplink(proc, link)


def node_uplink(proc: RunnerAPI, link: Uplink) -> None:
    """The uplinked namespace's side, as its own network configuration sets it at every boot: up, its address,
    the default IPv4 route."""
    ip(proc, link.netns, "link", "set", link.interface, "up")
    ip(proc, link.netns, "addr", "replace", str(link.outside), "dev", link.interface)
    ip(proc, link.netns, "-4", "route", "replace", "default", "via", str(link.inside.ip), "dev", link.interface)


def start_dns(daemons: DaemonsAPI, plan: InternetPlan, directory: Path) -> Path:
    """named with the zone; returns its pid file once it listens on port 53."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{ZONE}.zone").write_text(zone_text(plan))
    (directory / f"{IPV4ONLY_NAME}.zone").write_text(IPV4ONLY_ZONE)
    conf = directory / "named.conf"
    conf.write_text(named_conf(plan, directory))
    # The lab's own pid file: named's, in the same directory, goes when named ends.
    pid_file, log = directory / "lab-named.pid", directory / "named.log"
    pid = daemons.start([*nsenter(plan.netns), "named", "-g", "-c", str(conf)], pid_file=pid_file, log_file=log)
    if not daemons.listening(pid, port=53, timeout=START_TIMEOUT):
        daemons.stop(pid_file, program="named")
        raise LabError(f"the internet's named did not listen on port 53 within {START_TIMEOUT:g}s:\n"
                       + log.read_text(errors="replace")[-2000:])
    return pid_file


def start_web(daemons: DaemonsAPI, plan: InternetPlan, directory: Path) -> Path:
    """A web server at www's address serving PAGE; returns its pid file once it listens on port 80."""
    content = directory / "content"
    content.mkdir(parents=True, exist_ok=True)
    (content / "index.html").write_text(PAGE)
    pid_file, log = directory / "http.pid", directory / "http.log"
    argv = [*nsenter(plan.netns), sys.executable, "-m", "http.server", "--bind", str(plan.www),
            "--directory", str(content), "80"]
    pid = daemons.start(argv, pid_file=pid_file, log_file=log)
    if not _tcp_listening(pid, 80, START_TIMEOUT):
        daemons.stop(pid_file, program="http.server")
        raise LabError(f"the internet's web server did not listen on port 80 within {START_TIMEOUT:g}s:\n"
                       + log.read_text(errors="replace")[-2000:])
    return pid_file


def _tcp_listening(pid: int, port: int, timeout: float) -> bool:
    needle = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        # local_address is field 1, state field 3 (0A: LISTEN)
        if any(f[1].endswith(needle) and f[3] == "0A" for f in (line.split() for line in lines) if len(f) > 3):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
