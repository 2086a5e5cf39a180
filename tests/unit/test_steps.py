"""Every step, alone on a fake node: plan says what changes, a second plan says why nothing is needed,
revert with the journaled record gives back the exact state, and a second revert is a no-op.

The steps are the ones prepare_steps and up_steps build from the packaged examples, so what is
tested is what the commands run.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from stepkit import (
    HOSTS,
    RESOLV,
    START_MTU,
    FakeNode,
    current_user,
    differences,
    make_node,
    user_files,
)

from lazyjack.commands.node import prepare_steps, up_steps
from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Step
from lazyjack.steps.kube import ADMIN_CONF, KUBELET_CONF, KubeadmInit, KubeletRestart, kubeadm_conf_path
from lazyjack.steps.network import DeleteLink, Routes

# --- arranging the state a step needs ----------------------------------------------------------


def link_ready(fake: FakeNode) -> None:
    """eth1 up with the node's management addresses, as prepare leaves it."""
    fake.net.link_up("eth1")
    for address in fake.node.management:
        fake.net.add_address("eth1", address, nodad=True)


def step_titled(steps: list[Step], title: str) -> Step:
    found = [s for s in steps if s.title == title]
    assert len(found) == 1, f"no single step {title!r} in {[s.title for s in steps]}"
    return found[0]


def nothing(fake: FakeNode) -> None:
    return None


def prepare_step(title: str, *, before: Callable[[FakeNode], None] = nothing) -> Callable[[FakeNode, Context], Step]:
    def make(fake: FakeNode, ctx: Context) -> Step:
        before(fake)
        return step_titled(prepare_steps(ctx), title)

    return make


def up_step(title: str, *, before: Callable[[FakeNode], None] = link_ready) -> Callable[[FakeNode, Context], Step]:
    def make(fake: FakeNode, ctx: Context) -> Step:
        before(fake)
        return step_titled(up_steps(ctx), title)

    return make


def with_file(path: str, text: str, then: Callable[[FakeNode, Context], Step]) -> Callable[[FakeNode, Context], Step]:
    def make(fake: FakeNode, ctx: Context) -> Step:
        fake.write(path, text)
        return then(fake, ctx)

    return make


def without_file(path: str, then: Callable[[FakeNode, Context], Step]) -> Callable[[FakeNode, Context], Step]:
    def make(fake: FakeNode, ctx: Context) -> Step:
        (fake.root / path.lstrip("/")).unlink()
        return then(fake, ctx)

    return make


def kubeadm_ready(fake: FakeNode) -> None:
    """After prepare: the kubeadm config is in the work area."""
    link_ready(fake)
    fake.write(kubeadm_conf_path(fake.context()), "kind: InitConfiguration\n")


def certs_ready(fake: FakeNode) -> None:
    link_ready(fake)
    fake.add_certs()


def user_kubeconfig(*, existing: str | None) -> Callable[[FakeNode, Context], Step]:
    """After kubeadm init: admin.conf exists; the user may already have a kubeconfig of their own."""

    def make(fake: FakeNode, ctx: Context) -> Step:
        fake.write(ADMIN_CONF, "apiVersion: v1\nkind: Config\n# admin\n")
        fake.write(kubeadm_conf_path(ctx), "kind: InitConfiguration\n")
        fake.write("/etc/kubernetes/manifests/kube-apiserver.yaml", "kind: Pod\n")
        if existing is not None:
            user_files(fake).write(".kube/config", existing.encode())  # the user's own, written by them
        user_ctx = fake.context(invoking_user=current_user())
        return step_titled(up_steps(user_ctx), f"kubeconfig of {current_user()}")

    return make


# --- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepCase:
    """A step on a fresh node: a fragment of plan's change, and of the no-op reasons after apply and revert."""

    id: str
    make: Callable[[FakeNode, Context], Step]
    change: str
    applied: str
    reverted: str
    example: str = "dual-stack.yaml"
    node: str = "master"


DROPIN = "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"
KUBEADM_CONF = "/tmp/lazyjack/kubeadm.conf"
CONFLIST = "/etc/cni/net.d/00-lazyjack.conflist"
KUBEADM_DROPIN = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"  # the kubeadm package's

CASES = [
    StepCase(
        "restore-unit-link",
        prepare_step("restore unit enabled"),
        "link /etc/systemd/system/multi-user.target.wants/lazyjack-restore.service -> "
        "/etc/systemd/system/lazyjack-restore.service",
        "lazyjack-restore.service -> /etc/systemd/system/lazyjack-restore.service exists",
        "lazyjack-restore.service is gone",
    ),
    StepCase("link-up", prepare_step("eth1 up"), "set eth1 up", "eth1 is already up", "eth1 is already down or gone"),
    StepCase(
        "address-ipv6",
        prepare_step("address fd00:20::2/64 on eth1"),
        "add fd00:20::2/64 to eth1",
        "fd00:20::2/64 already on eth1",
        "fd00:20::2/64 is not on eth1",
    ),
    StepCase(
        "address-ipv4",
        prepare_step("address 10.192.0.3/16 on eth1"),
        "add 10.192.0.3/16 to eth1",
        "10.192.0.3/16 already on eth1",
        "10.192.0.3/16 is not on eth1",
        node="minion",
    ),
    StepCase(
        "mtu",
        prepare_step("MTU of eth1"),
        f"{START_MTU} -> 1400",
        "already 1400",
        f"already {START_MTU}",
    ),
    StepCase(
        "sysctl-ipv4-forwarding",
        prepare_step("sysctl net.ipv4.ip_forward"),
        "0 -> 1",
        "already 1",
        "already 0",
        example="ipv4.yaml",
    ),
    StepCase(
        "sysctl-ipv6-forwarding",
        prepare_step("sysctl net.ipv6.conf.all.forwarding"),
        "0 -> 1",
        "already 1",
        "already 0",
        example="ipv6.yaml",
        node="my-master",
    ),
    StepCase(
        "hosts-entries",
        prepare_step("/etc/hosts entries"),
        "edit /etc/hosts",
        "/etc/hosts already has the entries",
        "/etc/hosts has no lazyjack lines",
    ),
    StepCase(
        "resolv-nameserver",
        prepare_step("/etc/resolv.conf nameserver"),
        "edit /etc/resolv.conf",
        "/etc/resolv.conf already has the entries",
        "/etc/resolv.conf has no lazyjack lines",
        example="ipv6.yaml",
        node="a-minion",
    ),
    StepCase(
        "resolv-nameserver-no-file",
        without_file("/etc/resolv.conf", prepare_step("/etc/resolv.conf nameserver")),
        "edit /etc/resolv.conf",
        "/etc/resolv.conf already has the entries",
        "/etc/resolv.conf has no lazyjack lines",
    ),
    StepCase(
        "resolv-nameserver-has-bak",
        with_file("/etc/resolv.conf.bak", "nameserver 198.51.100.99\n", prepare_step("/etc/resolv.conf nameserver")),
        "edit /etc/resolv.conf",
        "/etc/resolv.conf already has the entries",
        "/etc/resolv.conf has no lazyjack lines",
        example="ipv4.yaml",
        node="minion-1",
    ),
    StepCase(
        "kubelet-dropin",
        prepare_step("kubelet drop-in"),
        f"write {DROPIN}",
        f"{DROPIN} is up to date",
        f"{DROPIN} already as before",
    ),
    StepCase(
        "kubelet-dropin-replaced",
        with_file(DROPIN, "[Service]\nEnvironment=OLD=1\n", prepare_step("kubelet drop-in")),
        f"update {DROPIN}",
        f"{DROPIN} is up to date",
        f"{DROPIN} already as before",
        example="ipv4.yaml",
    ),
    StepCase(
        "kubeadm-config",
        prepare_step("kubeadm config"),
        f"write {KUBEADM_CONF}",
        f"{KUBEADM_CONF} is up to date",
        f"{KUBEADM_CONF} already as before",
        node="minion",
    ),
    StepCase(
        "kubeadm-config-customised",
        with_file(KUBEADM_CONF, "# customised by hand\n", prepare_step("kubeadm config")),
        f"keeping the current file (customised?) as {KUBEADM_CONF}.bak",
        f"{KUBEADM_CONF} is up to date",
        f"{KUBEADM_CONF} already as before",
        example="ipv6.yaml",
        node="my-master",
    ),
    StepCase(
        "support-routes",
        prepare_step("routes to the DNS64 prefix and support network", before=link_ready),
        "add fd00:10:64:ff9b::/96 via fd00:20::4 dev eth1",
        "all 2 present",
        "already absent",
        example="ipv6.yaml",
        node="a-minion",
    ),
    StepCase(
        "pod-routes-dual-stack",
        up_step("routes to other nodes' pod subnets"),
        "add fd00:40:0:0:3::/80 via fd00:20::3 dev eth1",
        "all 2 present",
        "already absent",
    ),
    StepCase(
        "pod-route-single",
        up_step("routes to other nodes' pod subnets"),
        "add fd00:40:0:0:2::/80 via fd00:20::2 dev eth1",
        "fd00:40:0:0:2::/80 via fd00:20::2 dev eth1 already present",
        "already absent",
        example="ipv6.yaml",
        node="a-minion",
    ),
    StepCase(
        "cni-config",
        up_step("CNI config"),
        f"write {CONFLIST}",
        f"{CONFLIST} is up to date",
        f"{CONFLIST} already as before",
        example="ipv4.yaml",
        node="minion-1",
    ),
    StepCase(
        "ca-file",
        up_step("CA file ca.key", before=certs_ready),
        "write /etc/kubernetes/pki/ca.key",
        "/etc/kubernetes/pki/ca.key is up to date",
        "/etc/kubernetes/pki/ca.key already as before",
    ),
    StepCase(
        "kubeadm-init",
        up_step("kubeadm init", before=kubeadm_ready),
        "kubeadm init --config",
        "the control plane exists (/etc/kubernetes/manifests/kube-apiserver.yaml)",
        "kubeadm left nothing to reset",
        example="ipv6.yaml",
        node="my-master",
    ),
    StepCase(
        "kubeadm-join",
        up_step("kubeadm join", before=kubeadm_ready),
        "kubeadm join --config",
        f"this node has joined ({KUBELET_CONF})",
        "kubeadm left nothing to reset",
        node="minion",
    ),
    StepCase(
        "user-kubeconfig",
        user_kubeconfig(existing=None),
        f"copy {ADMIN_CONF} to",
        "/.kube/config is up to date",
        "already removed",
        example="ipv4.yaml",
    ),
    StepCase(
        "user-kubeconfig-replaced",
        user_kubeconfig(existing="apiVersion: v1\nkind: Config\n# the user's own\n"),
        f"copy {ADMIN_CONF} to",
        "/.kube/config is up to date",
        "/.kube/config already as before",
    ),
]


def roundtrip(record: dict[str, object]) -> dict[str, object]:
    """The record as the journal gives it back: through JSON."""
    text = json.dumps(record)
    back = json.loads(text)
    assert back == record, "the record does not survive JSON unchanged"
    return back  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_apply_twice_revert_twice(case: StepCase, tmp_path: Path) -> None:
    fake = make_node(tmp_path, case.example, case.node)
    ctx = fake.context()
    step = case.make(fake, ctx)
    before = fake.snapshot()

    planned = step.plan(ctx)
    assert planned.needed and any(case.change in c for c in planned.changes), planned
    assert differences(before, fake.snapshot()) == [], "plan changed the host"

    record = roundtrip(step.apply(ctx))
    applied = fake.snapshot()
    assert applied != before, "apply changed nothing"

    again = step.plan(ctx)
    assert not again.needed, again
    assert case.applied in again.reason

    undone = step.revert(ctx, record)
    assert undone.needed, undone
    assert differences(before, fake.snapshot()) == []

    twice = step.revert(ctx, record)
    assert not twice.needed, twice
    assert case.reverted in twice.reason
    assert differences(before, fake.snapshot()) == []


#: The modules whose steps this file covers (the DNS64/NAT64 steps need namespaces and daemons).
STEP_MODULES = ("lazyjack.steps.network", "lazyjack.steps.files", "lazyjack.steps.kube")


def step_kinds() -> set[str]:
    kinds: set[str] = set()
    todo: list[type[Step]] = [Step]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.kind and cls.__module__ in STEP_MODULES:
            kinds.add(cls.kind)
    return kinds


def test_every_step_kind_has_an_apply_twice_revert_twice_case(tmp_path: Path) -> None:
    covered = {"kubelet-restart", "delete-link"}  # their own tests below: there is nothing to restore
    for case in CASES:
        (tmp_path / case.id).mkdir()
        fake = make_node(tmp_path / case.id, case.example, case.node)
        covered.add(case.make(fake, fake.context()).kind)
    assert step_kinds() - covered == set()


# --- steps with nothing to restore --------------------------------------------------------------


def test_kubelet_restart_runs_systemctl_and_is_not_undone(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "minion-1")
    ctx = fake.context()
    step = KubeletRestart()
    before = fake.snapshot()
    assert step.plan(ctx).changes == ("systemctl daemon-reload", "systemctl restart kubelet")
    record = roundtrip(step.apply(ctx))
    assert fake.runner.kube_calls() == [["systemctl", "daemon-reload"], ["systemctl", "restart", "kubelet"]]
    for _ in range(2):
        undone = KubeletRestart.revert(ctx, record)
        assert not undone.needed and undone.reason == "a restart is not undone"
    assert differences(before, fake.snapshot()) == []
    assert len(fake.runner.kube_calls()) == 2
    # Once kubeadm has configured kubelet, a later up does not restart it again.
    fake.write(KUBELET_CONF, "written by kubeadm join\n")
    again = step.plan(ctx)
    assert not again.needed and again.reason == (
        f"kubelet already runs with kubeadm's configuration ({KUBELET_CONF})"
    )


def test_delete_link_deletes_once_and_leaves_recreation_to_cni(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv6.yaml", "a-minion")
    fake.net.add_link("br0")
    ctx = fake.context()
    step = DeleteLink("br0")
    assert step.plan(ctx).changes == ("delete br0",)
    record = roundtrip(step.apply(ctx))
    assert not fake.net.link_exists("br0")
    gone = fake.snapshot()
    again = step.plan(ctx)
    assert not again.needed and again.reason == "br0 does not exist"
    for _ in range(2):
        undone = DeleteLink.revert(ctx, record)
        assert not undone.needed and "re-created by the CNI plugin" in undone.reason
    assert differences(gone, fake.snapshot()) == []


def test_routes_with_nothing_to_route_is_a_noop(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    outcome = Routes("nobody", []).plan(fake.context())
    assert not outcome.needed and outcome.reason == "none needed"


def test_routes_refuse_a_route_to_the_same_place_via_another_gateway(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv6.yaml", "a-minion")
    link_ready(fake)
    fake.net.add_route(ip_network("fd00:10::/64"), ip_address("fd00:20::99"), dev="eth1")
    step = step_titled(prepare_steps(fake.context()), "routes to the DNS64 prefix and support network")
    with pytest.raises(HostError, match=r"fd00:10::/64 via fd00:20::99 .* needs it via fd00:20::4"):
        step.plan(fake.context())


def test_routes_apply_failing_half_way_leaves_no_route(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    link_ready(fake)
    step = step_titled(up_steps(fake.context()), "routes to other nodes' pod subnets")
    before = fake.snapshot()
    fake.net.fail_next("add_route", errno.EPERM, after=1)
    with pytest.raises(HostError, match=r"add route 10\.244\.4\.0/24 .*Operation not permitted"):
        step.apply(fake.context())
    assert differences(before, fake.snapshot()) == []


def test_routes_revert_keeps_routes_it_did_not_add(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "dual-stack.yaml", "minion")
    link_ready(fake)
    fake.net.add_route(ip_network("10.244.2.0/24"), ip_address("10.192.0.2"), dev="eth1")
    step = step_titled(up_steps(fake.context()), "routes to other nodes' pod subnets")
    assert step.plan(fake.context()).changes == ("add fd00:40:0:0:2::/80 via fd00:20::2 dev eth1",)
    record = roundtrip(step.apply(fake.context()))
    assert [r["destination"] for r in record["routes"]] == ["fd00:40:0:0:2::/80"]  # type: ignore[index]
    assert Routes.revert(fake.context(), record).changes == ("removed 1 route(s)",)
    assert fake.net.route(ip_network("10.244.2.0/24")) is not None


# --- undo without a record (clean of a node prepared by lazyjack 1.x) ---------------------------


@dataclass(frozen=True)
class RemoveCase:
    """A step whose state is there without a journal: remove takes it away, a second remove says why not."""

    id: str
    make: Callable[[FakeNode, Context], Step]
    removed: str
    gone: str
    example: str = "dual-stack.yaml"
    node: str = "master"


REMOVE_CASES = [
    RemoveCase("address", prepare_step("address 10.192.0.2/16 on eth1"), "removed 10.192.0.2/16 from eth1",
               "10.192.0.2/16 is not on eth1"),
    RemoveCase("hosts-entries", prepare_step("/etc/hosts entries"), "removed lazyjack's lines from /etc/hosts",
               "/etc/hosts has no lazyjack lines"),
    RemoveCase("kubelet-dropin", with_file(KUBEADM_DROPIN, "[Service]\n", prepare_step("kubelet drop-in")),
               f"removed {DROPIN}", f"{DROPIN} does not exist"),
    RemoveCase("support-routes", prepare_step("routes to the DNS64 prefix and support network", before=link_ready),
               "removed 2 route(s)", "already absent", example="ipv6.yaml", node="a-minion"),
    RemoveCase("kubeadm-init", up_step("kubeadm init", before=kubeadm_ready), "kubeadm reset -f",
               "kubeadm left nothing to reset", example="ipv4.yaml"),
]


@pytest.mark.parametrize("case", REMOVE_CASES, ids=[c.id for c in REMOVE_CASES])
def test_remove_twice_without_a_record(case: RemoveCase, tmp_path: Path) -> None:
    fake = make_node(tmp_path, case.example, case.node)
    ctx = fake.context()
    step = case.make(fake, ctx)
    before = fake.snapshot()
    step.apply(ctx)  # the state 1.x left; the journal record is thrown away
    (fake.root / "etc/hosts.bak").unlink(missing_ok=True)  # nor did 1.x keep a backup
    planned = step.plan_remove(ctx)
    assert planned.needed, planned
    removed = step.remove(ctx)
    assert any(case.removed in c for c in removed.changes), removed
    assert differences(before, fake.snapshot()) == []
    for outcome in (step.plan_remove(ctx), step.remove(ctx)):
        assert not outcome.needed and case.gone in outcome.reason, outcome


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        ("MTU of eth1", "the original MTU is unknown without a journal; left as it is"),
        ("sysctl net.ipv4.ip_forward", "the original value is unknown without a journal; left as it is"),
        ("eth1 up", "nothing recorded to undo"),
    ],
    ids=["mtu", "sysctl", "link-up"],
)
def test_remove_leaves_what_only_a_record_can_restore(title: str, reason: str, tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "minion-1")
    ctx = fake.context()
    step = step_titled(prepare_steps(ctx), title)
    step.apply(ctx)
    applied = fake.snapshot()
    planned = step.plan_remove(ctx)
    assert not planned.needed and planned.reason == reason
    assert not step.remove(ctx).needed
    assert differences(applied, fake.snapshot()) == []


# --- edits made by others between apply and revert --------------------------------------------


def test_marked_edit_revert_keeps_later_edits_and_drops_only_our_lines(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    ctx = fake.context()
    step = step_titled(prepare_steps(ctx), "/etc/hosts entries")
    record = roundtrip(step.apply(ctx))
    edited = (fake.read("/etc/hosts") or "") + "198.51.100.7 printer\n"
    fake.write("/etc/hosts", edited)
    undone = step.revert(ctx, record)
    assert "it was edited since; other edits kept" in undone.changes[0]
    assert fake.read("/etc/hosts") == HOSTS.format(name="master") + "198.51.100.7 printer\n"
    assert fake.read("/etc/hosts.bak") is None


def test_managed_file_revert_removes_a_file_edited_after_writing_and_says_so(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    ctx = fake.context()
    step = step_titled(prepare_steps(ctx), "kubelet drop-in")
    before = fake.snapshot()
    record = roundtrip(step.apply(ctx))
    fake.write(DROPIN, "[Service]\n# edited\n")
    undone = step.revert(ctx, record)
    assert f"removed {DROPIN} (it was edited after lazyjack wrote it)" in undone.changes
    assert differences(before, fake.snapshot()) == []


def test_resolv_edit_round_trips_byte_for_byte(tmp_path: Path) -> None:
    fake = make_node(tmp_path, "dual-stack.yaml", "minion")
    ctx = fake.context()
    step = step_titled(prepare_steps(ctx), "/etc/resolv.conf nameserver")
    record = roundtrip(step.apply(ctx))
    assert fake.read("/etc/resolv.conf") == "search example.test\nnameserver fd00:20::3  #[+]\nnameserver 198.51.100.53\n"
    assert fake.read("/etc/resolv.conf.bak") == RESOLV
    assert step.revert(ctx, record).changes == (
        "restored /etc/resolv.conf byte for byte",
        "removed /etc/resolv.conf.bak",
    )
    assert fake.read("/etc/resolv.conf") == RESOLV


def test_kubeadm_init_revert_resets_while_kubeadm_state_is_left(tmp_path: Path) -> None:
    """A reset is only skipped when kubeadm left none of its files; a partial init is still reset."""
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    fake.write(ADMIN_CONF, "half an init\n")
    outcome = KubeadmInit.revert(fake.context(), {"summary": "kubeadm init"})
    assert outcome.changes == ("kubeadm reset -f",)
    assert fake.runner.kube_calls() == [["kubeadm", "reset", "-f"]]
    assert fake.read(ADMIN_CONF) is None
