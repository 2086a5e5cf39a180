"""The step contract: a small unit that plans, applies, and reverts one piece of host state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lazyjack.config.model import Config
    from lazyjack.config.plan import NodePlan, Plan
    from lazyjack.host import Host

Record = dict[str, Any]


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
    skip_phases: frozenset[str] = frozenset()
    invoking_user: str | None = None

    @property
    def work_area(self) -> str:
        return self.config.general.work_area

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


@dataclass
class Step(ABC):
    """One idempotent unit of host state.

    `plan` only reads; `apply` changes the host and returns a record of what it changed
    (kept in the journal); `revert` undoes exactly that record; `remove` asks for
    absence without a record (clean of a node prepared by lazyjack 1.x, or one whose
    journal was lost).
    """

    key: str = field(init=False, default="")

    @property
    @abstractmethod
    def title(self) -> str:
        """A short readable name: `address fd00:20::2/64 on eth1`."""

    @abstractmethod
    def plan(self, ctx: Context) -> Outcome: ...

    @abstractmethod
    def apply(self, ctx: Context) -> Record: ...

    @abstractmethod
    def revert(self, ctx: Context, record: Record) -> Outcome: ...

    def remove(self, ctx: Context) -> Outcome:
        """Undo without a journal record; by default there is nothing safe to do."""
        return Outcome.noop(f"{self.title}: nothing recorded to undo")
