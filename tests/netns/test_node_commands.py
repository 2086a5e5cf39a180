"""prepare, up, down and clean on namespaces joined by a bridge, in every mode, against the real kernel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import EXAMPLES, SYSCTLS, Cluster, assert_nothing_changed, assert_only_planned, make_cluster

from kubeadm_schema import check_stream

MODES = {
    "ipv6": ("ipv6.yaml", ["my-master", "a-minion"]),
    "ipv4": ("ipv4.yaml", ["master", "minion-1", "minion-2"]),
    "dual-stack": ("dual-stack.yaml", ["master", "minion"]),
}


def _config_text(example: str) -> str:
    return (EXAMPLES / example).read_text().replace("mtu: 1500", "mtu: 1400")


@pytest.fixture(params=list(MODES))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    example, names = MODES[request.param]
    text = _config_text(example)
    if "mtu:" not in text:
        text = text.replace("pod_net:\n", "pod_net:\n    mtu: 1400\n")
    made = make_cluster(tmp_path, text, names)
    try:
        yield made
    finally:
        made.destroy()


def _server_runtime(path: str) -> bool:
    parts = path.split("/")
    return ("dns64" in parts or "nat64" in parts) and (path.endswith(".log") or "data" in parts)


def _master(cluster: Cluster) -> str:
    return next(n for n in cluster.nodes if "master" in n)


def _minions(cluster: Cluster) -> list[str]:
    return [n for n in cluster.nodes if "master" not in n]


def _plan(cluster: Cluster) -> dict[str, object]:
    node = next(iter(cluster.nodes.values()))
    result = node.run("validate", "--output", "json", config=cluster.config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_full_cycle_restores_every_node(cluster: Cluster) -> None:
    plan = _plan(cluster)
    before = cluster.snapshots()

    # Dry runs change nothing.
    for name in cluster.nodes:
        assert_only_planned(cluster.ok(name, "prepare", "--dry-run"))
    assert cluster.snapshots() == before

    # prepare: addresses, MTU, sysctls, files.
    for name in cluster.nodes:
        cluster.ok(name, "prepare")
    prepared = cluster.snapshots()
    for name, node in cluster.nodes.items():
        snap = prepared[name]
        expected = plan["nodes"][name]  # type: ignore[index]
        assert sorted(expected["management_addresses"]) == snap["addresses"]
        assert snap["mtu"] == 1400 and snap["up"]
        versions = {6 if ":" in a else 4 for a in expected["management_addresses"]}
        if 4 in versions:
            assert snap["sysctls"]["net/ipv4/ip_forward"] == "1"
        if 6 in versions:
            assert snap["sysctls"]["net/ipv6/conf/all/forwarding"] == "1"
        hosts = (node.root / "etc/hosts").read_text()
        for other, info in plan["nodes"].items():  # type: ignore[union-attr]
            if set(info["roles"]) & {"master", "minion"}:
                assert any(line.endswith(f" {other}  #[+]") for line in hosts.splitlines()), hosts
        assert f"#[-] 127.0.1.1\t{name}" in hosts
        resolv = (node.root / "etc/resolv.conf").read_text().splitlines()
        first = next(line for line in resolv if line.startswith("nameserver"))
        assert first == f"nameserver {expected['nameserver']}  #[+]"
        dropin = (node.root / "etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf").read_text()
        assert f"--cluster-dns={plan['dns_service_ip']}" in dropin
        kubeadm_conf = (node.root / "tmp/lazyjack/kubeadm.conf").read_text()
        assert check_stream(kubeadm_conf) == []
        kind = "InitConfiguration" if "master" in expected["roles"] else "JoinConfiguration"
        assert f"kind: {kind}" in kubeadm_conf
        pod_subnets = {s for info in plan["nodes"].values() for s in info.get("pod_subnets", [])}  # type: ignore[union-attr]
        routes_now = json.dumps(snap["routes"])
        for route in expected["routes"]:
            if route["destination"] not in pod_subnets and "nat64" not in expected["roles"]:
                # Routes via the NAT64 node's management address are installed by prepare.
                assert route["destination"] in routes_now and route["gateway"] in routes_now, route
            if route["destination"] in pod_subnets:
                assert route["destination"] not in routes_now, "pod routes belong to up"

    # A second prepare changes nothing and says so.
    for name in cluster.nodes:
        assert_nothing_changed(cluster.ok(name, "prepare"), name, "prepared")
    again = cluster.snapshots()
    for name in cluster.nodes:
        # The DNS64/NAT64 servers keep running: their logs and state files may grow meanwhile.
        for snap in (again[name], prepared[name]):
            snap["files"] = {k: v for k, v in snap["files"].items() if not _server_runtime(k)}
        diff = {k: (again[name][k], prepared[name][k]) for k in again[name] if again[name][k] != prepared[name][k]}
        assert diff == {}, name

    # The nodes reach each other over the management addresses lazyjack added.
    master = _master(cluster)
    for address in plan["nodes"][master]["management_addresses"]:  # type: ignore[index]
        for minion in _minions(cluster):
            ip = address.split("/")[0]
            cluster.nodes[minion].exec("ping", "-c", "1", "-W", "2", ip)

    # up: master first, then minions.
    cluster.ok(master, "up")
    for minion in _minions(cluster):
        cluster.ok(minion, "up")
    for name, node in cluster.nodes.items():
        expected = plan["nodes"][name]  # type: ignore[index]
        conflist = json.loads((node.root / "etc/cni/net.d/00-lazyjack.conflist").read_text())
        assert conflist["cniVersion"] == "1.0.0"
        subnets = [r[0]["subnet"] for r in conflist["plugins"][0]["ipam"]["ranges"]]
        assert subnets == expected["pod_subnets"]
        routes_now = json.dumps(node.snapshot()["routes"])
        for route in expected["routes"]:
            if "nat64" in expected["roles"] and route["destination"] not in pod_subnets:
                continue  # the NAT64 node's own routes come with the support network (DNS64/NAT64 issue)
            assert route["destination"] in routes_now and route["gateway"] in routes_now, (name, route)
        calls = [c["argv"] for c in node.calls()]
        assert ["daemon-reload"] in calls and ["restart", "kubelet"] in calls
        verb = "init" if name == master else "join"
        assert any(c[:1] == [verb] and c[1] == "--config" for c in calls), calls
    assert (cluster.nodes[master].root / "etc/kubernetes/pki").exists() is False  # insecure: kubeadm makes its CA

    # up again: nothing to do.
    assert_nothing_changed(cluster.ok(master, "up"), master, "up")

    # down: minions first, then master; twice is harmless.
    for name in [*_minions(cluster), master]:
        cluster.ok(name, "down")
        cluster.ok(name, "down")
        calls = [c["argv"] for c in cluster.nodes[name].calls()]
        assert ["reset", "-f"] in calls
        assert not (cluster.nodes[name].root / "etc/cni/net.d/00-lazyjack.conflist").exists()
    # clean, twice; everything is back as it was.
    for name in cluster.nodes:
        cluster.ok(name, "clean")
        assert_nothing_changed(cluster.ok(name, "clean"), name, "clean")
    after = cluster.snapshots()
    for name in cluster.nodes:
        assert after[name] == before[name], name


def test_missing_interface_is_reported_before_any_change(cluster: Cluster) -> None:
    name = next(iter(cluster.nodes))
    node = cluster.nodes[name]
    node.exec("ip", "link", "set", "eth1", "name", "eth9")
    links_before = node.exec("ip", "-j", "addr", "show").stdout
    routes_before = node.exec("ip", "-j", "-6", "route", "show").stdout + node.exec("ip", "-j", "route", "show").stdout
    sysctls_before = [node.exec("cat", f"/proc/sys/{s}").stdout for s in SYSCTLS]
    files_before = {p: p.read_bytes() if p.is_file() else None for p in node.root.rglob("*")}
    result = cluster.run(name, "prepare")
    assert result.returncode == 1
    assert "'eth1'" in result.stderr and "does not exist" in result.stderr and "eth9" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing changed: files, addresses and link state, routes, sysctls.
    assert {p: p.read_bytes() if p.is_file() else None for p in node.root.rglob("*")} == files_before
    assert node.exec("ip", "-j", "addr", "show").stdout == links_before
    routes_after = node.exec("ip", "-j", "-6", "route", "show").stdout + node.exec("ip", "-j", "route", "show").stdout
    assert routes_after == routes_before
    assert [node.exec("cat", f"/proc/sys/{s}").stdout for s in SYSCTLS] == sysctls_before


def test_failed_prepare_rolls_back(cluster: Cluster) -> None:
    """resolv.conf cannot be replaced (a read-only bind mount): prepare exits 1, names it, undoes the rest."""
    name = _master(cluster)
    node = cluster.nodes[name]
    before = node.snapshot()
    resolv = node.root / "etc/resolv.conf"
    # A file that is a mount point cannot be renamed over: the atomic write fails for real.
    import subprocess

    subprocess.run(["mount", "--bind", str(resolv), str(resolv)], check=True)
    try:
        result = cluster.run(name, "prepare")
    finally:
        subprocess.run(["umount", str(resolv)], check=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "resolv.conf" in result.stderr
    assert "rolled back" in result.stderr
    assert "Traceback" not in result.stderr
    assert node.snapshot() == before
