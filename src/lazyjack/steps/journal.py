"""The journal: what each applied step changed on this node, so that down and clean undo exactly that."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lazyjack.errors import HostError

if TYPE_CHECKING:
    from lazyjack.host.files import Files

JOURNAL_PATH = "/var/lib/lazyjack/journal.json"
FORMAT = 1


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
        journal = cls(files, host=host)
        raw = files.read_bytes(JOURNAL_PATH)
        if raw is None:
            return journal
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a lazyjack journal of format 1")
            journal.entries = [Entry(**e) for e in data["entries"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HostError(
                f"the journal {files.resolve(JOURNAL_PATH)} cannot be read ({exc}); move it away to clean "
                "from the configuration instead"
            ) from None
        return journal

    def save(self) -> None:
        data = {"format": FORMAT, "host": self.host, "entries": [asdict(e) for e in self.entries]}
        if not self.entries:
            self.files.remove(JOURNAL_PATH)
            return
        self.files.makedirs("/var/lib/lazyjack", mode=0o700)
        self.files.write_atomic(JOURNAL_PATH, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)

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
