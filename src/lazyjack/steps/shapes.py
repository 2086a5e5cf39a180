"""The common shapes of a step, one base class each, so that a new step is a few lines.

- `Setting`: a value lazyjack sets on something and puts back on undo (an MTU, a sysctl).
- `Created`: something lazyjack makes and takes away on undo (an address, a namespace, a link).
- `Items`: a set of items added one by one (routes, firewall rules); undo deletes those added.
- `Action`: something done for its effect, with the command that undoes it or none (kubeadm init).
- A file written: `lazyjack.steps.files.ManagedFile`; subclass it, as `KubeadmConfigFile` does.
- Directories created: `make_parents` makes a path's missing parents and returns them for the
  record (`created_dirs`), `remove_created_dirs` takes them away again once they are empty.

A shape keeps in its record all that its `revert` needs, and reaches the host through a few
hooks of its subclasses, so that a behaviour every step must have (comparing a record with the
host for `status`, re-applying it for `restore`) is one more method per shape rather than one per
step: `Setting` and `Created` rebuild the step from its record (`from_record`) and ask it, `Items`
asks one hook which of the recorded items are not in place.
"""

from __future__ import annotations

import posixpath
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Self

from lazyjack.steps.base import Context, Outcome, Record, Status, Step

# --- directories created -----------------------------------------------------------------------


def missing_dirs(ctx: Context, path: str) -> list[str]:
    """Parent directories of `path` that do not exist yet, outermost first."""
    missing: list[str] = []
    parent = posixpath.dirname(path)
    while parent not in ("/", "") and not ctx.host.files.exists(parent):
        missing.append(parent)
        parent = posixpath.dirname(parent)
    return list(reversed(missing))


def make_parents(
    ctx: Context,
    path: str,
    *,
    mode: int = 0o755,
    modes: dict[str, int] | None = None,
    owner: tuple[int, int] | None = None,
) -> list[str]:
    """Create the missing parent directories of `path` with `mode` (or `modes[dir]`), owned by `owner`.

    Returns them outermost first, for the record's `created_dirs`. When one cannot be made, those
    made before it are removed again and the error goes on.
    """
    files = ctx.host.files
    created = missing_dirs(ctx, path)
    try:
        for directory in created:
            files.makedirs(directory, mode=(modes or {}).get(directory, mode))
            if owner is not None:
                files.chown(directory, *owner)
    except BaseException:
        remove_created_dirs(ctx, created)
        raise
    return created


def remove_created_dirs(ctx: Context, created: list[str]) -> list[str]:
    """Remove the directories a step created (outermost first in `created`) that are empty now."""
    files, removed = ctx.host.files, []
    for directory in reversed(created):
        if files.exists(directory) and not files.listdir(directory):
            files.rmdir(directory)
            removed.append(directory)
    return removed


# --- a value with an original --------------------------------------------------------------------


class Setting(Step):
    """A value lazyjack sets on something of the host, and puts back as it found it on undo.

    The step's field named by `target_key` is the thing (an interface), the one named by
    `value_key` the value to set; the record keeps both under those names, with the value the
    thing had (`original`). Without a record nobody knows the original value, so `remove`
    leaves it as it is.
    """

    target_key: ClassVar[str]
    value_key: ClassVar[str]
    #: --dry-run of down/clean, filled from the record: "restore MTU {original} on {interface}"
    restore: ClassVar[str]
    #: For --dry-run of a clean without a journal: "the original MTU is unknown ..."
    unknown: ClassVar[str] = "value"

    @property
    def target(self) -> str:
        return str(getattr(self, self.target_key))

    @property
    def wanted(self) -> Any:
        return getattr(self, self.value_key)

    @classmethod
    @abstractmethod
    def read(cls, ctx: Context, target: str) -> Any:
        """The value `target` has now."""

    @classmethod
    @abstractmethod
    def write(cls, ctx: Context, target: str, value: Any) -> None:
        """Give `target` the value."""

    @classmethod
    def gone(cls, ctx: Context, target: str) -> str | None:
        """Why there is nothing left to put back (the thing is gone), or None."""
        return None

    @classmethod
    def original(cls, record: Record) -> Any:
        return record["original"]

    def plan(self, ctx: Context) -> Outcome:
        current = self.read(ctx, self.target)
        if current == self.wanted:
            return Outcome.noop(f"already {self.wanted}")
        return Outcome.change(f"{current} -> {self.wanted}")

    def apply(self, ctx: Context) -> Record:
        original = self.read(ctx, self.target)
        self.write(ctx, self.target, self.wanted)
        return {self.target_key: self.target, "original": original, self.value_key: self.wanted, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        target, original = record[cls.target_key], cls.original(record)
        why = cls.gone(ctx, target)
        if why is not None:
            return Outcome.noop(why)
        current = cls.read(ctx, target)
        if current == original:
            return Outcome.noop(f"already {original}")
        cls.write(ctx, target, original)
        return Outcome.change(f"{current} -> {original} (restored)")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(cls.restore.format(**record))

    def plan_remove(self, ctx: Context) -> Outcome:
        return Outcome.noop(f"the original {self.unknown} is unknown without a journal; left as it is")

    @classmethod
    def from_record(cls, record: Record) -> Self:
        """The step that made `record`: its thing and the value it set."""
        return cls(**{cls.target_key: record[cls.target_key], cls.value_key: record[cls.value_key]})

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        step = cls.from_record(record)
        why = cls.gone(ctx, step.target)
        if why is not None:
            return Status.missing(why)
        current = cls.read(ctx, step.target)
        if current == step.wanted:
            return Status.ok(f"{step.wanted}")
        return Status.drifted(f"{step.title} is {current} instead of {step.wanted}")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        return cls.from_record(record).apply(ctx)


# --- something made and taken away ---------------------------------------------------------------


class Created(Step):
    """Something lazyjack makes, and takes away on undo: the record is what names it (`identity`).

    Subclasses say whether it is there, how to make it, and how to take it away from a record;
    the texts are templates filled from the identity. Without a journal (`remove`) it is taken
    away when it is there, as for a record.
    """

    #: plan, when it is there: "{address} already on {interface}"
    there: ClassVar[str]
    #: plan, when it is not: "add {address} to {interface}"
    make: ClassVar[str]
    #: plan_remove, when it is there: "remove {address} from {interface}"
    unmake: ClassVar[str]
    #: plan_remove, when it is not: "{address} is not on {interface}"
    absent: ClassVar[str]

    @abstractmethod
    def identity(self) -> Record:
        """What names it: the record, without the summary."""

    @abstractmethod
    def exists(self, ctx: Context) -> bool:
        """Whether it is there now."""

    @abstractmethod
    def create(self, ctx: Context) -> None:
        """Make it."""

    @classmethod
    @abstractmethod
    def delete(cls, ctx: Context, record: Record) -> Outcome:
        """Take away what `record` names; already gone is a no-op with the reason."""

    def plan(self, ctx: Context) -> Outcome:
        if self.exists(ctx):
            return Outcome.noop(self.there.format(**self.identity()))
        return Outcome.change(self.make.format(**self.identity()))

    def apply(self, ctx: Context) -> Record:
        self.create(ctx)
        return {**self.identity(), "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        return cls.delete(ctx, record)

    def remove(self, ctx: Context) -> Outcome:
        return self.delete(ctx, self.identity())

    def plan_remove(self, ctx: Context) -> Outcome:
        if self.exists(ctx):
            return Outcome.change(self.unmake.format(**self.identity()))
        return Outcome.noop(self.absent.format(**self.identity()))

    @classmethod
    def from_record(cls, record: Record) -> Self:
        """The step that made `record` (its identity); override when a field is not a JSON value."""
        return cls(**{k: v for k, v in record.items() if k != "summary"})

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        step = cls.from_record(record)
        if step.exists(ctx):
            return Status.ok(cls.there.format(**step.identity()))
        return Status.missing(cls.absent.format(**step.identity()))

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        return cls.from_record(record).apply(ctx)


# --- a set of items -------------------------------------------------------------------------------


Item = Any  # as a record keeps it: JSON values (a route's dict, a firewall rule's argv)


class ItemDrift(NamedTuple):
    """A recorded item that is not in place: what differs, and whether restore may add it again."""

    item: Item
    detail: str
    addable: bool = True


class Items(Step):
    """Items added one by one (routes, firewall rules): the record lists those this step added.

    A failure half-way takes the items added so far away again, so the step is all or nothing.
    A later run may add more (a node joined the config): the records merge, so that undo covers
    every run's items. Undo deletes them newest first; one already gone counts as done.
    """

    #: The record's key for the list of items: "routes", "rules".
    record_key: ClassVar[str]
    #: What one item is called in messages: "route", "rule".
    noun: ClassVar[str]

    @abstractmethod
    def missing(self, ctx: Context) -> list[Item]:
        """The wanted items that are not there yet; raises when one is there in a conflicting form."""

    @abstractmethod
    def present(self, ctx: Context) -> list[Item]:
        """The wanted items that are there now."""

    @classmethod
    @abstractmethod
    def add(cls, ctx: Context, item: Item) -> None:
        """Add one item."""

    @classmethod
    @abstractmethod
    def delete(cls, ctx: Context, item: Item) -> bool:
        """Delete one item; False when it is already gone."""

    @classmethod
    @abstractmethod
    def drifts(cls, ctx: Context, items: list[Item]) -> list[ItemDrift]:
        """Those of `items` (from a record) that are not in place now; reads only."""

    def apply(self, ctx: Context) -> Record:
        return {self.record_key: self._add_all(ctx, self.missing(ctx)), "summary": self.title}

    @classmethod
    def _add_all(cls, ctx: Context, items: list[Item]) -> list[Item]:
        added: list[Item] = []
        try:
            for item in items:
                cls.add(ctx, item)
                added.append(item)
        except BaseException:
            # Leave no partial set behind (also when interrupted): this step's record would not cover them.
            for item in reversed(added):
                cls.delete(ctx, item)
            raise
        return added

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        items = list(record[cls.record_key])
        drifts = cls.drifts(ctx, items)
        if not drifts:
            return Status.ok(f"all {len(items)} {cls.noun}(s) in place" if len(items) != 1 else f"the {cls.noun} is in place")
        details = [d.detail for d in drifts]
        fix = "" if all(d.addable for d in drifts) else \
            f"restore does not replace what someone else put in place of lazyjack's {cls.noun}s; remove it, then restore"
        if len(drifts) == len(items):
            return Status.missing(*details, fix=fix)
        return Status.drifted(*details, fix=fix)

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        drifts = cls.drifts(ctx, list(record[cls.record_key]))
        return {cls.record_key: cls._add_all(ctx, [d.item for d in drifts if d.addable]),
                "summary": record.get("summary", cls.kind)}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        removed = sum(cls.delete(ctx, item) for item in reversed(record[cls.record_key]))
        return Outcome.change(f"removed {removed} {cls.noun}(s)") if removed else Outcome.noop("already absent")

    @classmethod
    def merge(cls, old: Record, new: Record) -> Record:
        """A later run may add items: undo must cover both runs'."""
        key = cls.record_key
        return {**old, key: list(old[key]) + [e for e in new[key] if e not in old[key]]}

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {self.record_key: self.present(ctx)})

    def plan_remove(self, ctx: Context) -> Outcome:
        present = self.present(ctx)
        return Outcome.change(f"remove {len(present)} {self.noun}(s)") if present else Outcome.noop("already absent")


# --- an action with an undo -----------------------------------------------------------------------


class Action(Step):
    """Something done for its effect (a command, a deletion), and the command that undoes it, or none.

    `done` says why running it is not needed (its effect is there). Undo runs only when
    `leftovers` finds something for it to take away; without a journal `remove` does the same
    (for an action that has an undo).
    """

    #: What the undo runs, as shown ("kubeadm reset -f"); empty: nothing undoes it.
    undo: ClassVar[str] = ""
    #: Why revert does nothing: when there is no undo, or nothing left for it to take away.
    nothing_to_undo: ClassVar[str] = "nothing to undo"

    @abstractmethod
    def done(self, ctx: Context) -> str | None:
        """Why the command is not needed (its effect is there), or None."""

    @abstractmethod
    def commands(self, ctx: Context) -> Sequence[str]:
        """What it runs, as shown by plan."""

    @abstractmethod
    def run(self, ctx: Context) -> Record:
        """Run it; return what undo needs (the summary is added)."""

    @classmethod
    def leftovers(cls, ctx: Context) -> bool:
        """Whether there is something for the undo to take away."""
        return False

    @classmethod
    def run_undo(cls, ctx: Context) -> None:
        """Run the undo command."""

    def plan(self, ctx: Context) -> Outcome:
        reason = self.done(ctx)
        return Outcome.noop(reason) if reason is not None else Outcome.change(*self.commands(ctx))

    def apply(self, ctx: Context) -> Record:
        return {**self.run(ctx), "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        if not cls.undo or not cls.leftovers(ctx):
            return Outcome.noop(cls.nothing_to_undo.format(**record))
        cls.run_undo(ctx)
        return Outcome.change(cls.undo)

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(cls.undo) if cls.undo else super().describe_revert(record)

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {}) if self.undo else super().remove(ctx)

    def plan_remove(self, ctx: Context) -> Outcome:
        if not self.undo:
            return super().plan_remove(ctx)
        return Outcome.change(self.undo) if self.leftovers(ctx) else Outcome.noop(self.nothing_to_undo)

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        """By default an action leaves nothing to compare (a restart): in place once done."""
        return Status.ok("done; it leaves nothing to check")
