"""The run engine on a fake node: a failure at any step of prepare or up leaves the node and the journal
as the run found them; without rollback the journal lists what stays, and undoing it restores the node.
Journal records keep the state from before lazyjack first changed it.
"""

from __future__ import annotations

import dataclasses
import errno
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from stepkit import (
    EXAMPLE_ROLES,
    START_MTU,
    USER,
    FakeNode,
    current_user,
    differences,
    fail_symlinks,
    fail_writes,
    make_node,
    role_id,
)

from fake_host import FixedUsers
from lazyjack.commands.node import prepare_steps, up_steps
from lazyjack.steps.base import Context, Step
from lazyjack.steps.engine import StepFailed, apply_steps, revert_entries
from lazyjack.steps.files import ManagedFile, MarkedEdit, Symlink
from lazyjack.steps.journal import JOURNAL_PATH, Entry, Journal
from lazyjack.steps.kube import KubeadmInit, KubeadmJoin, KubeletRestart, UserKubeconfig
from lazyjack.steps.network import LinkMtu, LinkUp, ManagementAddress, Routes, Sysctl

# --- a node ready for one command ----------------------------------------------------------------


@dataclass
class Scenario:
    fake: FakeNode
    ctx: Context
    steps: list[Step]
    command: str
    journal: Journal


def scenario(tmp_path: Path, example: str, name: str, command: str) -> Scenario:
    """A fresh node for prepare; for up, a node prepared through the engine (and, on the master, a CA
    in the work area and a sudo user, so that up copies the CA and writes a kubeconfig)."""
    fake = make_node(tmp_path, example, name)
    master = fake.node.is_master
    ctx = fake.context(invoking_user=current_user() if master else None)
    journal = fake.journal()
    if command == "up":
        apply_steps(ctx, prepare_steps(ctx), command="prepare", journal=journal)
        if master:
            fake.add_certs()
    steps = prepare_steps(ctx) if command == "prepare" else up_steps(ctx)
    return Scenario(fake, ctx, steps, command, journal)


def inject(fake: FakeNode, steps: list[Step], index: int) -> None:
    """Make steps[index] fail while it acts, the way the host would refuse it."""
    step, earlier = steps[index], steps[:index]
    if isinstance(step, LinkUp):
        fake.net.fail_next("link_up", errno.EPERM)
    elif isinstance(step, ManagementAddress):
        fake.net.fail_next("add_address", errno.EPERM, after=sum(isinstance(s, ManagementAddress) for s in earlier))
    elif isinstance(step, LinkMtu):
        fake.net.fail_next("set_mtu", errno.EPERM)
    elif isinstance(step, Sysctl):
        fake.sysctl.fail_next(step.name)
    elif isinstance(step, Routes):
        # At the last route: the routes added before it must go too.
        added_before = sum(len(s.routes) for s in earlier if isinstance(s, Routes))
        fake.net.fail_next("add_route", errno.EPERM, after=added_before + len(step.routes) - 1)
    elif isinstance(step, ManagedFile | MarkedEdit):
        fail_writes(fake.host.files, step.path)
    elif isinstance(step, Symlink):
        fail_symlinks(fake.host.files, step.path)
    elif isinstance(step, UserKubeconfig):
        # The account database now names another uid for the user: their home is not theirs, so nothing is written.
        fake.host.users = FixedUsers([dataclasses.replace(USER, uid=USER.uid + 1)])
    elif isinstance(step, KubeletRestart):
        fake.runner.fail(["systemctl", "restart"])  # after daemon-reload succeeded
    elif isinstance(step, KubeadmJoin):
        fake.runner.fail(["kubeadm", "join"], returncode=3)
    elif isinstance(step, KubeadmInit):
        fake.runner.fail(["kubeadm", "init"], returncode=3)
    else:
        raise AssertionError(f"no fault to inject into {type(step).__name__}: add one")


def failure_points() -> list[pytest.ParameterSet]:
    """(example, node, command, index) for every step of prepare and up, named after the step."""
    points = []
    for example, name in EXAMPLE_ROLES:
        for command in ("prepare", "up"):
            with tempfile.TemporaryDirectory() as tmp:
                titles = [s.title for s in scenario(Path(tmp), example, name, command).steps]
            for index, title in enumerate(titles):
                ident = f"{role_id(example, name)}-{command}-{index}-{title.replace(' ', '_')}"
                points.append(pytest.param(example, name, command, index, id=ident))
    return points


FAILURE_POINTS = failure_points()


def entries(journal: Journal) -> list[tuple[str, str, dict[str, object]]]:
    return [(e.command, e.key, e.record) for e in journal.entries]


@pytest.mark.parametrize(("example", "name", "command", "index"), FAILURE_POINTS)
def test_failure_at_any_step_leaves_node_and_journal_as_found(
    example: str, name: str, command: str, index: int, tmp_path: Path
) -> None:
    run = scenario(tmp_path, example, name, command)
    before, journal_before = run.fake.snapshot(journal=False), entries(run.fake.journal())
    failing = run.steps[index]
    inject(run.fake, run.steps, index)

    with pytest.raises(StepFailed) as caught:
        apply_steps(run.ctx, run.steps, command=command, journal=run.journal)

    message = str(caught.value)
    assert message.startswith(f"{command} failed at {failing.title}: "), message
    assert message.endswith(f"rolled back {index} change(s) of this run" if index else "nothing to roll back")
    assert differences(before, run.fake.snapshot(journal=False)) == []
    assert entries(run.fake.journal()) == journal_before
    assert f"  ✗ {failing.title}: " in "\n".join(run.fake.lines)


@pytest.mark.parametrize(("example", "name", "command", "index"), FAILURE_POINTS)
def test_failure_without_rollback_keeps_and_journals_the_changes(
    example: str, name: str, command: str, index: int, tmp_path: Path
) -> None:
    run = scenario(tmp_path, example, name, command)
    before = run.fake.snapshot(journal=False)
    inject(run.fake, run.steps, index)

    with pytest.raises(StepFailed, match=rf"kept {index} change\(s\) of this run \(--no-rollback\)"):
        apply_steps(run.ctx, run.steps, command=command, journal=run.journal, rollback=False)

    assert [e.title for e in run.fake.journal().of(command)] == [s.title for s in run.steps[:index]]
    kept = run.journal.of(command)
    assert [e.title for e in kept] == [s.title for s in run.steps[:index]]
    if index:
        assert differences(before, run.fake.snapshot(journal=False)) != []
    undone = revert_entries(run.ctx, kept, journal=run.journal)
    assert undone.errors == []
    assert differences(before, run.fake.snapshot(journal=False)) == []
    assert run.fake.journal().of(command) == []


def test_a_failing_plan_stops_the_run_before_its_step(tmp_path: Path) -> None:
    run = scenario(tmp_path, "ipv4.yaml", "minion-1", "prepare")
    (run.fake.root / "tmp/lazyjack/kubeadm.conf").mkdir(parents=True)  # a directory where the file goes
    arranged = run.fake.snapshot(journal=False)
    with pytest.raises(StepFailed, match=r"prepare failed at kubeadm config: cannot read /tmp/lazyjack/kubeadm.conf"):
        apply_steps(run.ctx, run.steps, command="prepare", journal=run.journal)
    assert differences(arranged, run.fake.snapshot(journal=False)) == []
    assert run.fake.journal().entries == []


def test_dry_run_only_plans(tmp_path: Path) -> None:
    run = scenario(tmp_path, "dual-stack.yaml", "master", "prepare")
    before = run.fake.snapshot()
    result = apply_steps(run.ctx, run.steps, command="prepare", journal=run.journal, dry_run=True)
    assert result.changed == [s.title for s in run.steps]
    assert differences(before, run.fake.snapshot()) == []
    text = "\n".join(run.fake.lines)
    assert f"  ~ MTU of eth1: {START_MTU} -> 1400" in text
    assert "+fd00:20::2 master  #[+]" in text  # the diff of /etc/hosts


# --- the journal keeps the first original ---------------------------------------------------------


@pytest.mark.parametrize(("example", "name"), EXAMPLE_ROLES, ids=[role_id(*r) for r in EXAMPLE_ROLES])
def test_reapplied_mtu_keeps_the_original_from_before_lazyjack(example: str, name: str, tmp_path: Path) -> None:
    fake = make_node(tmp_path, example, name)
    initial = fake.snapshot()
    fake.run("prepare")
    assert fake.net.get_mtu("eth1") == 1400
    fake.net.set_mtu("eth1", 9000)  # someone else
    fake.run("prepare")
    assert fake.net.get_mtu("eth1") == 1400
    record = next(e.record for e in fake.journal().entries if e.kind == "mtu")
    assert (record["original"], record["mtu"]) == (START_MTU, 1400)
    fake.run("clean")
    assert fake.net.get_mtu("eth1") == START_MTU
    assert differences(initial, fake.snapshot()) == []


def test_reapplied_sysctl_keeps_the_original_from_before_lazyjack(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    fake.run("prepare")
    fake.sysctl.set("net.ipv4.ip_forward", "0")  # someone else
    fake.run("prepare")
    record = next(e.record for e in fake.journal().entries if e.kind == "sysctl")
    assert record["original"] == "0"
    fake.sysctl.set("net.ipv4.ip_forward", "1")
    fake.run("clean")
    assert fake.sysctl.get("net.ipv4.ip_forward") == "0"


def test_a_failed_rerun_keeps_the_journal_of_the_earlier_run(tmp_path: Path) -> None:
    """Rolling back a step that an earlier run journaled gives the earlier record back, not nothing."""
    fake = make_node(tmp_path, "dual-stack.yaml", "master")
    pristine = fake.read("/etc/hosts")
    ctx = fake.context()
    journal = fake.journal()
    apply_steps(ctx, prepare_steps(ctx), command="prepare", journal=journal)
    # Others change things: MTU, an appended hosts line (lazyjack's lines must come last again), a lost drop-in.
    fake.net.set_mtu("eth1", 9000)
    fake.write("/etc/hosts", (fake.read("/etc/hosts") or "") + "198.51.100.7 printer\n")
    dropin = "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"
    (fake.root / dropin.lstrip("/")).unlink()
    before, journal_before = fake.snapshot(journal=False), entries(fake.journal())

    fail_writes(fake.host.files, dropin)
    with pytest.raises(StepFailed, match="rolled back 2 change"):
        apply_steps(ctx, prepare_steps(ctx), command="prepare", journal=journal)

    assert differences(before, fake.snapshot(journal=False)) == []
    assert entries(fake.journal()) == journal_before
    result = revert_entries(ctx, journal.of("prepare"), journal=journal)
    assert result.errors == []
    assert fake.net.get_mtu("eth1") == START_MTU
    assert fake.read("/etc/hosts") == f"{pristine}198.51.100.7 printer\n"


def test_revert_entries_goes_on_past_failures_and_reports_them_all(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "dual-stack.yaml", "minion")
    initial = fake.snapshot(journal=False)
    ctx = fake.context()
    journal = fake.journal()
    apply_steps(ctx, prepare_steps(ctx), command="prepare", journal=journal)
    journal.entries.insert(0, Entry("prepare", "frobnicator:x", "frobnicator", "a step of a newer lazyjack", {}))
    journal.save()
    fake.net.fail_next("del_address", errno.EPERM)  # the newest address first: 10.192.0.3/16
    fail_writes(fake.host.files, "/etc/hosts")

    result = revert_entries(ctx, journal.of("prepare"), journal=journal)

    assert [e.split(":")[0] for e in result.errors] == [
        "/etc/hosts entries",
        "address 10.192.0.3/16 on eth1",
        "a step of a newer lazyjack",
    ]
    assert "Operation not permitted" in result.errors[1]
    assert "frobnicator" in result.errors[2]
    left = fake.journal().of("prepare")
    assert [e.title for e in left] == ["a step of a newer lazyjack", "address 10.192.0.3/16 on eth1",
                                       "/etc/hosts entries"]
    assert fake.read("/etc/resolv.conf") == initial["files"]["/etc/resolv.conf"][2].decode()
    assert fake.net.get_mtu("eth1") == START_MTU
    # Once the host lets it, the rest goes too (the unknown entry stays for a lazyjack that knows it).
    again = revert_entries(ctx, left, journal=journal)
    assert [e.split(":")[0] for e in again.errors] == ["a step of a newer lazyjack"]
    journal.drop(journal.entries[0])
    assert differences(initial, fake.snapshot(journal=False)) == []


def test_dry_run_revert_changes_nothing(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "minion-1")
    ctx = fake.context()
    journal = fake.journal()
    apply_steps(ctx, prepare_steps(ctx), command="prepare", journal=journal)
    prepared = fake.snapshot()
    result = revert_entries(ctx, journal.of("prepare"), journal=journal, dry_run=True)
    assert "restore MTU 1500 on eth1" in "\n".join(fake.lines)
    assert len(result.changed) == len(prepare_steps(ctx))
    assert differences(prepared, fake.snapshot()) == []


def test_customised_kubeadm_config_kept_aside_then_cleaned_with_everything(tmp_path: Path) -> None:
    """prepare writes kubeadm.conf; the user edits it; prepare again keeps the edit as .bak; clean removes both."""
    fake = make_node(tmp_path, "ipv4.yaml", "minion-1")
    initial = fake.snapshot()
    fake.run("prepare")
    fake.write("/tmp/lazyjack/kubeadm.conf", "# customised\n")
    fake.run("prepare")
    assert "keeping the current file (customised?) as /tmp/lazyjack/kubeadm.conf.bak" in fake.output()
    assert fake.read("/tmp/lazyjack/kubeadm.conf.bak") == "# customised\n"
    record = next(e.record for e in fake.journal().entries if e.kind == "kubeadm-config")
    assert record["original"] is None and record["created_dirs"] == ["/tmp/lazyjack"]
    fake.run("clean")
    assert differences(initial, fake.snapshot()) == []


def test_a_journal_that_cannot_be_written_undoes_the_step_it_records(tmp_path: Path) -> None:
    run = scenario(tmp_path, "dual-stack.yaml", "minion", "prepare")
    before = run.fake.snapshot(journal=False)
    apply_steps(run.ctx, run.steps[:2], command="prepare", journal=run.journal)
    fail_writes(run.fake.host.files, JOURNAL_PATH, code=errno.ENOSPC)
    with pytest.raises(StepFailed, match=r"prepare failed at address 10\.192\.0\.3/16 on eth1: cannot write "
                                         r"/var/lib/lazyjack/journal\.json .*No space left on device; rolled back 1"):
        apply_steps(run.ctx, run.steps, command="prepare", journal=run.journal)
    assert run.fake.net.addresses("eth1") == [run.fake.node.management[0]]
    assert [e.title for e in run.fake.journal().entries] == ["eth1 up", "address fd00:20::3/64 on eth1"]
    revert_entries(run.ctx, run.journal.of("prepare"), journal=run.journal)
    assert differences(before, run.fake.snapshot(journal=False)) == []


def test_every_step_kind_is_known_to_a_fresh_process() -> None:
    """A journal names kinds of modules the command may not have imported (the container runtimes)."""
    import subprocess
    import sys

    script = (
        "from lazyjack.steps.base import step_kind\n"
        "for kind in ('address', 'file', 'kubeadm-init', 'native-server', 'container', 'container-network'):\n"
        "    print(kind, step_kind(kind).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == ["address", "ManagementAddress", "file", "ManagedFile", "kubeadm-init", "KubeadmInit",
                           "native-server", "NativeServer", "container", "SupportContainer",
                           "container-network", "SupportNetwork"]
