"""A node's state as lazyjack may change it (kernel state of its namespace, files of its sandbox), and differences.

`lab up` takes one before prepare; `lab down` takes another after clean and compares: every
difference is something prepare/up left behind or clean broke.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lazyjack.host.netns import NETNS_DIR, netns_exists, support_netns
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError, Report, read_json
from lazyjack.lab.state import LabState, NodeState
from lazyjack.lab.topology import nsenter

TIMEOUT = 30.0
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")

Snapshot = dict[str, Any]


def _run(proc: RunnerAPI, netns: str, *argv: str) -> str:
    return proc.run([*nsenter(netns), *argv], timeout=TIMEOUT).stdout


def _firewall(text: str) -> list[str]:
    """Rules and non-default chains of an iptables-save dump, without counters and comments.

    Built-in chains with policy ACCEPT show up as soon as a table is loaded, even once empty
    again; they carry no state.
    """
    kept, table = [], ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            kept.append(f"{table} {line}")
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if policy != "ACCEPT":
                kept.append(f"{table} chain {name} {policy}")
    return sorted(kept)


def take(proc: RunnerAPI, *, netns: str, interface: str, root: Path, extra_netns: list[str]) -> Snapshot:
    """The node's interface, links, routes, forwarding sysctls, firewall, namespaces and sandbox files."""
    link = json.loads(proc.run(["ip", "-n", netns, "-j", "addr", "show", "dev", interface], timeout=TIMEOUT).stdout)[0]
    routes = {
        family: sorted(
            json.dumps(r, sort_keys=True)
            for r in json.loads(proc.run(["ip", "-n", netns, "-j", family, "route", "show", "table", "main"],
                                         timeout=TIMEOUT).stdout)
        )
        for family in ("-4", "-6")
    }
    files: dict[str, list[object]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = "link:" + str(path.readlink())
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = "dir"
        files[str(path.relative_to(root))] = [oct(st.st_mode), what]
    links = json.loads(proc.run(["ip", "-n", netns, "-j", "link", "show"], timeout=TIMEOUT).stdout)
    return {
        "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a.get("scope") == "global"),
        "mtu": link["mtu"],
        "up": "UP" in link["flags"],
        "links": sorted(entry["ifname"] for entry in links),
        "routes": routes,
        "sysctls": {s: _run(proc, netns, "cat", f"/proc/sys/{s}").strip() for s in SYSCTLS},
        "iptables": _firewall(_run(proc, netns, "iptables-save")),
        "ip6tables": _firewall(_run(proc, netns, "ip6tables-save")),
        "namespaces": sorted(n for n in extra_netns if (NETNS_DIR / n).exists()),
        "files": files,
    }


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What is not as it was, one line each ("routes -6: left behind ...")."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                lines += _compare(f"{key} {sub}", old.get(sub), new.get(sub))
        else:
            lines += _compare(key, old, new)
    return lines


def _compare(label: str, old: object, new: object) -> list[str]:
    if old == new:
        return []
    if old is None:
        return [f"{label}: left behind"]
    if new is None:
        return [f"{label}: missing"]
    if isinstance(old, list) and isinstance(new, list) and all(isinstance(v, str) for v in old + new):
        out = [f"{label}: left behind {item}" for item in new if item not in old]
        out += [f"{label}: missing {item}" for item in old if item not in new]
        return out or [f"{label}: order changed"]
    return [f"{label}: was {old!r}, now {new!r}"]


def take_node(proc: RunnerAPI, node: NodeState) -> Snapshot:
    """A snapshot of a lab node, its support namespace (on the DNS64/NAT64 node) included."""
    extra = [support_netns(node.root.resolve())] if node.is_nat64 or node.is_dns64 else []
    return take(proc, netns=node.netns, interface=node.interface, root=node.root, extra_netns=extra)


def keep(proc: RunnerAPI, node: NodeState) -> None:
    """Take a node's snapshot before prepare and keep it in the node's directory for lab down."""
    node.snapshot.write_text(json.dumps(take_node(proc, node), indent=1, sort_keys=True))


def back_as_before(proc: RunnerAPI, state: LabState, report: Report) -> bool:
    """Compare every node that has a kept snapshot with its state now; report each; True if all are back."""
    ok = True
    for node in state.nodes.values():
        if not node.snapshot.exists() or not netns_exists(node.netns):
            continue
        try:
            kept = read_json(node.snapshot, missing=f"{node.snapshot} is gone", what="the snapshot")
            if not isinstance(kept, dict):
                raise LabError(f"the snapshot {node.snapshot} is damaged: it is not a mapping")
        except LabError as exc:
            # Nothing to compare with: say so, and let lab down go on removing the lab.
            ok = False
            report(f" ✗ {node.name}: {exc}")
            continue
        diff = differences(kept, take_node(proc, node))
        if diff:
            ok = False
            report(f" ✗ {node.name} is not back to its state before prepare:")
            for line in diff:
                report(f"     {line}")
        else:
            report(f" ✓ {node.name} is back to its state before prepare")
    return ok
