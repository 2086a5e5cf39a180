"""Edge cases of the node commands against the real kernel, on the IPv6 example in namespaces.

A node left by lazyjack 1.x (no journal), two lazyjack processes on one node, changes the
kernel refuses (before and while acting), SIGTERM/SIGINT in the middle of `up`, and dry
runs after real changes. Each compares the node's state with Node.snapshot().
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cluster import EXAMPLES, HOSTS, RESOLV, Cluster, Node, assert_nothing_changed, make_cluster

MASTER, MINION = "my-master", "a-minion"
STATE = "var/lib/lazyjack"
DROPIN = "etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"
WAIT = 30.0  # seconds: the longest any poll below waits for lazyjack or the kubeadm stand-in


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = make_cluster(tmp_path, (EXAMPLES / "ipv6.yaml").read_text(), [MASTER, MINION])
    try:
        yield made
    finally:
        made.destroy()


def _set_mtu(cluster: Cluster, mtu: int) -> None:
    """Set pod_net.mtu in the cluster's config (the IPv6 example has 1500, the veths' own MTU)."""
    text = cluster.config.read_text()
    assert "mtu: 1500" in text
    cluster.config.write_text(text.replace("mtu: 1500", f"mtu: {mtu}"))


def _failed(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a run that must have failed with exit code 1, without a traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    return output


# --- a. clean of a node prepared by lazyjack 1.x --------------------------------------------------


def _leave_as_lazyjack_1x(node: Node) -> None:
    """What `lazyjack prepare` of 1.x leaves on a-minion (id 3), with no journal of ours."""
    node.exec("ip", "-6", "addr", "add", "fd00:20::3/64", "dev", "eth1", "nodad")
    for destination in ("fd00:10:64:ff9b::/96", "fd00:10::/64"):  # via the NAT64 node my-master
        node.exec("ip", "-6", "route", "add", destination, "via", "fd00:20::2", "dev", "eth1")
    (node.root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n"
        f"#[-] 127.0.1.1\t{MINION}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"fd00:20::3 {MINION}  #[+]\n"
        f"fd00:20::2 {MASTER}  #[+]\n"
    )
    (node.root / "etc/resolv.conf").write_text(
        "search example.test\nnameserver fd00:10::100  #[+]\nnameserver 198.51.100.53\n"
    )
    (node.root / DROPIN).write_text(
        '[Service]\nEnvironment="KUBELET_DNS_ARGS=--cluster-dns=fd00:30::a --cluster-domain=cluster.local"\n'
    )


def test_clean_undoes_what_lazyjack_1x_left(cluster: Cluster) -> None:
    node = cluster.nodes[MINION]
    # The host as it was before 1.x: interface up, kubelet's package drop-in directory in place.
    node.exec("ip", "link", "set", "eth1", "up")
    package_dropin = node.root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    package_dropin.parent.mkdir(parents=True)
    package_dropin.write_text("[Service]\n")
    pristine = node.snapshot()

    _leave_as_lazyjack_1x(node)
    left = node.snapshot()
    assert "fd00:20::3/64" in left["addresses"]
    assert any("fd00:10:64:ff9b::" in r and "fd00:20::2" in r for r in left["routes"]["-6"])
    assert any('"dst": "fd00:10::/64"' in r for r in left["routes"]["-6"])

    out = cluster.ok(MINION, "clean")
    assert "no journal of `prepare`" in out
    assert (node.root / "etc/hosts").read_text() == HOSTS.format(name=MINION)
    assert (node.root / "etc/resolv.conf").read_text() == RESOLV
    assert not (node.root / DROPIN).exists()
    assert package_dropin.read_text() == "[Service]\n"
    assert node.snapshot() == pristine

    assert_nothing_changed(cluster.ok(MINION, "clean"), MINION, "clean")
    assert node.snapshot() == pristine


# --- b. one lazyjack at a time ----------------------------------------------------------------


def test_second_lazyjack_refuses_while_the_lock_is_held(cluster: Cluster) -> None:
    node = cluster.nodes[MINION]
    lock = node.root / STATE / "lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        before = node.snapshot()
        output = _failed(cluster.run(MINION, "prepare"))
        assert f"another lazyjack (pid {os.getpid()})" in output
        assert str(lock) in output
        assert node.snapshot() == before
        assert not (node.root / STATE / "journal.json").exists()
    # Released: the next run takes the lock, and leaves no lock file behind.
    cluster.ok(MINION, "prepare")
    assert (node.root / STATE / "journal.json").exists()
    assert not lock.exists()


@dataclass
class Held:
    """A lazyjack run (Node.run in a thread) whose kubeadm stand-in waits: see STANDIN_KUBEADM_HOLD."""

    run: Future[subprocess.CompletedProcess[str]]
    lazyjack_pid: int
    kubeadm_pid: int
    release: Path

    def finish(self) -> subprocess.CompletedProcess[str]:
        return self.run.result(timeout=WAIT)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@contextmanager
def held_kubeadm(cluster: Cluster, name: str, *args: str) -> Iterator[Held]:
    """Run `lazyjack ARGS` on `name` until its kubeadm stand-in waits; stop both afterwards in any case."""
    node = cluster.nodes[name]
    prefix = cluster.config.parent / f"kubeadm-hold-{name}"
    ready, release = Path(f"{prefix}.ready"), Path(f"{prefix}.release")
    pool = ThreadPoolExecutor(max_workers=1)
    run = pool.submit(cluster.run, name, *args, env={"STANDIN_KUBEADM_HOLD": str(prefix)}, timeout=2 * WAIT)
    lazyjack_pid = kubeadm_pid = 0
    try:
        deadline = time.monotonic() + WAIT
        while not ready.exists():
            if run.done():
                result = run.result()
                pytest.fail(
                    f"lazyjack {' '.join(args)} ended before kubeadm ran: rc={result.returncode}\n"
                    f"{result.stdout}{result.stderr}"
                )
            assert time.monotonic() < deadline, "the kubeadm stand-in never started"
            time.sleep(0.02)
        kubeadm_pid = int(ready.read_text())
        # kubeadm runs under the node lock, which names the lazyjack process holding it.
        lazyjack_pid = int((node.root / STATE / "lock").read_text())
        yield Held(run, lazyjack_pid, kubeadm_pid, release)
    finally:
        release.touch()  # a stand-in still waiting goes on and ends
        for pid in (lazyjack_pid, kubeadm_pid):
            if not run.done() and pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        pool.shutdown(wait=True)


def test_second_lazyjack_refuses_while_another_runs_kubeadm(cluster: Cluster) -> None:
    node = cluster.nodes[MINION]
    initial = node.snapshot()
    cluster.ok(MINION, "prepare")
    with held_kubeadm(cluster, MINION, "up") as first:
        argv = Path(f"/proc/{first.lazyjack_pid}/cmdline").read_bytes().split(b"\0")
        assert b"lazyjack" in argv and b"up" in argv
        during = node.snapshot()
        for command in ("down", "clean", "prepare"):
            output = _failed(cluster.run(MINION, command))
            assert f"another lazyjack (pid {first.lazyjack_pid}) is acting on this node" in output, output
        assert node.snapshot() == during
        first.release.touch()
        result = first.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [c["argv"][0] for c in node.calls() if c["program"] == "kubeadm"]
    assert calls == ["join"]  # the refused runs never reached kubeadm (no reset)
    cluster.ok(MINION, "down")
    cluster.ok(MINION, "clean")
    assert node.snapshot() == initial


# --- c. changes the kernel refuses --------------------------------------------------------------


def test_conflicting_route_is_reported_before_any_change(cluster: Cluster) -> None:
    node = cluster.nodes[MINION]
    node.exec("ip", "link", "set", "eth1", "up")
    node.exec("ip", "-6", "route", "add", "fd00:10:64:ff9b::/96", "via", "fe80::9", "dev", "eth1")
    before = node.snapshot()
    output = _failed(cluster.run(MINION, "prepare"))
    assert "stopped before changing anything" in output
    assert "a route to fd00:10:64:ff9b::/96 via fe80::9 already exists" in output
    assert "ip route del fd00:10:64:ff9b::/96" in output
    assert node.snapshot() == before


def test_mtu_the_link_refuses_rolls_back(cluster: Cluster) -> None:
    """The management interface is a VXLAN over a 1500-byte link, so it takes at most 1450.

    Nothing in a link's netlink attributes says so (its max_mtu stays 65535: the VXLAN driver
    checks the lower device only when asked), so plan cannot see it: the kernel refuses
    `prepare`'s MTU 1500 with EINVAL after the link was set up and the address added.
    """
    node = cluster.nodes[MINION]
    node.exec("ip", "link", "set", "eth1", "name", "eth0")
    node.exec("ip", "link", "add", "eth1", "type", "vxlan", "id", "42", "dev", "eth0", "dstport", "4789")
    before = node.snapshot()
    assert before["mtu"] == 1450 and not before["up"]
    output = _failed(cluster.run(MINION, "prepare"))
    assert "set MTU of eth1 to 1500: Invalid argument (EINVAL)" in output
    assert "rolled back 2 change(s)" in output
    assert node.snapshot() == before
    assert not (node.root / STATE).exists()


def test_route_the_kernel_refuses_rolls_back_every_step(cluster: Cluster) -> None:
    """An unreachable route to the support network: the kernel answers EEXIST to lazyjack's route.

    It fails the last step of prepare, after the first route of the same step was added:
    every change of the run, files and kernel state, must be undone.
    """
    _set_mtu(cluster, 1400)  # so that the MTU, too, has to be restored
    node = cluster.nodes[MINION]
    node.exec("ip", "-6", "route", "add", "unreachable", "fd00:10::/64")
    before = node.snapshot()
    output = _failed(cluster.run(MINION, "prepare"))
    assert "fd00:10::/64" in output and "rolled back" in output
    assert node.snapshot() == before
    assert not list(node.root.rglob("*.tmp"))


# --- d. SIGTERM / SIGINT in the middle of up ----------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_up_rolls_back_and_clean_restores(cluster: Cluster, sig: signal.Signals) -> None:
    node = cluster.nodes[MINION]
    initial = node.snapshot()
    cluster.ok(MINION, "prepare")
    prepared = node.snapshot()
    with _sigint_not_ignored(), held_kubeadm(cluster, MINION, "up") as up:
        os.kill(up.lazyjack_pid, sig)
        result = up.finish()
        assert not _alive(up.kubeadm_pid), "lazyjack left kubeadm running"
    assert result.returncode == 128 + sig, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert ("terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted") in result.stderr
    assert "✗ kubeadm join: interrupted" in result.stdout
    assert "rolled back 3 change(s) of this run" in result.stdout  # CNI config, pod routes, kubelet restart
    assert [c for c in node.calls() if c["program"] == "kubeadm"] == []
    assert not (node.root / STATE / "lock").exists()
    journal: dict[str, Any] = json.loads((node.root / STATE / "journal.json").read_text())
    assert {e["command"] for e in journal["entries"]} == {"prepare"}
    assert node.snapshot() == prepared

    cluster.ok(MINION, "clean")
    assert node.snapshot() == initial


@contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Programs started meanwhile get SIGINT's default action, even if pytest runs with SIGINT ignored
    (as a background job of a shell does): an ignored signal stays ignored across exec."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


# --- e. dry runs after real changes -------------------------------------------------------------


def test_dry_runs_after_prepare_and_up_change_nothing(cluster: Cluster) -> None:
    node = cluster.nodes[MINION]
    initial = node.snapshot()
    cluster.ok(MINION, "prepare")
    cluster.ok(MINION, "up")
    up = node.snapshot()
    calls = node.calls()

    assert_nothing_changed(cluster.ok(MINION, "up", "--dry-run"), MINION, "up")
    out = cluster.ok(MINION, "down", "--dry-run")
    assert "~ kubeadm join: kubeadm reset -f" in out and "~ routes to other nodes' pod subnets" in out, out
    out = cluster.ok(MINION, "clean", "--dry-run")
    assert "~ kubelet drop-in: remove" in out and "~ address fd00:20::3/64 on eth1" in out, out
    assert node.snapshot() == up
    assert node.calls() == calls  # no kubeadm reset, no systemctl

    # The journal is intact: the real commands still undo everything.
    cluster.ok(MINION, "down")
    cluster.ok(MINION, "clean")
    assert node.snapshot() == initial
