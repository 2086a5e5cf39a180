"""`--dry-run` changes nothing: every command, on unprepared, prepared and up nodes of a real namespace cluster.

The IPv6 example in secure mode, its master also the DNS64/NAT64 node with the native runtime
(named and tayga in a support namespace). Before and after the dry runs of every command on every
node, the test takes everything lazyjack could change: the whole --root tree (contents, modes,
owners, links), the config file, the namespaces' kernel state (links, addresses, routes of every
table, the IPv4/IPv6 sysctls, iptables and ip6tables rules of every table), the support
namespace's, which namespaces exist and which server processes run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import EXAMPLES, Cluster, Node, kill_servers, make_cluster, server_pids, sh

from lazyjack.host.files import Files
from lazyjack.host.netns import support_netns
from lazyjack.steps.journal import Journal

MASTER, MINION = "my-master", "a-minion"
COMMANDS = ("init", "prepare", "up", "down", "clean")
SYSCTLS = r"^net\.ipv4\.ip_forward$|^net\.ipv(4|6)\.conf\.[^.]+\.(forwarding|disable_ipv6|accept_dad|mtu|rp_filter)$"


def _config_text() -> str:
    text = (EXAMPLES / "ipv6.yaml").read_text()
    for needle in ("insecure: true", "dns64-nat64-runtime: native", "opmodes: master dns64 nat64"):
        assert needle in text, f"the example config changed: {needle!r} is gone"
    return text.replace("insecure: true", "insecure: false")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = make_cluster(tmp_path, _config_text(), [MASTER, MINION])
    try:
        yield made
    finally:
        for node in made.nodes.values():
            kill_servers(node.root)
            sh("ip", "netns", "del", support_netns(node.root), check=False)
        made.destroy()


def _tree(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        if path.is_symlink():
            what: Any = ("link", os.readlink(path))
        elif path.is_file():
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            what = ("dir",)
        found[str(path.relative_to(root))] = (*what, oct(st.st_mode), st.st_uid, st.st_gid)
    return found


def _kernel(netns: str) -> dict[str, Any]:
    """Links, addresses, routes, sysctls and firewall rules of a namespace."""
    inside = ["ip", "netns", "exec", netns]
    links = {}
    for link in json.loads(sh("ip", "-n", netns, "-j", "addr", "show").stdout):
        addresses = sorted(f"{a['local']}/{a['prefixlen']} {a.get('scope')}" for a in link.get("addr_info", []))
        links[link["ifname"]] = (link["mtu"], sorted(link["flags"]), link.get("master"), addresses)
    routes = sorted(json.dumps(r, sort_keys=True) for family in ("-4", "-6")
                    for r in json.loads(sh("ip", "-n", netns, "-j", family, "route", "show", "table", "all").stdout))
    sysctls = sh(*inside, "sysctl", "--pattern", SYSCTLS, "-a").stdout.splitlines()
    rules = {f"{program} {table}": sh(*inside, program, "-w", "5", "-t", table, "-S").stdout
             for program in ("iptables", "ip6tables") for table in ("filter", "nat", "mangle", "raw")}
    return {"links": links, "routes": routes, "sysctls": sorted(sysctls), "rules": rules}


def _namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}


def state(cluster: Cluster) -> dict[str, Any]:
    """Everything lazyjack may change on the cluster's nodes."""
    present = _namespaces()
    info = cluster.config.stat()
    taken: dict[str, Any] = {"config": (cluster.config.read_bytes(), oct(info.st_mode), info.st_uid, info.st_gid)}
    for name, node in cluster.nodes.items():
        support = support_netns(node.root)
        taken[name] = {
            "root": _tree(node.root),
            "kernel": _kernel(node.netns),
            "support": _kernel(support) if support in present else None,
            "servers": server_pids(node.root),
        }
    return taken


def _differences(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after), key=str):
            lines += _differences(before.get(key), after.get(key), f"{path}/{key}")
        return lines
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"[:400]]


def _dry_runs(cluster: Cluster, nodes: list[str]) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Every command with --dry-run on every node; (node, command) -> (exit code, stdout, stderr)."""
    results = {}
    for name in nodes:
        node: Node = cluster.nodes[name]
        for command, (code, out, err) in zip(
            COMMANDS, node.run_many([["--dry-run", c] for c in COMMANDS], config=cluster.config), strict=True
        ):
            assert "Traceback" not in err and "internal error" not in err, err
            results[name, command] = (code, out, err)
    return results


def _left_by_an_interrupted_down(node: Node) -> None:
    journal = Journal.load(Files(node.root), host=node.name)
    journal.add(command="down", key="delete-link:link br0", kind="delete-link", title="link br0",
                record={"name": "br0", "summary": "link br0"})


def test_dry_run_of_every_command_changes_nothing(cluster: Cluster) -> None:
    nodes = [MASTER, MINION]

    # A node nobody has touched: init has not run, prepare needs its token.
    before = state(cluster)
    runs = _dry_runs(cluster, nodes)
    assert _differences(before, state(cluster)) == []
    code, out, _ = runs[MASTER, "init"]
    assert code == 0 and "~ would write token and token-cert-hash" in out, out
    assert runs[MASTER, "prepare"][0] == 2 and "general.token" in runs[MASTER, "prepare"][2]

    # init done: prepare plans every step, with the servers to start.
    cluster.ok(MASTER, "init")
    before = state(cluster)
    runs = _dry_runs(cluster, nodes)
    assert _differences(before, state(cluster)) == []
    code, out, _ = runs[MASTER, "prepare"]
    assert code == 0 and "~ NAT64 server (tayga): start tayga in" in out and "~ DNS64 server (named)" in out, out
    assert runs[MASTER, "init"][:2] == (0, runs[MASTER, "init"][1]) and "· bootstrap token" in runs[MASTER, "init"][1]

    # Prepared: the servers run, the journal holds prepare.
    for name in nodes:
        cluster.ok(name, "prepare")
    assert sorted(server_pids(cluster.nodes[MASTER].root)) == ["named", "tayga"]
    before = state(cluster)
    runs = _dry_runs(cluster, nodes)
    assert _differences(before, state(cluster)) == []
    assert "~ kubeadm init: kubeadm init --config" in runs[MASTER, "up"][1], runs[MASTER, "up"][1]
    assert "  ~ NAT64 server (tayga): stop tayga" in runs[MASTER, "clean"][1], runs[MASTER, "clean"][1]

    # Up: the journal holds up as well, and on the minion what a down that was killed left (down journals
    # the CNI bridge's deletion and forgets it at once; a dry run must not do the forgetting).
    for name in nodes:
        cluster.ok(name, "up")
    _left_by_an_interrupted_down(cluster.nodes[MINION])
    before = state(cluster)
    runs = _dry_runs(cluster, nodes)
    assert _differences(before, state(cluster)) == []
    assert "~ kubeadm init: kubeadm reset -f" in runs[MASTER, "down"][1], runs[MASTER, "down"][1]

    for name in (MINION, MASTER):
        cluster.ok(name, "down")
        cluster.ok(name, "clean")
    assert not (cluster.nodes[MINION].root / "var/lib/lazyjack").exists()
    assert server_pids(cluster.nodes[MASTER].root) == {}
