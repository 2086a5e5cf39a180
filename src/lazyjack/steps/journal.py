"""The journal: what each applied step changed on this node, so that down and clean undo exactly that."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lazyjack.errors import HostError
from lazyjack.steps.base import known_kind

if TYPE_CHECKING:
    from lazyjack.host.files import Files

JOURNAL_PATH = "/var/lib/lazyjack/journal.json"
FORMAT = 1


class EntryFile(BaseModel):
    """An entry as the file holds it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    command: Literal["prepare", "up", "down"]
    key: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    title: str
    record: dict[str, Any]
    time: float = 0.0


class JournalFile(BaseModel):
    """The journal file: its format, the node it belongs to, the entries in the order they were applied."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal[1]
    host: str
    entries: list[EntryFile]


class _Damaged(Exception):
    def __init__(self, error: ValidationError, prefix: str) -> None:
        self.error, self.prefix = error, prefix


def _problems(error: ValidationError, prefix: str = "") -> str:
    """`entries.2.record.address: value is not a valid address` for the first few problems of `error`."""
    found = []
    for problem in error.errors()[:3]:
        where = ".".join([prefix, *map(str, problem["loc"])] if prefix else map(str, problem["loc"]))
        found.append(f"{where or '(the whole file)'}: {problem['msg']}")
    more = len(error.errors()) - len(found)
    return "; ".join(found) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class Entry:
    """One applied step: the command that applied it, its key and kind, and its record."""

    command: str
    key: str
    kind: str
    title: str
    record: dict[str, Any]
    time: float = 0.0


class Journal:
    """Entries in the order they were applied, saved atomically after every change."""

    def __init__(self, files: Files, *, host: str) -> None:
        self.files = files
        self.host = host
        self.entries: list[Entry] = []

    @classmethod
    def load(cls, files: Files, *, host: str) -> Journal:
        """The journal on this node (empty when there is none); a HostError naming the file and what is wrong
        when it is damaged, before anything reads a record of it."""
        journal = cls(files, host=host)
        raw = files.read_bytes(JOURNAL_PATH)
        if raw is None:
            return journal
        where = f"the journal {files.resolve(JOURNAL_PATH)}"
        hint = "move it away to clean from the configuration instead"
        try:
            data = JournalFile.model_validate_json(raw)
            for index, entry in enumerate(data.entries):
                known = known_kind(entry.kind)
                if known is not None:
                    try:
                        known.record_model.model_validate(entry.record)
                    except ValidationError as exc:
                        raise _Damaged(exc, f"entries.{index}.record") from None
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise HostError(f"{where} cannot be read (it is not JSON); {hint}") from None
            raise HostError(f"{where} is damaged: {_problems(exc)}; {hint}") from None
        except _Damaged as exc:
            raise HostError(f"{where} is damaged: {_problems(exc.error, exc.prefix)}; {hint}") from None
        journal.entries = [Entry(e.command, e.key, e.kind, e.title, e.record, e.time) for e in data.entries]
        return journal

    def save(self) -> None:
        data = {"format": FORMAT, "host": self.host, "entries": [asdict(e) for e in self.entries]}
        if not self.entries:
            self.files.remove(JOURNAL_PATH)
            return
        self.files.makedirs("/var/lib/lazyjack", mode=0o700)
        # It keeps the original bytes of files lazyjack changed (a kubeadm config with its token, a user's
        # kubeconfig): 0600 whatever the file had.
        self.files.write_secret(JOURNAL_PATH, (json.dumps(data, indent=1) + "\n").encode())

    def find(self, command: str, key: str) -> Entry | None:
        return next((e for e in self.entries if e.command == command and e.key == key), None)

    def add(
        self,
        *,
        command: str,
        key: str,
        kind: str,
        title: str,
        record: dict[str, Any],
        merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Record an applied step; a step recorded before merges (by default keeps the first record)."""
        entry = self.find(command, key)
        if entry is None:
            self.entries.append(Entry(command, key, kind, title, record, time.time()))
        elif merge is not None:
            entry.record = merge(entry.record, record)
        self.save()

    def drop(self, entry: Entry) -> None:
        self.entries = [e for e in self.entries if e is not entry]
        self.save()

    def of(self, command: str) -> list[Entry]:
        return [e for e in self.entries if e.command == command]
