"""Damaged state files: a journal or a lab state of the wrong shape is a clear error naming the file (exit 1),
found when it is read, before anything changes; never a KeyError or TypeError from deep inside a command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stepkit import FakeNode, differences, make_node

from lazyjack.errors import HostError, LazyjackError
from lazyjack.lab import LabError, Tools
from lazyjack.lab.commands import lab_down
from lazyjack.lab.state import STATE_FILE, LabState
from lazyjack.lab.status import lab_status
from lazyjack.steps.journal import JOURNAL_PATH, Journal

# --- the journal ---------------------------------------------------------------------------------------

ADDRESS = {"command": "prepare", "key": "address:address 10.192.0.2/16 on eth1", "kind": "address",
           "title": "address 10.192.0.2/16 on eth1", "record": {"interface": "eth1", "address": "10.192.0.2/16",
                                                                 "summary": "address 10.192.0.2/16 on eth1"},
           "time": 1.0}


def _journal(*entries: Any, **top: Any) -> dict[str, Any]:
    return {"format": 1, "host": "master", "entries": list(entries), **top}


def _with(entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**entry, **changes}


def _record(entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**entry, "record": {**entry["record"], **changes}}


DAMAGED_JOURNALS = [
    pytest.param({"format": 1, "host": "master", "entries": {}}, "entries", id="entries-a-mapping"),
    pytest.param(_journal("address"), "entries.0", id="entry-a-string"),
    pytest.param(_journal({k: v for k, v in ADDRESS.items() if k != "key"}), "entries.0.key", id="entry-without-key"),
    pytest.param(_journal(_with(ADDRESS, command="frobnicate")), "entries.0.command", id="unknown-command"),
    pytest.param(_journal(_with(ADDRESS, record=["eth1"])), "entries.0.record", id="record-a-list"),
    pytest.param(_journal(_with(ADDRESS, time="yesterday")), "entries.0.time", id="time-text"),
    pytest.param(_journal(_record(ADDRESS, address=None)), "entries.0.record.address", id="record-field-null"),
    pytest.param(_journal(_record(ADDRESS, address="10.192.0.256/16")), "entries.0.record.address",
                 id="record-field-not-an-address"),
    pytest.param(_journal({**ADDRESS, "record": {"address": "10.192.0.2/16"}}), "entries.0.record.interface",
                 id="record-field-missing"),
    pytest.param(_journal(ADDRESS, {"command": "prepare", "key": "mtu:MTU of eth1", "kind": "mtu",
                                    "title": "MTU of eth1", "record": {"interface": "eth1", "original": "1500",
                                                                       "mtu": 1400}}),
                 "entries.1.record.original", id="mtu-original-text"),
    pytest.param(_journal({"command": "up", "key": "routes:r", "kind": "routes", "title": "r",
                           "record": {"routes": [{"destination": "10.244.3.0/24", "gateway": "nowhere"}]}}),
                 "entries.0.record.routes.0.gateway", id="route-gateway-not-an-address"),
    pytest.param(_journal({"command": "prepare", "key": "file:f", "kind": "file", "title": "f",
                           "record": {"path": "/etc/x", "original": "%%%", "written": "ab"}}),
                 "entries.0.record.original", id="file-original-not-base64"),
    pytest.param(_journal({"command": "prepare", "key": "masquerade:m", "kind": "masquerade", "title": "m",
                           "record": {"rules": [["iptables", 5]]}}),
                 "entries.0.record.rules.0.1", id="rule-not-text"),
    pytest.param({"format": 2, "host": "master", "entries": []}, "format", id="other-format"),
    pytest.param([ADDRESS], "", id="a-list"),
]


def _prepared(tmp_path: Path) -> FakeNode:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    fake.run("prepare")
    return fake


@pytest.mark.parametrize(("data", "field"), DAMAGED_JOURNALS)
@pytest.mark.parametrize("command", ["clean", "down", "prepare", "up"])
def test_a_damaged_journal_is_named_and_nothing_changes(
    data: Any, field: str, command: str, tmp_path: Path
) -> None:
    fake = _prepared(tmp_path)
    fake.write(JOURNAL_PATH, json.dumps(data))
    before = fake.snapshot()
    with pytest.raises(HostError) as caught:
        fake.run(command)
    message = str(caught.value)
    assert message.startswith(f"the journal {fake.root}{JOURNAL_PATH} is damaged"), message
    if field:
        assert f"{field}:" in message, message
    assert "move it away" in message
    assert differences(before, fake.snapshot()) == []


def test_a_journal_of_a_newer_lazyjack_keeps_the_entries_it_does_not_know(tmp_path: Path) -> None:
    """An unknown step kind is not damage: the entry stays for a lazyjack that knows it (revert says so)."""
    fake = _prepared(tmp_path)
    journal = json.loads((fake.root / JOURNAL_PATH.lstrip("/")).read_text())
    journal["entries"].append({"command": "prepare", "key": "frobnicator:x", "kind": "frobnicator",
                               "title": "a step of a newer lazyjack", "record": {"anything": [1, 2]}})
    fake.write(JOURNAL_PATH, json.dumps(journal))
    loaded = Journal.load(fake.host.files, host="master")
    assert loaded.entries[-1].record == {"anything": [1, 2]}


def test_every_record_lazyjack_writes_passes_its_own_check(tmp_path: Path) -> None:
    """The records a full cycle journals are valid (also after merging a second run's)."""
    fake = _prepared(tmp_path)
    fake.run("prepare")
    fake.run("up")
    kinds = {e.kind for e in Journal.load(fake.host.files, host="master").entries}
    assert {"address", "mtu", "sysctl", "marked-edit", "file", "kubeadm-config", "routes", "kubeadm-init"} <= kinds


# --- the lab's state ----------------------------------------------------------------------------------


def _lab(base: Path) -> Path:
    directory = base / "demo"
    directory.mkdir(parents=True)
    node = {"name": "n1", "netns": "lj-n1", "interface": "eth1", "roles": ["master"],
            "directory": str(directory / "nodes" / "n1"), "ran": ["prepare"]}
    state = {"name": "demo", "directory": str(directory), "source_config": "/x.yaml", "mode": "ipv4",
             "created": "2026-01-01T00:00:00+00:00", "phase": "up", "detail": "", "namespaces": ["lj-n1"],
             "daemons": [], "nodes": {"n1": node}, "skip_phases": ["kubelet"], "internet": {}, "format": 1}
    (directory / STATE_FILE).write_text(json.dumps(state))
    return directory


DAMAGED_LAB_STATES = [
    pytest.param(lambda s: s.pop("nodes"), "nodes", id="no-nodes"),
    pytest.param(lambda s: s.update(nodes=[]), "nodes", id="nodes-a-list"),
    pytest.param(lambda s: s["nodes"]["n1"].pop("netns"), "nodes.n1.netns", id="node-without-netns"),
    pytest.param(lambda s: s["nodes"]["n1"].update(roles="master"), "nodes.n1.roles", id="roles-text"),
    pytest.param(lambda s: s.update(namespaces=[1, 2]), "namespaces.0", id="namespace-a-number"),
    pytest.param(lambda s: s.update(daemons=[{"name": "dns"}]), "daemons.0.program", id="daemon-half"),
    pytest.param(lambda s: s.update(internet={"netns": "x"}), "internet", id="internet-half"),
    pytest.param(lambda s: s["nodes"]["n1"].update(pod_result={"ips": "10.0.0.1"}), "nodes.n1.pod_result",
                 id="pod-result-ips-text"),
    pytest.param(lambda s: s.update(frobs=1), "frobs", id="unknown-key"),
    pytest.param(lambda s: s.update(format=7), "format", id="other-format"),
]


@pytest.mark.parametrize(("damage", "field"), DAMAGED_LAB_STATES)
def test_a_damaged_lab_state_is_named_and_nothing_changes(damage: Any, field: str, tmp_path: Path) -> None:
    base = tmp_path / "labs"
    directory = _lab(base)
    path = directory / STATE_FILE
    state = json.loads(path.read_text())
    damage(state)
    path.write_text(json.dumps(state))
    before = path.read_bytes()
    for action in (lambda: LabState.load(directory), lambda: lab_status(Tools(), name="demo", base=base),
                   lambda: lab_down(Tools(), name="demo", report=lambda _l: None, base=base)):
        with pytest.raises(LabError) as caught:
            action()
        message = str(caught.value)
        assert message.startswith(f"the lab state {path} is damaged"), message
        assert f"{field}:" in message, message
    assert path.read_bytes() == before and sorted(p.name for p in directory.iterdir()) == [STATE_FILE]


def test_a_lab_state_that_is_not_json_is_named(tmp_path: Path) -> None:
    directory = _lab(tmp_path / "labs")
    (directory / STATE_FILE).write_text("{")
    with pytest.raises(LazyjackError, match=rf"cannot read the lab state {directory / STATE_FILE}"):
        LabState.load(directory)


def test_a_sound_lab_state_loads(tmp_path: Path) -> None:
    state = LabState.load(_lab(tmp_path / "labs"))
    assert state.nodes["n1"].netns == "lj-n1" and state.skip_phases == ["kubelet"]


def test_records_of_every_step_module_are_checked_in_a_fresh_process(tmp_path: Path) -> None:
    """The journal may name kinds of step modules a command did not import (a container of the docker runtime)."""
    import subprocess
    import sys

    journal = tmp_path / JOURNAL_PATH.lstrip("/")
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps(_journal({"command": "prepare", "key": "container:c", "kind": "container",
                                            "title": "c", "record": {"runtime": "docker", "socket": "/s"}})))
    script = ("import pathlib, sys\nfrom lazyjack.host.files import Files\nfrom lazyjack.steps.journal import Journal\n"
              "Journal.load(Files(pathlib.Path(sys.argv[1])), host='master')\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "entries.0.record.name: Field required" in done.stderr, done.stderr
