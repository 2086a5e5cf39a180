"""Running steps: plan, apply in order, journal each change, roll back this run's changes on failure."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from lazyjack.errors import HostError, describe_failure, expected_failure
from lazyjack.steps.base import Context, Outcome, Record, Status, Step, step_kind
from lazyjack.steps.journal import Entry, Journal

DONE, SAME, WOULD, FAILED, UNDONE = "✓", "·", "~", "✗", "↺"


class StepFailed(HostError):
    """A step failed while acting; says which, why, and what was rolled back.

    `unexpected` is True when the cause is not an error lazyjack raises on purpose (a ValueError, a
    KeyError, ...): the CLI then shows its traceback with --debug.
    """

    def __init__(self, message: str, *, unexpected: bool = False) -> None:
        super().__init__(message)
        self.unexpected = unexpected


@dataclass
class RunResult:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: restore: drift it leaves as it is by rule (an edited file), with what to do instead
    left: list[str] = field(default_factory=list)


def _line(mark: str, title: str, text: str) -> str:
    return f"  {mark} {title}: {text}" if text else f"  {mark} {title}"


def apply_steps(
    ctx: Context,
    steps: Sequence[Step],
    *,
    command: str,
    journal: Journal,
    dry_run: bool = False,
    rollback: bool = True,
) -> RunResult:
    """Bring the host to the state the steps describe; on failure undo this run's changes."""
    result = RunResult()
    applied: list[_Applied] = []
    for step in steps:
        try:
            outcome = step.plan(ctx)
            if not outcome.needed:
                ctx.report(_line(SAME, step.title, outcome.reason))
                result.unchanged.append(step.title)
                continue
            if dry_run:
                ctx.report(_line(WOULD, step.title, "; ".join(outcome.changes)))
                if outcome.diff:
                    ctx.report("\n".join("      " + line for line in outcome.diff.rstrip("\n").splitlines()))
                result.changed.append(step.title)
                continue
            record = step.apply(ctx)
            # Listed before it is journaled, so that an interrupt while the journal is written still undoes it.
            earlier = journal.find(command, step.key)
            applied.append(_Applied(step.title, command, step.key, step.revert, record,
                                    None if earlier is None else copy.deepcopy(earlier.record)))
            journal.add(command=command, key=step.key, kind=step.kind, title=step.title, record=record,
                        merge=step.merge)
        except BaseException as exc:
            _failed(ctx, exc, command, step.title, applied, journal=journal, rollback=rollback,
                    kept="; `lazyjack clean` undoes them")
            raise
        ctx.report(_line(DONE, step.title, "; ".join(outcome.changes)))
        result.changed.append(step.title)
    return result


def _failed(ctx: Context, exc: BaseException, command: str, title: str, applied: list[_Applied], *,
            journal: Journal, rollback: bool, kept: str) -> None:
    """A step failed or the run was interrupted there: report it and roll back what this run applied.

    Any exception, not only lazyjack's and the host's: a ValueError from a renderer or a KeyError from a
    malformed record must not leave this run's changes in place either; it becomes a StepFailed. Ctrl-C,
    SIGTERM (the CLI raises it as a KeyboardInterrupt) or SystemExit leave the node as this run found it
    too, and go on (the caller re-raises them); a second interrupt stops the rollback, and what is left
    stays in the journal.
    """
    if not isinstance(exc, Exception):
        ctx.report(_line(FAILED, title, "interrupted" if isinstance(exc, KeyboardInterrupt) else describe_failure(exc)))
        if rollback:
            undone = _rollback(ctx, applied, journal=journal)
            ctx.report(f"  {UNDONE} rolled back {len(undone)} change(s) of this run")
        return
    what = describe_failure(exc)
    ctx.report(_line(FAILED, title, what))
    if rollback:
        undone = _rollback(ctx, applied, journal=journal)
        tail = f"; rolled back {len(undone)} change(s) of this run" if undone else "; nothing to roll back"
    else:
        tail = f"; kept {len(applied)} change(s) of this run (--no-rollback){kept}"
    raise StepFailed(f"{command} failed at {title}: {what}{tail}", unexpected=not expected_failure(exc)) from exc


class _Applied(NamedTuple):
    """A change this run made: its step's title and journal key, the undo, its record, and the record an
    earlier run journaled for the step (None if none)."""

    title: str
    command: str
    key: str
    revert: Callable[[Context, Record], Outcome]
    record: Record
    earlier: Record | None


def _rollback(ctx: Context, applied: list[_Applied], *, journal: Journal) -> list[str]:
    undone: list[str] = []
    for title, command, key, revert, record, earlier in reversed(applied):
        try:
            outcome = revert(ctx, record)
        except Exception as exc:
            ctx.report(_line(FAILED, title, f"rollback failed: {describe_failure(exc)}"))
            continue
        entry = journal.find(command, key)
        if entry is not None and earlier is not None:
            # An earlier run changed it first: its record (the state before lazyjack) stays for clean.
            entry.record = earlier
            journal.save()
        elif entry is not None:
            journal.drop(entry)
        ctx.report(_line(UNDONE, title, "; ".join(outcome.changes) or outcome.reason))
        undone.append(title)
    return undone


def revert_entries(ctx: Context, entries: Sequence[Entry], *, journal: Journal, dry_run: bool = False) -> RunResult:
    """Undo journal entries, newest first; keep going past failures and report them all."""
    result = RunResult()
    failed: list[Entry] = []
    for entry in reversed(entries):
        try:
            cls = step_kind(entry.kind)
            if dry_run:
                outcome = cls.describe_revert(entry.record)
                ctx.report(_line(WOULD, entry.title, "; ".join(outcome.changes) or outcome.reason))
                result.changed.append(entry.title)
                continue
            outcome = cls.revert(ctx, entry.record)
        except Exception as exc:
            ctx.report(_line(FAILED, entry.title, describe_failure(exc)))
            result.errors.append(f"{entry.title}: {describe_failure(exc)}")
            failed.append(entry)
            continue
        _hand_on_dirs(ctx, entry, failed, journal=journal)
        journal.drop(entry)
        if outcome.needed:
            ctx.report(_line(UNDONE, entry.title, "; ".join(outcome.changes)))
            result.changed.append(entry.title)
        else:
            ctx.report(_line(SAME, entry.title, outcome.reason))
            result.unchanged.append(entry.title)
    return result


def check_entries(ctx: Context, entries: Sequence[Entry]) -> list[Status]:
    """What `check` says of each journal entry, in order; reads only. A check that fails is `unknown`."""
    found: list[Status] = []
    for entry in entries:
        try:
            found.append(step_kind(entry.kind).check(ctx, entry.record))
        except Exception as exc:
            found.append(Status.unknown(f"cannot check: {describe_failure(exc)}"))
    return found


def restore_entries(ctx: Context, entries: Sequence[Entry], *, journal: Journal, dry_run: bool = False,
                    rollback: bool = True) -> RunResult:
    """Re-apply, in journal order, what each entry names where it drifted; roll back this run's mends on failure.

    Each entry keeps its record: a mend brings back only what the record names, so the first
    record (the state before lazyjack) still undoes it at down and clean. Drift that restore
    leaves by rule (`Status.fix`) is reported and counted in `left`.
    """
    result = RunResult()
    mended: list[_Applied] = []
    for entry in entries:
        try:
            cls = step_kind(entry.kind)
            status = cls.check(ctx, entry.record)
            what = "; ".join(status.details)
            if status.in_place:
                ctx.report(_line(SAME, entry.title, what))
                result.unchanged.append(entry.title)
                continue
            if status.fix:
                ctx.report(_line("!", entry.title, f"{what}; left as it is: {status.fix}"))
                result.left.append(f"{entry.title}: {what} ({status.fix})")
                continue
            if dry_run:
                ctx.report(_line(WOULD, entry.title, f"re-apply ({what})"))
                result.changed.append(entry.title)
                continue
            record = cls.mend(ctx, entry.record)
            mended.append(_Applied(entry.title, entry.command, entry.key, cls.revert, record,
                                   copy.deepcopy(entry.record)))
        except BaseException as exc:
            _failed(ctx, exc, "restore", entry.title, mended, journal=journal, rollback=rollback, kept="")
            raise
        ctx.report(_line(DONE, entry.title, f"re-applied ({what})"))
        result.changed.append(entry.title)
    return result


def _hand_on_dirs(ctx: Context, entry: Entry, failed: list[Entry], *, journal: Journal) -> None:
    """Directories `entry` created that its undo could not remove (a newer step's file, whose undo failed,
    is still in them) go to the record of that failed step, so that undoing it again removes them too."""
    left = [d for d in entry.record.get("created_dirs", []) if ctx.host.files.exists(d)]
    heir = next((e for e in reversed(failed) if "created_dirs" in e.record), None)
    if left and heir is not None:
        dirs = dict.fromkeys([*heir.record["created_dirs"], *left])
        heir.record["created_dirs"] = sorted(dirs, key=lambda d: d.rstrip("/").count("/"))
        journal.save()


def remove_steps(ctx: Context, steps: Sequence[Step], *, dry_run: bool = False) -> RunResult:
    """Ask each step for absence, newest first, without a journal (a node prepared by lazyjack 1.x)."""
    result = RunResult()
    for step in reversed(steps):
        try:
            outcome = step.plan_remove(ctx) if dry_run else step.remove(ctx)
        except Exception as exc:
            ctx.report(_line(FAILED, step.title, describe_failure(exc)))
            result.errors.append(f"{step.title}: {describe_failure(exc)}")
            continue
        mark = (WOULD if dry_run else UNDONE) if outcome.needed else SAME
        ctx.report(_line(mark, step.title, "; ".join(outcome.changes) or outcome.reason))
        (result.changed if outcome.needed else result.unchanged).append(step.title)
    return result


__all__ = ["Outcome", "RunResult", "StepFailed", "apply_steps", "check_entries", "remove_steps", "restore_entries",
           "revert_entries"]
