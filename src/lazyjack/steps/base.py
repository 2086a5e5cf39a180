"""The step contract: a small unit that plans, applies, and reverts one piece of host state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from lazyjack.steps.records import StepRecord

if TYPE_CHECKING:
    from lazyjack.config.egress import Egress
    from lazyjack.config.model import Config
    from lazyjack.config.plan import NodePlan, Plan
    from lazyjack.host import Host

Record = dict[str, Any]
T = TypeVar("T")


@dataclass
class Context:
    """What every step may use: the host interfaces, the config and plan, and this node."""

    host: Host
    config: Config
    plan: Plan
    node: NodePlan
    root: Path
    report: Callable[[str], None] = lambda _line: None
    kubeadm_api: str | None = None
    kubernetes_minor: int | None = None  # of the installed kubeadm, else of kubernetes-version
    skip_phases: frozenset[str] = frozenset()
    invoking_user: str | None = None
    #: A read-only run (status) keeps here what it read once, so that every check shares one route dump.
    facts: dict[str, Any] | None = None

    def fact(self, name: str, read: Callable[[], T]) -> T:
        """`read()`, once per read-only run (`facts` set); every time otherwise, since steps change the host."""
        if self.facts is None:
            return read()
        if name not in self.facts:
            self.facts[name] = read()
        value: T = self.facts[name]
        return value

    @property
    def work_area(self) -> str:
        return self.config.general.work_area

    @property
    def egress(self) -> Egress:
        """ipv6 mode's support network, DNS64 and NAT64 (only that mode's steps ask for them)."""
        egress = self.config.egress
        assert egress is not None, "the egress settings exist in ipv6 mode only"
        return egress

    def real_path(self, path: str) -> Path:
        """Where a host path lives under --root (what external programs must be told)."""
        return self.host.files.resolve(path)


@dataclass(frozen=True)
class Outcome:
    """What a step would do (or did): the changes, or why nothing is needed."""

    changes: tuple[str, ...] = ()
    reason: str = ""
    diff: str = ""

    @property
    def needed(self) -> bool:
        return bool(self.changes)

    @staticmethod
    def noop(reason: str) -> Outcome:
        return Outcome(reason=reason)

    @staticmethod
    def change(*changes: str, diff: str = "") -> Outcome:
        return Outcome(changes=tuple(changes), diff=diff)


IN_PLACE, DRIFTED, MISSING, UNKNOWN = "in place", "drifted", "missing", "unknown"


@dataclass(frozen=True)
class Status:
    """What `check` found for one journal record: in place, or what differs from it.

    `missing`: the thing is gone altogether (an address, a route set, a server); `drifted`: it is
    there but differs (an MTU, an edited file); `unknown`: the check itself failed (an engine that
    does not answer). `fix` is set when `restore` leaves the drift as it
    is (a file someone edited, kubeadm's state) and says what to do instead.
    """

    state: str
    details: tuple[str, ...] = ()
    diff: str = ""
    fix: str = ""

    @property
    def in_place(self) -> bool:
        return self.state == IN_PLACE

    @staticmethod
    def ok(reason: str) -> Status:
        return Status(IN_PLACE, (reason,))

    @staticmethod
    def drifted(*details: str, diff: str = "", fix: str = "") -> Status:
        return Status(DRIFTED, tuple(details), diff=diff, fix=fix)

    @staticmethod
    def missing(*details: str, fix: str = "") -> Status:
        return Status(MISSING, tuple(details), fix=fix)

    @staticmethod
    def unknown(detail: str) -> Status:
        return Status(UNKNOWN, (detail,))


_KINDS: dict[str, type[Step]] = {}
#: The modules that define steps. A command imports only those it needs; undoing a journal may
#: need any of them (a container of the docker runtime, say), so step_kind imports them all.
STEP_MODULES = ("network", "files", "kube", "support", "containers")


def known_kind(kind: str) -> type[Step] | None:
    """The step class of journal entries of `kind`, or None for a kind this lazyjack does not know."""
    if kind not in _KINDS:
        import importlib

        for module in STEP_MODULES:
            importlib.import_module(f"lazyjack.steps.{module}")
    return _KINDS.get(kind)


def step_kind(kind: str) -> type[Step]:
    """The step class that reverts journal entries of `kind`."""
    found = known_kind(kind)
    if found is None:
        from lazyjack.errors import HostError

        raise HostError(f"the journal names a step kind {kind!r} this lazyjack does not know")
    return found


class Step(ABC):
    """One idempotent unit of host state.

    `plan` only reads; `apply` changes the host and returns a record of what it changed
    (kept in the journal); `revert` undoes exactly a record, needing nothing but the
    record, so that a journal can be undone even after the config changed; `remove`
    asks for absence without a record (clean of a node prepared by lazyjack 1.x).
    `check` compares the host with a record, reading only (`lazyjack status`), and `mend`
    re-applies what a record names where `check` found it drifted (`lazyjack restore`, after
    a reboot): both need nothing but the record, like `revert`.

    A record is JSON (the journal keeps it), and `kind` names the class that reverts it:
    both stay as they are once released, or older journals can no longer be undone. Most
    steps take one of the shapes of `lazyjack.steps.shapes` and write only their hooks.
    """

    kind: ClassVar[str] = ""
    #: The shape of this kind's record, checked when the journal is read (`lazyjack.steps.records`).
    record_model: ClassVar[type[StepRecord]] = StepRecord

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    @property
    @abstractmethod
    def title(self) -> str:
        """A short readable name: `address fd00:20::2/64 on eth1`."""

    @property
    def key(self) -> str:
        """Identity in the journal: the same step of a later run has the same key."""
        return f"{self.kind}:{self.title}"

    @abstractmethod
    def plan(self, ctx: Context) -> Outcome:
        """What apply would change, or why nothing is needed; reads only."""

    @abstractmethod
    def apply(self, ctx: Context) -> Record:
        """Change the host; return what is needed to undo it."""

    @classmethod
    @abstractmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        """Undo a record; reverting something already undone is a no-op with a reason."""

    @classmethod
    @abstractmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        """Whether what `record` names is in place on the host; reads only, and quickly (no kubeadm)."""

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        """Re-apply what `record` names, after `check` found it drifted (and set no `fix`).

        Returns a record of what this mend changed, of the shape `revert` undoes (a failed
        restore rolls back with it). A mend brings back only what `record` names, so the
        journal's first record (the state before lazyjack) still covers it for down and clean.
        """
        from lazyjack.errors import HostError

        raise HostError(f"{cls.kind} cannot be re-applied from its journal record; run the command that made it")

    @staticmethod
    def needs(record: Record, key: str, *, name: str, what: str, again: str) -> None:
        """For a mend: `record` must hold `key`; records an earlier lazyjack journaled lack it, and the command
        that made the thing `again` makes it then."""
        if key not in record:
            from lazyjack.errors import HostError

            raise HostError(f"the journal's record of {name} has no {what} (an earlier lazyjack wrote it): "
                            f"`lazyjack prepare` {again}")

    @classmethod
    def merge(cls, old: Record, new: Record) -> Record:
        """The record to keep when a step already in the journal applies again.

        The first record holds the true original state, so by default it wins.
        """
        return old

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        """What revert would do, for --dry-run."""
        return Outcome.change(f"undo {record.get('summary', cls.kind)}")

    def remove(self, ctx: Context) -> Outcome:
        """Undo without a journal record; by default there is nothing safe to do."""
        return Outcome.noop("nothing recorded to undo")

    def plan_remove(self, ctx: Context) -> Outcome:
        """What remove would do, for --dry-run."""
        return Outcome.noop("nothing recorded to undo")
