"""kind-style status lines for the lab commands: ` ✓ title (1.2s)` or ` ✗ title`, with notes and skips."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from lazyjack.lab import Report


class Progress:
    """Reports each action of a lab command as one line, once it has ended."""

    def __init__(self, report: Report) -> None:
        self.report = report

    @contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        """Yields a list: what the action appends is shown after the title."""
        start = time.monotonic()
        notes: list[str] = []
        try:
            yield notes
        except BaseException:
            self.report(f" ✗ {title}")
            raise
        note = f": {'; '.join(notes)}" if notes else ""
        self.report(f" ✓ {title}{note} ({time.monotonic() - start:.1f}s)")

    def skip(self, title: str, why: str) -> None:
        self.report(f" · {title}: {why}")
