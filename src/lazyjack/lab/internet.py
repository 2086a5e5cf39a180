"""The simulated IPv4 internet of an IPv6 lab: an authoritative DNS server at dns64.remote_server and a web server.

It is a namespace of its own, linked to the DNS64/NAT64 node by a veth (the node's uplink, with
its default IPv4 route), so that NAT64 traffic has somewhere real to go. It uses only
198.51.100.0/24 (the link) and 203.0.113.0/24 (the servers).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from lazyjack.config.model import Config
from lazyjack.host.daemon import DaemonsAPI
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError
from lazyjack.lab.topology import ip, link_pair, nsenter

ZONE = "lab.example"
WWW = f"www.{ZONE}"
LINK_NET = IPv4Network("198.51.100.0/24")
LINK_INSIDE = IPv4Interface("198.51.100.1/24")
LINK_NODE = IPv4Interface("198.51.100.2/24")
SERVERS_NET = IPv4Network("203.0.113.0/24")
WWW_CHOICES = (IPv4Address("203.0.113.80"), IPv4Address("203.0.113.81"))
WAN = "wan0"
PAGE = "lazyjack lab: hello from the IPv4-only internet\n"
START_TIMEOUT = 10.0
POLL = 0.05


@dataclass(frozen=True)
class InternetPlan:
    """Who is where in the simulated internet."""

    netns: str
    dns: IPv4Address
    www: IPv4Address
    node: str  # the DNS64/NAT64 node it is linked to
    node_netns: str
    uplink: str  # the node's end of the link

    def to_state(self) -> dict[str, str]:
        return {"netns": self.netns, "dns": str(self.dns), "www": str(self.www), "node": self.node,
                "node_netns": self.node_netns, "uplink": self.uplink}

    @classmethod
    def from_state(cls, data: dict[str, str]) -> InternetPlan:
        return cls(netns=data["netns"], dns=IPv4Address(data["dns"]), www=IPv4Address(data["www"]),
                   node=data["node"], node_netns=data["node_netns"], uplink=data["uplink"])


def plan_internet(config: Config, *, netns: str, node: str, node_netns: str, uplink: str) -> InternetPlan:
    """The internet for `config`'s remote_server; refuses an address outside the lab's internet range."""
    assert config.egress is not None
    dns = config.egress.dns64.remote_server
    if dns not in SERVERS_NET:
        raise LabError(
            f"dns64.remote_server is {dns}; the lab's simulated internet serves DNS only inside {SERVERS_NET} "
            f"(the packaged examples use 203.0.113.53): set remote_server to an address there for the lab"
        )
    for name, networks in (("mgmt_net", config.mgmt), ("pod_net", config.pod), ("service_net", config.service)):
        for net in networks:
            for used in (LINK_NET, SERVERS_NET):
                if net.version == 4 and net.overlaps(used):
                    raise LabError(f"{name} {net} overlaps {used}, which the lab's simulated internet uses")
    www = next(a for a in WWW_CHOICES if a != dns)
    return InternetPlan(netns=netns, dns=dns, www=www, node=node, node_netns=node_netns, uplink=uplink)


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
        "",
    ])


def build_links(proc: RunnerAPI, plan: InternetPlan) -> None:
    """Server addresses on lo, the link to the node, and the node's default IPv4 route through it."""
    ip(proc, plan.netns, "addr", "add", f"{plan.dns}/32", "dev", "lo")
    ip(proc, plan.netns, "addr", "add", f"{plan.www}/32", "dev", "lo")
    link_pair(proc, a=(plan.netns, WAN), b=(plan.node_netns, plan.uplink))
    ip(proc, plan.netns, "addr", "add", str(LINK_INSIDE), "dev", WAN)
    ip(proc, plan.node_netns, "addr", "add", str(LINK_NODE), "dev", plan.uplink)
    ip(proc, plan.node_netns, "-4", "route", "add", "default", "via", str(LINK_INSIDE.ip), "dev", plan.uplink)


def start_dns(daemons: DaemonsAPI, plan: InternetPlan, directory: Path) -> Path:
    """named with the zone; returns its pid file once it listens on port 53."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{ZONE}.zone").write_text(zone_text(plan))
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
