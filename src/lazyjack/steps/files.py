"""File steps: files lazyjack owns, and lazyjack's marked edits of /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

import base64
import difflib
import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from lazyjack.render.etcfiles import clean_markers, has_markers
from lazyjack.steps.base import Context, Outcome, Record, Step


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _decode(data: bytes) -> str:
    # Not every /etc/hosts is UTF-8 (a Latin-1 comment, say): keep such bytes as they are.
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def unified_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of two versions of a file, for --dry-run."""
    def lines(data: bytes | None) -> list[str]:
        return [] if data is None else data.decode("utf-8", "replace").splitlines(keepends=True)

    diff = difflib.unified_diff(
        lines(old), lines(new), fromfile=path if old is not None else "/dev/null",
        tofile=path if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)


def remove_created_dirs(ctx: Context, created: list[str]) -> list[str]:
    """Remove the directories a step created (outermost first in `created`) that are empty now."""
    files, removed = ctx.host.files, []
    for directory in reversed(created):
        if files.exists(directory) and not files.listdir(directory):
            files.rmdir(directory)
            removed.append(directory)
    return removed


def missing_dirs(ctx: Context, path: str) -> list[str]:
    """Parent directories of `path` that do not exist yet, outermost first."""
    missing: list[str] = []
    parent = posixpath.dirname(path)
    while parent not in ("/", "") and not ctx.host.files.exists(parent):
        missing.append(parent)
        parent = posixpath.dirname(parent)
    return list(reversed(missing))


@dataclass
class ManagedFile(Step):
    """A file whose whole content lazyjack decides (drop-in, CNI config, CA copies)."""

    kind = "file"
    path: str
    content: bytes
    mode: int = 0o644
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.path

    def plan(self, ctx: Context) -> Outcome:
        current = ctx.host.files.read_bytes(self.path)
        if current == self.content:
            return Outcome.noop(f"{self.path} is up to date")
        verb = "write" if current is None else "update"
        return Outcome.change(f"{verb} {self.path}", diff=unified_diff(self.path, current, self.content))

    def apply(self, ctx: Context) -> Record:
        files = ctx.host.files
        original = files.read_bytes(self.path)
        created_dirs = missing_dirs(ctx, self.path)
        try:
            for directory in created_dirs:
                files.makedirs(directory, mode=0o755)
            files.write_atomic(self.path, self.content, mode=self.mode)
        except BaseException:
            remove_created_dirs(ctx, created_dirs)
            raise
        return {
            "path": self.path,
            "original": _b64(original),
            "written": _digest(self.content),
            "created_dirs": created_dirs,
            "summary": self.title,
        }

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        files = ctx.host.files
        path = record["path"]
        current = files.read_bytes(path)
        original = _unb64(record["original"])
        changes: list[str] = []
        if current is not None and _digest(current) != record["written"] and original is None:
            # Edited after lazyjack wrote it: still ours to remove, but say so.
            changes.append(f"removed {path} (it was edited after lazyjack wrote it)")
            files.remove(path)
        elif original is None:
            if files.remove(path):
                changes.append(f"removed {path}")
        elif current != original:
            files.write_atomic(path, original)
            changes.append(f"restored {path}")
        changes += [f"removed {d}/" for d in remove_created_dirs(ctx, record.get("created_dirs", []))]
        return Outcome.change(*changes) if changes else Outcome.noop(f"{path} already as before")

    @classmethod
    def merge(cls, old: Record, new: Record) -> Record:
        """Keep the original content and backups; remember the newest content written."""
        merged = dict(new)
        for key in ("original", "created_dirs", "backup", "backup_original", "existed"):
            if key in old and (key not in ("backup", "backup_original") or old.get("backup")):
                merged[key] = old[key]
        return merged

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        verb = "remove" if record["original"] is None else "restore"
        return Outcome.change(f"{verb} {record['path']}")

    def remove(self, ctx: Context) -> Outcome:
        if ctx.host.files.remove(self.path):
            return Outcome.change(f"removed {self.path}")
        return Outcome.noop(f"{self.path} does not exist")

    def plan_remove(self, ctx: Context) -> Outcome:
        if ctx.host.files.exists(self.path):
            return Outcome.change(f"remove {self.path}")
        return Outcome.noop(f"{self.path} does not exist")


@dataclass
class MarkedEdit(Step):
    """lazyjack's tagged lines in /etc/hosts or /etc/resolv.conf (1.x markers), with a .bak copy."""

    kind = "marked-edit"
    path: str
    transform: Callable[[str], str]
    label: str

    @property
    def title(self) -> str:
        return self.label

    def _new(self, current: bytes) -> bytes:
        return _encode(self.transform(_decode(current)))

    def _current(self, ctx: Context) -> bytes:
        data = ctx.host.files.read_bytes(self.path)
        return b"" if data is None else data

    def plan(self, ctx: Context) -> Outcome:
        current = self._current(ctx)
        new = self._new(current)
        if new == current:
            return Outcome.noop(f"{self.path} already has the entries")
        return Outcome.change(f"edit {self.path}", diff=unified_diff(self.path, current, new))

    def apply(self, ctx: Context) -> Record:
        files = ctx.host.files
        existed = files.exists(self.path)
        current = self._current(ctx)
        new = self._new(current)
        backup = f"{self.path}.bak"
        backup_before = files.read_bytes(backup)
        if existed:
            files.write_atomic(backup, current)
        try:
            files.write_atomic(self.path, new)
        except BaseException:
            # Leave nothing half-done: the journal has no record of this step to undo it.
            if existed and backup_before is None:
                files.remove(backup)
            elif existed and backup_before is not None:
                files.write_atomic(backup, backup_before)
            raise
        return {
            "path": self.path,
            "existed": existed,
            "original": _b64(current),
            "written": _digest(new),
            "backup": backup if existed else None,
            "backup_original": _b64(backup_before),
            "summary": self.title,
        }

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        files = ctx.host.files
        path = record["path"]
        original = _unb64(record["original"]) or b""
        current = files.read_bytes(path)
        changes: list[str] = []
        if current is not None and _digest(current) == record["written"]:
            if record["existed"]:
                files.write_atomic(path, original)
                changes.append(f"restored {path} byte for byte")
            else:
                files.remove(path)
                changes.append(f"removed {path}")
        elif current is not None and has_markers(_decode(current)):
            # Someone edited the file since: keep their edits, take out only our lines.
            files.write_atomic(path, _encode(clean_markers(_decode(current))))
            changes.append(f"removed lazyjack's lines from {path} (it was edited since; other edits kept)")
        if record.get("backup"):
            before = _unb64(record.get("backup_original"))
            if before is None:
                if files.remove(record["backup"]):
                    changes.append(f"removed {record['backup']}")
            elif files.read_bytes(record["backup"]) != before:
                files.write_atomic(record["backup"], before)
        return Outcome.change(*changes) if changes else Outcome.noop(f"{path} has no lazyjack lines")

    merge = ManagedFile.merge

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"restore {record['path']}")

    def remove(self, ctx: Context) -> Outcome:
        current = ctx.host.files.read_bytes(self.path)
        if current is None or not has_markers(_decode(current)):
            return Outcome.noop(f"{self.path} has no lazyjack lines")
        ctx.host.files.write_atomic(self.path, _encode(clean_markers(_decode(current))))
        return Outcome.change(f"removed lazyjack's lines from {self.path}")

    def plan_remove(self, ctx: Context) -> Outcome:
        current = ctx.host.files.read_bytes(self.path)
        if current is None or not has_markers(_decode(current)):
            return Outcome.noop(f"{self.path} has no lazyjack lines")
        new = _encode(clean_markers(_decode(current)))
        return Outcome.change(f"remove lazyjack's lines from {self.path}", diff=unified_diff(self.path, current, new))


@dataclass
class KubeadmConfigFile(ManagedFile):
    """<work-area>/kubeadm.conf: the user may customise it between prepare and up.

    A later prepare that would change it keeps the current file as kubeadm.conf.bak.
    """

    kind = "kubeadm-config"

    def plan(self, ctx: Context) -> Outcome:
        outcome = super().plan(ctx)
        current = ctx.host.files.read_bytes(self.path)
        if outcome.needed and current is not None:
            return Outcome.change(
                f"update {self.path}, keeping the current file (customised?) as {self.path}.bak",
                diff=outcome.diff,
            )
        return outcome

    def apply(self, ctx: Context) -> Record:
        current = ctx.host.files.read_bytes(self.path)
        backup_before = ctx.host.files.read_bytes(self.path + ".bak")
        if current is not None:
            ctx.host.files.write_atomic(self.path + ".bak", current, mode=self.mode)
        try:
            record = super().apply(ctx)
        except BaseException:
            if current is not None and backup_before is None:
                ctx.host.files.remove(self.path + ".bak")
            elif backup_before is not None:
                ctx.host.files.write_atomic(self.path + ".bak", backup_before)
            raise
        record["backup"] = self.path + ".bak" if current is not None else None
        record["backup_original"] = _b64(backup_before)
        return record

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        # The backup first: a directory lazyjack created can only go once it is empty.
        backup: list[str] = []
        if record.get("backup"):
            before = _unb64(record.get("backup_original"))
            if before is None:
                if ctx.host.files.remove(record["backup"]):
                    backup.append(f"removed {record['backup']}")
            elif ctx.host.files.read_bytes(record["backup"]) != before:
                ctx.host.files.write_atomic(record["backup"], before)
        outcome = super().revert(ctx, record)
        changes = [*outcome.changes, *backup]
        return Outcome.change(*changes) if changes else outcome
