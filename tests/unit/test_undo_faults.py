"""A failure at every step of down and clean: the others are still undone, the failed one stays in the
journal with its error reported, and running the command again finishes the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from stepkit import EXAMPLE_ROLES, FakeNode, differences, make_node, role_id

from lazyjack.errors import HostError
from lazyjack.steps import engine
from lazyjack.steps.base import Context, Outcome, Step


@pytest.fixture(autouse=True)
def no_sudo_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)


def _break_one(monkeypatch: pytest.MonkeyPatch, title: str) -> list[str]:
    """Make the revert of the journal entry titled `title` fail once; returns the calls seen."""
    seen: list[str] = []
    real = engine.step_kind

    def broken_kind(kind: str) -> type[Step]:
        cls = real(kind)

        class Once(cls):  # type: ignore[valid-type,misc]
            @classmethod
            def revert(klass, ctx: Context, record: dict[str, Any]) -> Outcome:
                if record.get("summary") == title and title not in seen:
                    seen.append(title)
                    raise HostError(f"injected failure undoing {title}")
                return cls.revert(ctx, record)

        return Once

    monkeypatch.setattr(engine, "step_kind", broken_kind)
    return seen


def _node(base: Path, example: str, name: str) -> FakeNode:
    base.mkdir(parents=True)
    return make_node(base, example, name)


def _titles(fake: FakeNode, command: str) -> list[str]:
    return [e.record.get("summary", e.title) for e in fake.journal().of(command)]


@pytest.mark.parametrize(("example", "name"), EXAMPLE_ROLES, ids=[role_id(*r) for r in EXAMPLE_ROLES])
def test_failure_at_every_step_of_clean(example: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _node(tmp_path / "probe", example, name)
    probe.run("prepare")
    titles = _titles(probe, "prepare")
    assert titles, "prepare journaled nothing"
    for index, title in enumerate(titles):
        fake = _node(tmp_path / f"n{index}", example, name)
        initial = fake.snapshot()
        fake.run("prepare")
        with monkeypatch.context() as patch:
            seen = _break_one(patch, title)
            with pytest.raises(HostError, match="injected failure") as failure:
                fake.run("clean")
            assert seen == [title]
            assert "1 error" in str(failure.value)
        assert [e.record.get("summary") for e in fake.journal().of("prepare")] == [title]
        fake.run("clean")
        assert differences(initial, fake.snapshot()) == [], title


@pytest.mark.parametrize(("example", "name"), EXAMPLE_ROLES, ids=[role_id(*r) for r in EXAMPLE_ROLES])
def test_failure_at_every_step_of_down(example: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _node(tmp_path / "probe", example, name)
    probe.run("prepare")
    probe.run("up")
    titles = _titles(probe, "up")
    assert titles, "up journaled nothing"
    for index, title in enumerate(titles):
        fake = _node(tmp_path / f"n{index}", example, name)
        fake.run("prepare")
        prepared = fake.snapshot()
        fake.run("up")
        with monkeypatch.context() as patch:
            seen = _break_one(patch, title)
            with pytest.raises(HostError, match="injected failure"):
                fake.run("down")
            assert seen == [title]
        assert [e.record.get("summary") for e in fake.journal().of("up")] == [title]
        fake.run("down")
        assert differences(prepared, fake.snapshot()) == [], title


def test_a_second_clean_keeps_what_the_admin_had(tmp_path: Path) -> None:
    """The management address was there before lazyjack: neither clean may take it away."""
    from ipaddress import ip_interface

    fake = _node(tmp_path / "n", "ipv4.yaml", "master")
    fake.net.link_up("eth1")
    fake.net.add_address("eth1", ip_interface("10.192.0.2/16"))
    initial = fake.snapshot()
    fake.run("prepare")
    fake.run("clean")
    assert differences(initial, fake.snapshot()) == []
    fake.run("clean")
    assert "no trace of lazyjack" in "\n".join(fake.lines)
    assert differences(initial, fake.snapshot()) == []


def test_routes_and_rules_of_a_later_run_are_undone_too() -> None:
    from lazyjack.steps.network import Routes
    from lazyjack.steps.support import Masquerade, PrefixForward

    first = {"routes": [{"destination": "10.244.3.0/24", "gateway": "10.192.0.3", "device": "eth1"}], "summary": "r"}
    later = {"routes": [{"destination": "10.244.5.0/24", "gateway": "10.192.0.5", "device": "eth1"}], "summary": "r"}
    assert Routes.merge(first, later)["routes"] == first["routes"] + later["routes"]
    assert Routes.merge(first, first)["routes"] == first["routes"]
    rules_a = {"rules": [["iptables", "-t", "nat", "POSTROUTING", "-o", "eth0"]]}
    rules_b = {"rules": [["iptables", "-t", "nat", "POSTROUTING", "-o", "eth9"]]}
    for step in (Masquerade, PrefixForward):
        assert step.merge(rules_a, rules_b)["rules"] == rules_a["rules"] + rules_b["rules"]


def test_a_hosts_file_that_is_not_utf8_comes_back_byte_for_byte(tmp_path: Path) -> None:
    fake = _node(tmp_path / "n", "ipv4.yaml", "master")
    original = b"127.0.0.1\tlocalhost\n# caf\xe9 (Latin-1)\n127.0.1.1\tmaster\n"
    fake.write("/etc/hosts", original)
    fake.run("prepare")
    prepared = (fake.root / "etc/hosts").read_bytes()
    assert b"# caf\xe9 (Latin-1)" in prepared and b"#[+]" in prepared
    fake.run("clean")
    assert (fake.root / "etc/hosts").read_bytes() == original


def test_a_journal_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    fake = _node(tmp_path / "n", "ipv4.yaml", "master")
    fake.write("/var/lib/lazyjack/journal.json", "[]\n")
    with pytest.raises(HostError, match=r"is damaged: \(the whole file\): Input should be an object"):
        fake.run("clean")


def test_a_second_down_does_not_reach_beyond_the_journal(tmp_path: Path) -> None:
    fake = _node(tmp_path / "n", "ipv4.yaml", "master")
    fake.run("prepare")
    fake.run("up")
    fake.run("down")
    calls = len(fake.runner.kube_calls())
    fake.write("/etc/kubernetes/kubelet.conf", "joined by hand\n")  # the admin's own kubeadm join
    fake.run("down")
    assert len(fake.runner.kube_calls()) == calls  # no kubeadm reset of the admin's node
    assert fake.read("/etc/kubernetes/kubelet.conf") == "joined by hand\n"
