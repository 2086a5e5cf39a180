"""status and restore on a fake node: every step kind checked from its record, mends journaled so that
clean still restores, a failed restore rolled back, and status reading only."""

from __future__ import annotations

import errno
from ipaddress import ip_interface, ip_network
from pathlib import Path

import pytest
from stepkit import CONFIG_MTU, START_MTU, FakeNode, make_node

from lazyjack.commands.drift import node_status, run_restore
from lazyjack.steps.base import _KINDS, Step
from lazyjack.steps.engine import StepFailed


def _status(node: FakeNode) -> dict[str, list[str]]:
    """step title -> details, for the steps not in place."""
    found = node_status(node.host, node.config, node.plan, node.name, root=node.root)
    return {s.title: [s.state, *s.details] for s in found.steps if not s.in_place}


def _restore(node: FakeNode) -> str:
    run_restore(node.host, node.config, node.plan, node.name, root=node.root, report=node.lines.append)
    return node.output()


def test_every_step_kind_checks_its_record() -> None:
    # `check` is abstract on Step: a kind without one could not be instantiated, and status would not know it.
    for kind, cls in _KINDS.items():
        assert cls.check is not Step.check, kind


@pytest.fixture
def minion(tmp_path: Path) -> FakeNode:
    node = make_node(tmp_path, "ipv6.yaml", "a-minion")
    node.run("prepare")
    node.run("up")
    node.output()
    return node


def test_in_place_after_prepare_and_up(minion: FakeNode) -> None:
    found = node_status(minion.host, minion.config, minion.plan, minion.name, root=minion.root)
    assert found.applied == "up" and found.in_place, [s for s in found.steps if not s.in_place]
    assert {s["kind"] for s in found.as_json()["steps"]} >= {"link-up", "address", "mtu", "sysctl", "marked-edit",
                                                              "routes", "file", "symlink", "kubeadm-join"}


def test_status_only_reads(minion: FakeNode) -> None:
    minion.net.del_address("eth1", ip_interface("fd00:20::3/64"))
    before = minion.snapshot()
    calls = len(minion.runner.calls)
    assert _status(minion)["address fd00:20::3/64 on eth1"] == ["missing", "fd00:20::3/64 is not on eth1"]
    assert minion.snapshot() == before
    assert len(minion.runner.calls) == calls, "status ran a program"


def test_status_dumps_the_routes_once(minion: FakeNode) -> None:
    dumps = []
    real = minion.net.route_table

    def counted() -> object:
        dumps.append(1)
        return real()

    minion.net.route_table = counted  # type: ignore[method-assign]
    _status(minion)
    assert len(dumps) == 1


def test_reboot_like_drift_is_mended_and_clean_still_restores(tmp_path: Path) -> None:
    minion = make_node(tmp_path, "ipv6.yaml", "a-minion")
    pristine = minion.snapshot()
    minion.run("prepare")
    minion.run("up")
    # What a reboot does: the link down without its addresses and routes, MTU and sysctls back to defaults.
    for address in minion.net.addresses("eth1"):
        minion.net.del_address("eth1", address)
    for route in minion.net.routes():
        if route.dev == "eth1":
            minion.net.del_route(route.dst, route.gateway)
    minion.net.set_mtu("eth1", START_MTU)
    minion.net.link_down("eth1")
    minion.sysctl.set("net.ipv6.conf.all.forwarding", "0")
    drifted = _status(minion)
    assert drifted["MTU of eth1"] == ["drifted", f"MTU of eth1 is {START_MTU} instead of {CONFIG_MTU}"]
    assert drifted["eth1 up"] == ["missing", "eth1 is down"]
    assert drifted["sysctl net.ipv6.conf.all.forwarding"][1] == "sysctl net.ipv6.conf.all.forwarding is 0 instead of 1"
    journal = [(e.key, e.record) for e in minion.journal().entries]
    out = _restore(minion)
    assert "✓ MTU of eth1: re-applied (MTU of eth1 is 1500 instead of 1400)" in out, out
    assert _status(minion) == {}
    assert [(e.key, e.record) for e in minion.journal().entries] == journal, "restore keeps the first records"
    assert "nothing to change" in _restore(minion)
    minion.run("down")
    minion.run("clean")
    assert minion.snapshot() == pristine


def test_a_failed_restore_rolls_back_its_mends(minion: FakeNode) -> None:
    minion.net.del_address("eth1", ip_interface("fd00:20::3/64"))
    minion.net.set_mtu("eth1", START_MTU)
    minion.sysctl.set("net.ipv6.conf.all.forwarding", "0")
    before = minion.snapshot()
    minion.sysctl.fail_next("net.ipv6.conf.all.forwarding")
    with pytest.raises(StepFailed, match=r"restore failed at sysctl net\.ipv6\.conf\.all\.forwarding.*rolled back 2"):
        _restore(minion)
    assert minion.snapshot() == before
    assert set(_status(minion)) == {"address fd00:20::3/64 on eth1", "MTU of eth1", "sysctl net.ipv6.conf.all.forwarding"}


def test_edited_files_are_reported_not_rewritten(minion: FakeNode) -> None:
    dropin = "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"
    minion.write(dropin, "# mine now\n")
    minion.write("/tmp/lazyjack/kubeadm.conf", "# customised\n")
    found = _status(minion)
    assert found == {"kubelet drop-in": ["drifted", f"{dropin} was changed since lazyjack wrote it"]}
    out = _restore(minion)
    assert f"! kubelet drop-in: {dropin} was changed since lazyjack wrote it; left as it is" in out, out
    assert minion.read(dropin) == "# mine now\n"


def test_hosts_entry_mended_keeps_other_edits(minion: FakeNode) -> None:
    hosts = minion.read("/etc/hosts") or ""
    edited = hosts.replace("fd00:20::2 my-master  #[+]", "fd00:20::9 my-master  #[+]") + "10.1.1.1 printer\n"
    minion.write("/etc/hosts", edited)
    found = _status(minion)["/etc/hosts entries"]
    assert found[0] == "drifted" and "/etc/hosts: line 'fd00:20::2 my-master  #[+]' missing" in found
    _restore(minion)
    now = minion.read("/etc/hosts") or ""
    assert "fd00:20::2 my-master  #[+]" in now and "fd00:20::9" not in now and "10.1.1.1 printer" in now
    minion.run("down")
    minion.run("clean")
    # clean takes out lazyjack's lines only: the printer someone added stays.
    assert "10.1.1.1 printer" in (minion.read("/etc/hosts") or "") and "#[+]" not in (minion.read("/etc/hosts") or "")


def test_a_route_someone_replaced_is_left_as_it_is(minion: FakeNode) -> None:
    prefix = ip_network("fd00:10:64:ff9b::/96")
    minion.net.del_route(prefix, None)
    minion.net.add_route(prefix, None, dev="eth0")
    found = node_status(minion.host, minion.config, minion.plan, minion.name, root=minion.root)
    step = next(s for s in found.steps if not s.in_place)
    assert step.fix and step.details[0] == "route fd00:10:64:ff9b::/96 goes via eth0 instead of fd00:20::4"


def test_restore_on_a_node_with_nothing_applied(tmp_path: Path) -> None:
    node = make_node(tmp_path, "ipv6.yaml", "a-minion")
    assert node_status(node.host, node.config, node.plan, node.name, root=node.root).applied == "nothing"
    assert "nothing to restore" in _restore(node)
    assert not (node.root / "var/lib/lazyjack").exists()


def test_a_check_that_fails_is_unknown_and_counts_as_not_in_place(minion: FakeNode) -> None:
    minion.net.fail_next("link_exists", errno.EPERM)
    found = node_status(minion.host, minion.config, minion.plan, minion.name, root=minion.root)
    unknown = [s for s in found.steps if s.state == "unknown"]
    assert len(unknown) == 1 and unknown[0].details[0].startswith("cannot check: ") and not found.in_place
