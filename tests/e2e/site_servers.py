"""A site's own DNS64 server and NAT64 gateway, as an IPv6-only site or cloud has them: a namespace on the
management switch of a test cluster, with bind9 (DNS64) and tayga (NAT64) that lazyjack knows nothing of.

Its configuration is written here by hand, not by lazyjack's renderers, so that a test against it
checks lazyjack against an independent server. Its uplink leads to the simulated IPv4 internet
(internet.py), which the caller attaches to `Site.netns`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

from internet import UPLINK, sh, start_process, stop_all, wait_for

from lazyjack.addresses import embed_ipv4

POOL = IPv4Network("172.30.0.0/24")
TAYGA_V4 = IPv4Address("172.30.0.1")


@dataclass
class Site:
    netns: str
    dns64: IPv6Address
    prefix: IPv6Network
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextlib.contextmanager
def site(directory: Path, *, netns: str, switch: str, on_switch: list[IPv6Interface],
         dns64: IPv6Address, prefix: IPv6Network) -> Iterator[Site]:
    """The site namespace plugged into `switch` (bridge `sw`) with `on_switch` on its eth1, the DNS64 server
    at `dns64` (on eth1, or on lo when it is none of those: then the site is the router to it) and tayga
    translating `prefix`. Start the servers with `start` once the internet is attached; all gone afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    result = Site(netns=netns, dns64=dns64, prefix=prefix)
    with contextlib.ExitStack() as cleanup:
        sh("ip", "netns", "add", netns)
        cleanup.callback(sh, "ip", "netns", "del", netns, check=False)
        cleanup.callback(stop_all, result.processes)
        port = f"s{netns[-6:]}"
        sh("ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", netns)
        sh("ip", "-n", switch, "link", "set", port, "master", "sw", "up")
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.eth1.accept_dad=0",
           "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")
        for address in on_switch:
            sh("ip", "-n", netns, "addr", "add", str(address), "dev", "eth1")
        if all(dns64 != a.ip for a in on_switch):
            sh("ip", "-n", netns, "addr", "add", f"{dns64}/128", "dev", "lo")
        sh("ip", "-n", netns, "link", "set", "eth1", "up")
        yield result


def start(site_: Site, directory: Path, *, remote: IPv4Address) -> None:
    """tayga and named (DNS64, forwarding to `remote` through tayga) in the site; needs the internet attached."""
    netns, inside = site_.netns, ["ip", "netns", "exec", site_.netns]
    tayga_conf = directory / "tayga.conf"
    tayga_conf.write_text("\n".join([
        "tun-device nat64",
        f"ipv4-addr {TAYGA_V4}",
        f"prefix {site_.prefix}",
        f"dynamic-pool {POOL}",
        f"data-dir {directory}",
        "",
    ]))
    sh(*inside, "tayga", "--config", str(tayga_conf), "--mktun")
    sh("ip", "-n", netns, "link", "set", "nat64", "up")
    sh("ip", "-n", netns, "route", "add", str(POOL), "dev", "nat64")
    sh("ip", "-n", netns, "route", "add", str(site_.prefix), "dev", "nat64")
    sh(*inside, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", str(POOL), "-o", UPLINK, "-j", "MASQUERADE")
    log = directory / "tayga.log"
    tayga = start_process([*inside, "tayga", "--config", str(tayga_conf), "--nodetach"], log)
    site_.processes.append(tayga)

    named_conf = directory / "named.conf"
    named_conf.write_text("\n".join([
        "options {",
        f'    directory "{directory}";',
        f'    pid-file "{directory}/named.pid";',
        f'    lock-file "{directory}/named.lock";',
        f'    session-keyfile "{directory}/session.key";',
        f"    listen-on-v6 {{ {site_.dns64}; }};",
        "    listen-on { none; };",
        "    recursion yes;",
        "    allow-recursion { any; };",
        f"    forwarders {{ {embed_ipv4(site_.prefix, remote)}; }};",
        "    forward only;",
        "    dnssec-validation no;",
        f"    dns64 {site_.prefix} {{ exclude {{ any; }}; }};",
        "};",
        "controls { };",
        "",
    ]))
    log = directory / "named.log"
    named = start_process([*inside, "named", "-g", "-c", str(named_conf)], log)
    site_.processes.append(named)
    wait_for("the site's named", [*inside, "dig", "+time=1", "+tries=1", f"@{site_.dns64}", "AAAA", "ipv4only.arpa"],
          named, log)
