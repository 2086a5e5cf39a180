"""A simulated IPv4 internet in a network namespace: an authoritative DNS server (named) and a web server.

The DNS server holds the test zone and `ipv4only.arpa` (RFC 7050), which DNS64 servers
synthesise from, as the real one.

It is linked to one node's namespace by a veth pair (the node's `uplink`, default IPv4 route
towards it), so that the node's NAT64 traffic has somewhere real to go. Only documentation
ranges are used: 198.51.100.0/24 for the link, 203.0.113.0/24 for the servers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from pathlib import Path

ZONE = "lab.example"
UPLINK = "uplink"
LINK_NET_INSIDE = IPv4Interface("198.51.100.1/24")
LINK_NET_NODE = IPv4Interface("198.51.100.2/24")
WEB_PAGE = "<html><body>hello from the IPv4-only internet</body></html>\n"
START_TIMEOUT = 10.0
POLL = 0.05


@dataclass(frozen=True)
class Records:
    """What the zone holds: `www` has only an A record, `dual` has an A and a real AAAA."""

    www_a: IPv4Address
    dual_a: IPv4Address
    dual_aaaa: IPv6Address


LAB_RECORDS = Records(
    www_a=IPv4Address("203.0.113.80"),
    dual_a=IPv4Address("203.0.113.81"),
    dual_aaaa=IPv6Address("2001:db8:80::80"),  # never contacted: only its presence in answers matters
)


@dataclass
class Internet:
    netns: str
    dns: IPv4Address
    records: Records
    page: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)


def zone_text(records: Records, dns: IPv4Address) -> str:
    return "\n".join(
        [
            "$TTL 60",
            f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
            f"@ IN NS ns.{ZONE}.",
            f"ns IN A {dns}",
            f"www IN A {records.www_a}",
            f"dual IN A {records.dual_a}",
            f"dual IN AAAA {records.dual_aaaa}",
            "",
        ]
    )


#: RFC 7050: ipv4only.arpa has only these A records; a DNS64 server synthesises its AAAA from them.
IPV4ONLY_ZONE = "\n".join([
    "$TTL 60",
    "@ IN SOA ns.lab.example. hostmaster.lab.example. 1 3600 600 86400 60",
    "@ IN NS ns.lab.example.",
    "@ IN A 192.0.0.170",
    "@ IN A 192.0.0.171",
    "",
])


def named_conf_text(directory: Path, dns: IPv4Address) -> str:
    """Authoritative only; every runtime file inside `directory`, so it never meets another named."""
    return "\n".join(
        [
            "options {",
            f'    directory "{directory}";',
            f'    pid-file "{directory}/named.pid";',
            f'    lock-file "{directory}/named.lock";',
            f'    session-keyfile "{directory}/session.key";',
            f"    listen-on {{ {dns}; }};",
            "    listen-on-v6 { none; };",
            "    recursion no;",
            "    dnssec-validation no;",
            "};",
            "controls { };",
            f'zone "{ZONE}" {{ type primary; file "{directory}/{ZONE}.zone"; }};',
            f'zone "ipv4only.arpa" {{ type primary; file "{directory}/ipv4only.arpa.zone"; }};',
            "",
        ]
    )


def wait_for(what: str, probe: list[str], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if subprocess.run(probe, capture_output=True, timeout=10).returncode == 0:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready within {START_TIMEOUT}s:\n{log.read_text(errors='replace')}")
        time.sleep(POLL)


def start_process(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        _stop(process)


@contextmanager
def internet(directory: Path, *, netns: str, node_netns: str, dns: IPv4Address,
             records: Records = LAB_RECORDS) -> Iterator[Internet]:
    """The internet namespace with its servers running, linked to `node_netns`; all of it gone afterwards.

    The node gets `uplink` (198.51.100.2/24) and a default IPv4 route via 198.51.100.1.
    """
    directory.mkdir(parents=True, exist_ok=True)
    net = Internet(netns=netns, dns=dns, records=records, page=WEB_PAGE)
    inside = ["ip", "netns", "exec", netns]
    with ExitStack() as cleanup:
        sh("ip", "netns", "add", netns)
        cleanup.callback(sh, "ip", "netns", "del", netns, check=False)
        cleanup.callback(stop_all, net.processes)
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        for server in sorted({dns, records.www_a, records.dual_a}):
            sh("ip", "-n", netns, "addr", "add", f"{server}/32", "dev", "lo")
        sh("ip", "-n", netns, "link", "add", "wan0", "type", "veth", "peer", "name", UPLINK, "netns", node_netns)
        sh("ip", "-n", netns, "addr", "add", str(LINK_NET_INSIDE), "dev", "wan0")
        sh("ip", "-n", netns, "link", "set", "wan0", "up")
        sh("ip", "-n", node_netns, "addr", "add", str(LINK_NET_NODE), "dev", UPLINK)
        sh("ip", "-n", node_netns, "link", "set", UPLINK, "up")
        sh("ip", "-n", node_netns, "-4", "route", "add", "default", "via", str(LINK_NET_INSIDE.ip), "dev", UPLINK)

        dns_dir = directory / "dns"
        dns_dir.mkdir(exist_ok=True)
        (dns_dir / f"{ZONE}.zone").write_text(zone_text(records, dns))
        (dns_dir / "ipv4only.arpa.zone").write_text(IPV4ONLY_ZONE)
        conf = dns_dir / "named.conf"
        conf.write_text(named_conf_text(dns_dir, dns))
        log = directory / "named.log"
        named = start_process([*inside, "named", "-g", "-c", str(conf)], log)
        net.processes.append(named)
        wait_for("internet named", [*inside, "dig", "+time=1", "+tries=1", f"@{dns}", "SOA", ZONE],
                  named, log)

        web_dir = directory / "www"
        web_dir.mkdir(exist_ok=True)
        (web_dir / "index.html").write_text(WEB_PAGE)
        log = directory / "http.log"
        web = start_process([*inside, sys.executable, "-m", "http.server", "--bind", str(records.www_a),
                      "--directory", str(web_dir), "80"], log)
        net.processes.append(web)
        wait_for("internet web server", [*inside, "curl", "-s", "-o", "/dev/null", "--max-time", "1",
                                          f"http://{records.www_a}/"], web, log)
        yield net
