"""status and restore: the journal compared with the live host, and what drifted re-applied (after a reboot).

Both work from the journal's records alone, like down and clean, so they answer for what was
applied even after the config changed. `status` only reads; `restore` re-applies in journal order
and rolls its own changes back on failure, leaving every record as it was (the state before
lazyjack, which clean restores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host import Host
from lazyjack.steps.base import IN_PLACE
from lazyjack.steps.engine import RunResult, check_entries, restore_entries
from lazyjack.steps.journal import Journal

#: What the journal says of a node, for `lazyjack cluster status` and `lab status`.
NOTHING, PREPARED, UP = "nothing", "prepared", "up"


@dataclass(frozen=True)
class StepState:
    """One journal entry as status found it."""

    command: str
    kind: str
    title: str
    state: str  # base.IN_PLACE, DRIFTED, MISSING or UNKNOWN
    details: tuple[str, ...]
    fix: str = ""  # set: restore leaves it as it is, and this says what to do instead
    diff: str = ""

    @property
    def in_place(self) -> bool:
        return self.state == IN_PLACE


@dataclass
class NodeStatus:
    """A node's applied steps, each in place or not; machine-readable through `as_json`."""

    node: str
    roles: list[str]
    applied: str  # NOTHING, PREPARED or UP
    steps: list[StepState] = field(default_factory=list)

    @property
    def drifted(self) -> list[StepState]:
        return [s for s in self.steps if not s.in_place]

    @property
    def in_place(self) -> bool:
        return not self.drifted

    def summary(self) -> str:
        """One line: what is applied and whether it is in place."""
        applied = {NOTHING: "nothing applied", PREPARED: "prepared", UP: "prepared and up"}[self.applied]
        if self.in_place:
            return f"{applied}; all {len(self.steps)} step(s) in place" if self.steps else applied
        mendable = sum(not s.fix for s in self.drifted)
        return (f"{applied}; {len(self.drifted)} of {len(self.steps)} step(s) not in place "
                f"({mendable} for `lazyjack restore`)")

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "roles": self.roles,
            "applied": self.applied,
            "in_place": self.in_place,
            "summary": self.summary(),
            "steps": [
                {"command": s.command, "kind": s.kind, "step": s.title, "state": s.state, "details": list(s.details),
                 "restore": not s.in_place and not s.fix, "fix": s.fix, "diff": s.diff}
                for s in self.steps
            ],
        }

    def table(self) -> list[str]:
        lines = [f"lazyjack status on {self.node} ({' '.join(self.roles)}): {self.summary()}"]
        if not self.steps:
            return lines
        rows = [("COMMAND", "STEP", "STATE", "DETAIL")]
        for s in self.steps:
            detail = "; ".join(s.details) + (f" (restore leaves it: {s.fix})" if s.fix and not s.in_place else "")
            rows.append((s.command, s.title, s.state, detail))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines += ["  " + "  ".join(c.ljust(widths[i]) if i < 3 else c for i, c in enumerate(r)).rstrip() for r in rows]
        return lines


def applied_state(journal: Journal) -> str:
    if journal.of("up"):
        return UP
    return PREPARED if journal.of("prepare") else NOTHING


def _entries(journal: Journal) -> list[Any]:
    # prepare's before up's: the order they were applied in, which restore follows.
    return journal.of("prepare") + journal.of("up")


def node_status(host: Host, config: Config, plan: Plan, node_name: str, *, root: Path) -> NodeStatus:
    """Compare the host with the journal; reads only (no lock, no kubeadm, one route dump)."""
    from lazyjack.commands.node import node_context

    ctx = node_context(host, config, plan, node_name, root=root, report=lambda _line: None)
    ctx.facts = {}
    journal = Journal.load(host.files, host=node_name)
    entries = _entries(journal)
    found = check_entries(ctx, entries)
    status = NodeStatus(node_name, list(ctx.node.roles), applied_state(journal))
    for entry, state in zip(entries, found, strict=True):
        status.steps.append(StepState(entry.command, entry.kind, entry.title, state.state, state.details,
                                      fix=state.fix, diff=state.diff))
    return status


def run_restore(host: Host, config: Config, plan: Plan, node_name: str, *, root: Path,
                report: Callable[[str], None], dry_run: bool = False, rollback: bool = True) -> RunResult:
    """Re-apply what drifted from the journal; report each change; roll back this run's changes on failure."""
    from lazyjack.commands.node import maybe_lock, node_context

    ctx = node_context(host, config, plan, node_name, root=root, report=report)
    report(f"lazyjack restore on {node_name} ({' '.join(ctx.node.roles)})"
           + (" (dry run: nothing changes)" if dry_run else ""))
    with maybe_lock(host, dry_run):
        journal = Journal.load(host.files, host=node_name)
        entries = _entries(journal)
        if not entries:
            report("nothing to restore: the journal records nothing applied on this node")
            return RunResult()
        result = restore_entries(ctx, entries, journal=journal, dry_run=dry_run, rollback=rollback)
    if not result.changed:
        report(f"nothing to change: everything lazyjack applied on {node_name} is in place"
               + (f", but for {len(result.left)} drift(s) restore leaves as they are (above)" if result.left else ""))
    return result
