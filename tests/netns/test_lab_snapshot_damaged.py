"""lab down compares each node with its snapshot; a damaged snapshot is reported, and lab down goes on."""

from __future__ import annotations

from pathlib import Path

from lazyjack.host.process import Runner
from lazyjack.lab.snapshot import back_as_before
from lazyjack.lab.state import LabState, NodeState


def test_a_damaged_snapshot_is_reported_not_raised(netns: str, tmp_path: Path) -> None:
    node = NodeState(name="n1", netns=netns, interface="lo", roles=["master"], directory=str(tmp_path / "n1"))
    state = LabState(name="t", directory=str(tmp_path), source_config="/x.yaml", mode="ipv4", nodes={"n1": node})
    node.snapshot.parent.mkdir(parents=True)
    lines: list[str] = []
    for damaged, why in (("{", "cannot read the snapshot"), ("[1, 2]", "is damaged: it is not a mapping")):
        node.snapshot.write_text(damaged)
        assert back_as_before(Runner(), state, lines.append) is False
        assert lines[-1].startswith(" ✗ n1: ") and why in lines[-1] and str(node.snapshot) in lines[-1], lines
