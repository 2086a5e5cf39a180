"""prepare, up, down and clean through run_node_command on a fake node: full cycles end where they began,
second runs say there is nothing to change, dry runs change nothing, failures leave the node as found,
and clean without a journal undoes a node prepared by lazyjack 1.x.
"""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from stepkit import (
    EXAMPLE_ROLES,
    HOSTS,
    RESOLV,
    USER,
    FakeNode,
    differences,
    fail_writes,
    make_node,
    role_id,
)

from lazyjack.commands.node import node_lock
from lazyjack.errors import HostError, PreflightError
from lazyjack.steps.engine import StepFailed
from lazyjack.steps.kube import ADMIN_CONF, APISERVER_MANIFEST, KUBELET_CONF

ROLE_IDS = [role_id(*r) for r in EXAMPLE_ROLES]
DROPIN = "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"
KUBEADM_CONF = "/tmp/lazyjack/kubeadm.conf"


@pytest.fixture(autouse=True)
def no_sudo_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_node_command reads SUDO_USER when run as root: the tests say who invokes."""
    monkeypatch.delenv("SUDO_USER", raising=False)


@pytest.fixture(params=EXAMPLE_ROLES, ids=ROLE_IDS)
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakeNode:
    example, name = request.param
    return make_node(tmp_path, example, name)


def uses_bridge(fake: FakeNode) -> bool:
    return fake.config.plugin == "bridge"


def pods_started(fake: FakeNode) -> None:
    """What the CNI bridge plugin does when the first pod starts: create br0."""
    if uses_bridge(fake):
        fake.net.add_link("br0")


def run(fake: FakeNode, command: str, **kwargs: bool) -> str:
    fake.run(command, **kwargs)
    return fake.output()


def nothing_to_change(fake: FakeNode, state: str) -> str:
    return f"nothing to change: {fake.name} is already {state}"


# --- full cycles -----------------------------------------------------------------------------------


def test_full_cycle_twice_each_ends_where_it_began(fake: FakeNode) -> None:
    initial = fake.snapshot()

    first = run(fake, "prepare")
    assert "✓ MTU of eth1: 1500 -> 1400" in first
    assert nothing_to_change(fake, "prepared") in run(fake, "prepare")
    prepared = fake.snapshot()

    run(fake, "up")
    pods_started(fake)
    assert nothing_to_change(fake, "up") in run(fake, "up")
    assert fake.read(KUBELET_CONF) is not None

    down = run(fake, "down")
    assert "kubeadm reset -f" in down
    if uses_bridge(fake):
        assert "✓ link br0: delete br0" in down
    assert differences(prepared, fake.snapshot()) == []
    assert nothing_to_change(fake, "down") in run(fake, "down")

    run(fake, "clean")
    assert nothing_to_change(fake, "clean") in run(fake, "clean")
    assert differences(initial, fake.snapshot()) == []

    verb = "init" if fake.node.is_master else "join"
    assert [a[:2] for a in fake.runner.kube_calls()] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart"],
        ["kubeadm", verb],
        ["kubeadm", "reset"],
    ]


def test_clean_after_up_undoes_up_as_down_would(fake: FakeNode) -> None:
    initial = fake.snapshot()
    run(fake, "prepare")
    run(fake, "up")
    pods_started(fake)
    out = run(fake, "clean")
    assert "`up` was not undone: undoing it first" in out
    assert differences(initial, fake.snapshot()) == []
    assert nothing_to_change(fake, "clean") in run(fake, "clean")


@pytest.mark.skipif(os.geteuid() != 0, reason="SUDO_USER is only read when running as root")
def test_full_cycle_under_sudo_gives_the_user_a_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUDO_USER", USER.name)
    fake = make_node(tmp_path, "dual-stack.yaml", "master")
    initial = fake.snapshot()
    run(fake, "prepare")
    assert f"✓ kubeconfig of {USER.name}" in run(fake, "up")
    kubeconfig = fake.root / USER.home.lstrip("/") / ".kube/config"
    assert kubeconfig.read_text() == fake.read(ADMIN_CONF)
    assert (kubeconfig.stat().st_uid, kubeconfig.stat().st_mode & 0o777) == (USER.uid, 0o600)
    assert nothing_to_change(fake, "up") in run(fake, "up")
    run(fake, "down")
    run(fake, "clean")
    assert differences(initial, fake.snapshot()) == []


# --- dry runs --------------------------------------------------------------------------------------


def dry(fake: FakeNode, command: str) -> str:
    """A dry run of `command`: it must change nothing at all and run nothing but `kubeadm version`."""
    before, calls = fake.snapshot(), len(fake.runner.kube_calls())
    out = run(fake, command, dry_run=True)
    assert differences(before, fake.snapshot()) == [], command
    assert len(fake.runner.kube_calls()) == calls, fake.runner.kube_calls()
    assert "(dry run: nothing changes)" in out
    return out


def test_dry_run_of_every_command_changes_nothing(fake: FakeNode) -> None:
    for command in ("down", "clean"):  # nothing to undo on a fresh node
        dry(fake, command)
    out = dry(fake, "prepare")
    assert "~ MTU of eth1: 1500 -> 1400" in out
    assert "+++ /etc/hosts" in out and "#[+]" in out
    run(fake, "prepare")
    out = dry(fake, "up")
    assert "~ kubeadm " in out
    run(fake, "up")
    pods_started(fake)
    verb = "init" if fake.node.is_master else "join"
    assert f"~ kubeadm {verb}: kubeadm reset -f" in dry(fake, "down")
    assert "~ MTU of eth1: restore MTU 1500 on eth1" in dry(fake, "clean")
    run(fake, "down")
    dry(fake, "down")
    dry(fake, "clean")


def test_dry_run_of_down_keeps_what_an_interrupted_down_left_in_the_journal(fake: FakeNode) -> None:
    """down journals the CNI bridge's deletion and forgets it at once; an interrupted down leaves it behind.
    A dry run must leave it too: the journal is part of the node."""
    from lazyjack.steps.journal import Entry

    run(fake, "prepare")
    journal = fake.journal()
    journal.entries.append(Entry("down", "delete-link:link br0", "delete-link", "link br0", {"name": "br0",
                                                                                          "summary": "link br0"}))
    journal.save()
    dry(fake, "down")
    assert [e.command for e in fake.journal().entries].count("down") == 1


# --- failures --------------------------------------------------------------------------------------


def test_failed_prepare_leaves_the_node_as_found(fake: FakeNode) -> None:
    initial = fake.snapshot()
    fail_writes(fake.host.files, "/etc/resolv.conf")
    with pytest.raises(StepFailed, match=r"prepare failed at /etc/resolv.conf nameserver: cannot write"):
        fake.run("prepare")
    assert differences(initial, fake.snapshot()) == []
    assert "↺ MTU of eth1" in fake.output()


def test_failed_up_leaves_the_node_prepared(fake: FakeNode) -> None:
    run(fake, "prepare")
    prepared = fake.snapshot()
    fake.runner.fail(["kubeadm", "init" if fake.node.is_master else "join"], returncode=3, stderr="[preflight] no")
    with pytest.raises(StepFailed, match=r"(?s)up failed at kubeadm (init|join): kubeadm .* exited with 3\n\[preflight\] no"):
        fake.run("up")
    assert differences(prepared, fake.snapshot()) == []
    assert fake.journal().of("up") == []


def test_failed_reset_at_down_is_kept_for_the_next_down(fake: FakeNode) -> None:
    run(fake, "prepare")
    prepared = fake.snapshot()
    run(fake, "up")
    fake.runner.fail(["kubeadm", "reset"])
    with pytest.raises(HostError, match=r"down finished with 1 error\(s\):\n  - kubeadm (init|join): kubeadm reset -f"):
        fake.run("down")
    assert [e.kind for e in fake.journal().of("up")] in (["kubeadm-init"], ["kubeadm-join"])
    assert fake.read(KUBELET_CONF) is not None
    run(fake, "down")
    assert differences(prepared, fake.snapshot()) == []


def test_preflight_refuses_a_missing_interface_before_any_change(fake: FakeNode) -> None:
    fake.net.delete_link("eth1")
    initial = fake.snapshot()
    with pytest.raises(PreflightError, match=r"interface 'eth1' .* does not exist on this host; it has: eth0"):
        fake.run("prepare")
    assert differences(initial, fake.snapshot()) == []


def test_preflight_warns_when_the_management_interface_holds_the_default_route(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "dual-stack.yaml", "minion")
    fake.net.link_up("eth1")
    fake.net.add_address("eth1", fake.node.management[0], nodad=True)
    fake.net.add_route(ip_network("::/0"), ip_address("fd00:20::1"), dev="eth1")
    out = run(fake, "prepare", dry_run=True)
    assert "! warning: eth1 holds the default IPv6 route" in out
    assert "default IPv4 route" not in out  # that one is on eth0
    assert fake.net.default_route_dev(socket.AF_INET) == "eth0"


# --- a node prepared by lazyjack 1.x: no journal -----------------------------------------------------


def installed_and_up(fake: FakeNode) -> None:
    """Before 1.x ran: the kubeadm package's drop-in is there and eth1 is up. Clean leaves directories,
    the link state, MTU and sysctls alone without a journal: their originals are unknown."""
    fake.write("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "[Service]\n")
    (fake.root / "tmp/lazyjack").mkdir(parents=True)  # the work area, which clean leaves to its owner
    fake.net.link_up("eth1")


def prepare_like_1x(fake: FakeNode) -> None:
    """What lazyjack 1.x left on the node after prepare: marker lines, addresses, support routes, files."""
    nodes = fake.plan.cluster_nodes()
    family = fake.config.service[0].version
    added = "".join(f"{n.management_of(family).ip} {n.name}  #[+]\n" for n in nodes)  # type: ignore[union-attr]
    fake.write("/etc/hosts", HOSTS.format(name=fake.name).replace("127.0.1.1", "#[-] 127.0.1.1") + added)
    fake.write("/etc/resolv.conf", f"search example.test\nnameserver {fake.node.nameserver}  #[+]\n"
               "nameserver 198.51.100.53\n")
    fake.write(DROPIN, "[Service]\nEnvironment=\"KUBELET_DNS_ARGS=--cluster-dns=fd00:30::a\"\n")
    fake.write(KUBEADM_CONF, "apiVersion: kubeadm.k8s.io/v1alpha2\nkind: MasterConfiguration\n")
    for address in fake.node.management:
        fake.net.add_address("eth1", address, nodad=True)
    for route in fake.node.routes:
        if route.phase == "prepare" and route.device is not None:
            fake.net.add_route(route.destination, route.gateway, dev=route.device)


def up_like_1x(fake: FakeNode) -> None:
    """What 1.x's up left: routes to the other nodes' pod subnets, kubeadm's files, the CNI bridge."""
    for route in fake.node.routes:
        if route.phase == "up":
            fake.net.add_route(route.destination, route.gateway, dev=route.device)
    for path in (APISERVER_MANIFEST, ADMIN_CONF, KUBELET_CONF) if fake.node.is_master else (KUBELET_CONF,):
        fake.write(path, "written by kubeadm\n")
    pods_started(fake)


def test_clean_without_journal_undoes_a_1x_prepare(fake: FakeNode) -> None:
    installed_and_up(fake)
    pristine = fake.snapshot()
    prepare_like_1x(fake)
    assert fake.journal().entries == []

    out = run(fake, "clean")

    assert "no journal of `prepare`: undoing from the configuration and the 1.x markers" in out
    assert fake.read("/etc/hosts") == HOSTS.format(name=fake.name)
    assert fake.read("/etc/resolv.conf") == RESOLV
    assert fake.net.addresses("eth1") == []
    assert differences(pristine, fake.snapshot()) == []
    assert nothing_to_change(fake, "clean") in run(fake, "clean")


def test_down_and_clean_without_journal_undo_a_1x_node_that_was_up(fake: FakeNode) -> None:
    installed_and_up(fake)
    pristine = fake.snapshot()
    prepare_like_1x(fake)
    up_like_1x(fake)
    with_pod_routes = fake.snapshot()
    assert any("via" in r and "proto 4" in r for r in with_pod_routes["routes"])

    out = run(fake, "down")
    assert "no journal: a node brought up by lazyjack 1.x; undoing from the configuration" in out
    assert "kubeadm reset -f" in out
    assert not [r for r in fake.snapshot()["routes"] if any(str(p) in r for n in fake.plan.cluster_nodes()
                                                            for p in n.pod_subnets)]
    run(fake, "clean")
    assert differences(pristine, fake.snapshot()) == []


def test_clean_without_journal_on_a_1x_node_that_was_up_undoes_up_first(fake: FakeNode) -> None:
    installed_and_up(fake)
    pristine = fake.snapshot()
    prepare_like_1x(fake)
    up_like_1x(fake)
    run(fake, "clean")
    assert differences(pristine, fake.snapshot()) == []
    assert nothing_to_change(fake, "clean") in run(fake, "clean")


def test_clean_with_an_unreadable_journal_stops_and_says_how_to_go_on(fake: FakeNode) -> None:
    fake.write("/var/lib/lazyjack/journal.json", "{not json")
    before = fake.snapshot()
    with pytest.raises(HostError, match=r"journal .* cannot be read .*; move it away to clean from the configuration"):
        fake.run("clean")
    assert differences(before, fake.snapshot()) == []


def test_a_second_lazyjack_is_refused_while_one_runs(fake: FakeNode) -> None:
    with node_lock(fake.host), pytest.raises(HostError, match=rf"another lazyjack \(pid {os.getpid()}\)"):
        fake.run("prepare")
    assert not (fake.root / "var/lib/lazyjack").exists()


def test_errno_of_a_refused_address_reaches_the_message(fake: FakeNode) -> None:
    fake.net.fail_next("add_address", errno.EACCES)
    with pytest.raises(StepFailed, match=r"add address .* to eth1: Permission denied \(EACCES\)"):
        fake.run("prepare")
