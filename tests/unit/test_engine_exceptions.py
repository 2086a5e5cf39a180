"""Exceptions that are not lazyjack's own (a ValueError from a renderer, a KeyError or TypeError from a
malformed record, an OverflowError) still roll a run back: injected through the host at every step of
prepare, up, down and clean, the node ends as the run found it, and the failure names the step, the
exception's type and message.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from stepkit import EXAMPLE_ROLES, FakeNode, differences, make_node, role_id
from test_engine import entries, scenario

from lazyjack.steps.base import Step
from lazyjack.steps.engine import StepFailed, apply_steps, revert_entries
from lazyjack.steps.files import ManagedFile, MarkedEdit, Symlink
from lazyjack.steps.kube import ADMIN_CONF, KubeadmInit, KubeadmJoin, KubeletRestart, UserKubeconfig
from lazyjack.steps.network import LinkMtu, LinkUp, ManagementAddress, Routes, Sysctl

EXCEPTIONS: list[BaseException] = [
    ValueError("tayga.conf cannot hold this value"),
    KeyError("original"),
    TypeError("unsupported operand type(s)"),
    OverflowError("timeout value is too large"),
]


def raise_on(obj: object, method: str, exc: BaseException, *, when: Callable[..., bool] = lambda *a, **k: True,
             after: int = 0) -> None:
    """Make `obj.method` raise `exc` at the (after+1)-th call that `when` accepts (this instance only)."""
    real = getattr(obj, method)
    seen = [0]

    def patched(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            seen[0] += 1
            if seen[0] == after + 1:
                raise exc
        return real(*args, **kwargs)

    setattr(obj, method, patched)


def inject_exception(fake: FakeNode, steps: list[Step], index: int, exc: BaseException) -> None:
    """steps[index] meets `exc` from the host while it acts, after the steps before it changed the host."""
    step, earlier = steps[index], steps[:index]
    if isinstance(step, LinkUp):
        raise_on(fake.net, "link_up", exc)
    elif isinstance(step, ManagementAddress):
        raise_on(fake.net, "add_address", exc, after=sum(isinstance(s, ManagementAddress) for s in earlier))
    elif isinstance(step, LinkMtu):
        raise_on(fake.net, "set_mtu", exc)
    elif isinstance(step, Sysctl):
        raise_on(fake.sysctl, "set", exc, when=lambda name, value: name == step.name)
    elif isinstance(step, Routes):
        # At the step's last route: the ones it added before must go too.
        raise_on(fake.net, "add_route", exc, after=sum(len(s.routes) for s in earlier if isinstance(s, Routes))
                 + len(step.routes) - 1)
    elif isinstance(step, ManagedFile | MarkedEdit):
        secret = isinstance(step, ManagedFile) and step.secret
        raise_on(fake.host.files, "write_secret" if secret else "write_atomic", exc,
                 when=lambda path, *a, **k: str(path) == step.path)
    elif isinstance(step, Symlink):
        raise_on(fake.host.files, "symlink", exc, when=lambda path, *a, **k: str(path) == step.path)
    elif isinstance(step, UserKubeconfig):
        # apply reads admin.conf after plan did: the second read meets the exception.
        raise_on(fake.host.files, "read_bytes", exc, when=lambda path, *a, **k: str(path) == ADMIN_CONF, after=1)
    elif isinstance(step, KubeletRestart):
        raise_on(fake.runner, "run", exc, when=lambda argv, **k: argv[:2] == ["systemctl", "restart"])
    elif isinstance(step, KubeadmInit):  # and KubeadmJoin
        verb = "join" if isinstance(step, KubeadmJoin) else "init"
        raise_on(fake.runner, "run", exc, when=lambda argv, **k: argv[:2] == ["kubeadm", verb])
    else:
        raise AssertionError(f"no exception to inject into {type(step).__name__}: add one")


def _points() -> list[Any]:
    points = []
    for example, name in EXAMPLE_ROLES:
        for command in ("prepare", "up"):
            with tempfile.TemporaryDirectory() as tmp:
                titles = [s.title for s in scenario(Path(tmp), example, name, command).steps]
            for index, title in enumerate(titles):
                exc = EXCEPTIONS[index % len(EXCEPTIONS)]
                ident = f"{role_id(example, name)}-{command}-{index}-{title.replace(' ', '_')}-{type(exc).__name__}"
                points.append(pytest.param(example, name, command, index, exc, id=ident))
    return points


@pytest.mark.parametrize(("example", "name", "command", "index", "exc"), _points())
def test_any_exception_at_any_step_rolls_the_run_back(
    example: str, name: str, command: str, index: int, exc: BaseException, tmp_path: Path
) -> None:
    run = scenario(tmp_path, example, name, command)
    before, journal_before = run.fake.snapshot(journal=False), entries(run.fake.journal())
    failing = run.steps[index]
    inject_exception(run.fake, run.steps, index, exc)

    with pytest.raises(StepFailed) as caught:
        apply_steps(run.ctx, run.steps, command=command, journal=run.journal)

    message = str(caught.value)
    what = f"{type(exc).__name__}: {exc}"
    assert message.startswith(f"{command} failed at {failing.title}: {what}"), message
    assert message.endswith(f"rolled back {index} change(s) of this run" if index else "nothing to roll back")
    assert caught.value.__cause__ is exc
    assert differences(before, run.fake.snapshot(journal=False)) == []
    assert entries(run.fake.journal()) == journal_before
    assert f"  ✗ {failing.title}: {what}" in "\n".join(run.fake.lines)


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_every_exception_type_at_every_step_of_one_node(exc: BaseException, tmp_path: Path) -> None:
    """The full product on one node (every type at every step of up on the IPv6 master)."""
    def fresh(tag: str) -> Any:
        (tmp_path / tag).mkdir()
        return scenario(tmp_path / tag, "ipv6.yaml", "my-master", "up")

    titles = [s.title for s in fresh("probe").steps]
    for index in range(len(titles)):
        run = fresh(str(index))
        before = run.fake.snapshot(journal=False)
        inject_exception(run.fake, run.steps, index, exc)
        with pytest.raises(StepFailed, match=type(exc).__name__):
            apply_steps(run.ctx, run.steps, command="up", journal=run.journal)
        assert differences(before, run.fake.snapshot(journal=False)) == [], titles[index]


@pytest.mark.parametrize(("example", "name"), EXAMPLE_ROLES, ids=[role_id(*r) for r in EXAMPLE_ROLES])
def test_an_exception_while_undoing_is_reported_and_the_rest_undone(example: str, name: str, tmp_path: Path) -> None:
    """clean meets a TypeError at one entry: that entry stays journaled and is named; every other is undone."""
    fake = make_node(tmp_path, example, name)
    initial = fake.snapshot(journal=False)
    fake.run("prepare")
    raise_on(fake.net, "set_mtu", TypeError("bad record"))
    journal = fake.journal()
    result = revert_entries(fake.context(), journal.of("prepare"), journal=journal)
    assert result.errors == ["MTU of eth1: TypeError: bad record"]
    assert [e.kind for e in fake.journal().entries] == ["mtu"]
    fake.run("clean")
    assert differences(initial, fake.snapshot(journal=False)) == []


def test_an_exception_while_planning_stops_the_command_before_any_change(tmp_path: Path) -> None:
    from lazyjack.errors import PreflightError

    fake = make_node(tmp_path, "dual-stack.yaml", "master")
    before = fake.snapshot()
    raise_on(fake.net, "get_mtu", OverflowError("int too large to convert"))
    with pytest.raises(PreflightError, match=r"  - MTU of eth1: OverflowError: int too large to convert"):
        fake.run("prepare")
    assert differences(before, fake.snapshot()) == []
