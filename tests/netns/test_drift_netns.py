"""status and restore against the real kernel: each kind of drift is named, mended, and clean still restores.

An IPv6 cluster of two namespaces (my-master runs DNS64/NAT64 natively) is prepared and brought
up; then, one at a time, something lazyjack applied is changed behind its back (an address, the
MTU, a route, a sysctl, a hosts entry, the resolv.conf nameserver, the DNS64 server, a firewall
rule). Each time `status` names it and exits 1, `restore` mends it, `status` exits 0. At the end
down and clean put both nodes back exactly as before prepare.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster import EXAMPLES, Cluster, Node, make_cluster

MASTER, MINION = "my-master", "a-minion"


def _server_runtime(path: str) -> bool:
    parts = path.split("/")
    return ("dns64" in parts or "nat64" in parts) and (path.endswith(".log") or "data" in parts)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    text = (EXAMPLES / "ipv6.yaml").read_text()
    assert "dns64-nat64-runtime: native" in text
    made = make_cluster(tmp_path, text.replace("mtu: 1500", "mtu: 1400"), [MASTER, MINION])
    try:
        yield made
    finally:
        for name in (MINION, MASTER):
            made.run(name, "clean")  # stops the servers, removes the support namespace
        made.destroy()


def _status(cluster: Cluster, name: str) -> tuple[int, dict[str, object]]:
    result = cluster.run(name, "status", "--output", "json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _not_in_place(report: dict[str, object]) -> list[str]:
    steps = report["steps"]
    assert isinstance(steps, list)
    return [f"{s['step']}: {'; '.join(s['details'])}" for s in steps if s["state"] != "in place"]


def _kill_named(node: Node) -> None:
    pid = int((node.root / "tmp/lazyjack/dns64/named.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


@dataclass(frozen=True)
class Drift:
    what: str
    node: str
    make: Callable[[Cluster], None]
    named: str  # text status must show for it


def _hosts_line_edited(text: str) -> str:
    # Someone changes the address in lazyjack's entry for the master (a human's own line would be kept
    # by restore and clean alike; lazyjack's marked line is lazyjack's to mend).
    return "\n".join("fd00:20::99 my-master  #[+]" if line.endswith(" my-master  #[+]") else line
                     for line in text.splitlines()) + "\n"


DRIFTS = [
    Drift("address", MINION, lambda c: c.nodes[MINION].exec("ip", "addr", "del", "fd00:20::3/64", "dev", "eth1"),
          "fd00:20::3/64 is not on eth1"),
    Drift("MTU", MINION, lambda c: c.nodes[MINION].exec("ip", "link", "set", "eth1", "mtu", "1500"),
          "MTU of eth1 is 1500 instead of 1400"),
    Drift("route", MINION, lambda c: c.nodes[MINION].exec("ip", "-6", "route", "del", "fd00:10:64:ff9b::/96"),
          "route fd00:10:64:ff9b::/96 via fd00:20::2 is gone"),
    Drift("sysctl", MINION,
          lambda c: c.nodes[MINION].exec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"),
          "sysctl net.ipv6.conf.all.forwarding is 0 instead of 1"),
    Drift("hosts entry", MINION, lambda c: _edit(c.nodes[MINION].root / "etc/hosts", _hosts_line_edited),
          "'fd00:20::2 my-master  #[+]' missing"),
    # A resolver manager writes its own file at boot: lazyjack's nameserver line is gone.
    Drift("resolv.conf entry", MINION,
          lambda c: (c.nodes[MINION].root / "etc/resolv.conf").write_text(
              "search example.test\nnameserver 198.51.100.53\n"),
          "'nameserver fd00:10::100  #[+]' missing"),
    Drift("DNS64 server stopped", MASTER, lambda c: _kill_named(c.nodes[MASTER]), "named is not running"),
    Drift("firewall rule", MASTER,
          # The one that lets the management network's traffic to the DNS64 prefix through.
          lambda c: c.nodes[MASTER].exec("ip6tables", "-w", "5", "-t", "filter", "-D", "FORWARD", "-s", "fd00:20::/64",
                                         "-d", "fd00:10:64:ff9b::/96", "-m", "comment", "--comment", "lazyjack",
                                         "-j", "ACCEPT"),
          "rule missing: ip6tables -t filter -A FORWARD -s fd00:20::/64 -d fd00:10:64:ff9b::/96"),
]


def test_each_drift_is_named_and_mended_and_clean_still_restores(cluster: Cluster) -> None:
    before = cluster.snapshots()
    for name in (MASTER, MINION):
        code, report = _status(cluster, name)
        assert (code, report["applied"], report["steps"]) == (0, "nothing", [])
    for name in (MASTER, MINION):
        cluster.ok(name, "prepare")
    for name in (MASTER, MINION):
        cluster.ok(name, "up")
    for name in (MASTER, MINION):
        code, report = _status(cluster, name)
        assert code == 0 and report["applied"] == "up" and report["in_place"], _not_in_place(report)
        out = cluster.ok(name, "restore")
        assert "nothing to change" in out, out

    for drift in DRIFTS:
        drift.make(cluster)
        code, report = _status(cluster, drift.node)
        found = _not_in_place(report)
        assert code == 1 and any(drift.named in line for line in found), (drift.what, found)
        table = cluster.run(drift.node, "status")
        assert table.returncode == 1 and drift.named in table.stdout, (drift.what, table.stdout)
        restored = cluster.ok(drift.node, "restore")
        assert "re-applied" in restored, (drift.what, restored)
        code, report = _status(cluster, drift.node)
        assert code == 0, (drift.what, _not_in_place(report))
        again = cluster.ok(drift.node, "restore")
        assert "nothing to change" in again, (drift.what, again)

    for name in (MINION, MASTER):
        cluster.ok(name, "down")
    for name in (MINION, MASTER):
        cluster.ok(name, "clean")
    after = cluster.snapshots()
    for name in cluster.nodes:
        for snap in (before[name], after[name]):
            snap["files"] = {k: v for k, v in snap["files"].items() if not _server_runtime(k)}
        assert after[name] == before[name], name
