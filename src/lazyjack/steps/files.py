"""File steps: files lazyjack owns, and lazyjack's marked edits of /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

import base64
import difflib
import hashlib
import stat
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

from lazyjack.errors import HostError
from lazyjack.host.files import SECRET_FILE_MODE
from lazyjack.render.etcfiles import clean_markers, has_markers, hosts_with_nodes, resolv_with_nameserver
from lazyjack.steps.base import Context, Outcome, Record, Status, Step
from lazyjack.steps.records import FileRecord, MarkedEditRecord
from lazyjack.steps.shapes import make_parents, remove_created_dirs

if TYPE_CHECKING:
    from lazyjack.host.files import Files


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes | None) -> str | None:
    """File contents as a journal record keeps them (None: there was no file)."""
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
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


#: Why restore leaves a whole file lazyjack wrote as it finds it.
REWRITE = "restore does not rewrite whole files (someone may have edited it): `lazyjack prepare` (or `up`) writes it again"


def put_back(files: Files, path: str, original: bytes | None) -> str | None:
    """Give the file its `original` contents again, or remove it when there was none.

    Returns what was done ("removed PATH", "restored PATH"), or None when it already was so.
    """
    if original is None:
        return f"removed {path}" if files.remove(path) else None
    if files.read_bytes(path) != original:
        files.write_atomic(path, original)
        return f"restored {path}"
    return None


def keep_backup(files: Files, path: str, current: bytes | None, *, mode: int | None = None,
                secret: bool = False) -> Record:
    """Copy `current` (the file before this step) to PATH.bak, new with `mode` (0600 whatever it had, when the
    file may hold a `secret`); returns the record's backup keys.

    No file, no backup. What was at PATH.bak before is kept in the record, so that undo
    (`restore_backup`) puts that back.
    """
    backup = f"{path}.bak"
    before = files.read_bytes(backup)
    if current is not None and secret:
        files.write_secret(backup, current)
    elif current is not None:
        files.write_atomic(backup, current, mode=mode)
    return {"backup": backup if current is not None else None, "backup_original": b64(before)}


def restore_backup(files: Files, record: Record) -> list[str]:
    """Undo `keep_backup`: PATH.bak as it was before the step (removed when there was none)."""
    if not record.get("backup"):
        return []
    done = put_back(files, record["backup"], unb64(record.get("backup_original")))
    return [done] if done and record.get("backup_original") is None else []


@dataclass
class ManagedFile(Step):
    """A file whose whole content lazyjack decides (drop-in, CNI config, CA copies)."""

    kind = "file"
    record_model = FileRecord
    path: str
    content: bytes
    mode: int = 0o644
    label: str = ""
    #: It holds a secret (a key, a token): 0600 whatever mode a file there had (undo gives that back).
    secret: bool = False

    @property
    def title(self) -> str:
        return self.label or self.path

    def plan(self, ctx: Context) -> Outcome:
        current = ctx.host.files.read_bytes(self.path)
        if current == self.content and self.secret and (info := ctx.host.files.stat(self.path)) is not None \
                and stat.S_IMODE(info.st_mode) != SECRET_FILE_MODE:
            return Outcome.change(f"mode 0600 for {self.path} (it is {stat.S_IMODE(info.st_mode):04o}): it holds a "
                                  "secret")
        if current == self.content:
            return Outcome.noop(f"{self.path} is up to date")
        verb = "write" if current is None else "update"
        return Outcome.change(f"{verb} {self.path}", diff=unified_diff(self.path, current, self.content))

    def apply(self, ctx: Context) -> Record:
        files = ctx.host.files
        original = files.read_bytes(self.path)
        info = files.stat(self.path) if original is not None else None
        created_dirs = make_parents(ctx, self.path)
        try:
            if self.secret:
                files.write_secret(self.path, self.content)
            else:
                files.write_atomic(self.path, self.content, mode=self.mode)
        except BaseException:
            remove_created_dirs(ctx, created_dirs)
            raise
        record: Record = {
            "path": self.path,
            "original": b64(original),
            "written": _digest(self.content),
            "created_dirs": created_dirs,
            "summary": self.title,
        }
        if info is not None and self.secret:
            record["original_mode"] = stat.S_IMODE(info.st_mode)
        return record

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        files = ctx.host.files
        path = record["path"]
        current = files.read_bytes(path)
        original = unb64(record["original"])
        changes: list[str] = []
        if current is not None and _digest(current) != record["written"] and original is None:
            # Edited after lazyjack wrote it: still ours to remove, but say so.
            changes.append(f"removed {path} (it was edited after lazyjack wrote it)")
            files.remove(path)
        elif done := put_back(files, path, original):
            changes.append(done)
        mode = record.get("original_mode")
        if original is not None and mode is not None and (info := files.stat(path)) is not None \
                and stat.S_IMODE(info.st_mode) != mode:
            files.chmod(path, mode)  # a file that was there gets its mode back with its contents
            changes.append(f"mode {mode:04o} of {path} restored")
        changes += [f"removed {d}/" for d in remove_created_dirs(ctx, record.get("created_dirs", []))]
        return Outcome.change(*changes) if changes else Outcome.noop(f"{path} already as before")

    @classmethod
    def merge(cls, old: Record, new: Record) -> Record:
        """Keep the original content and backups; remember the newest content written."""
        merged = dict(new)
        for key in ("original", "original_mode", "created_dirs", "backup", "backup_original", "existed"):
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

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        path = record["path"]
        current = ctx.host.files.read_bytes(path)
        if current is None:
            return Status.missing(f"{path} is gone", fix=REWRITE)
        if _digest(current) != record["written"]:
            return cls.edited(path)
        return Status.ok(f"{path} as lazyjack wrote it")

    @classmethod
    def edited(cls, path: str) -> Status:
        """What check says of a file whose content is not the one lazyjack wrote."""
        return Status.drifted(f"{path} was changed since lazyjack wrote it", fix=REWRITE)


def marked_transform(edit: Record) -> Callable[[str], str]:
    """The text edit a MarkedEdit record describes: {"hosts": [[name, ip], ...]} or {"nameserver": ip}."""
    if "hosts" in edit:
        entries = [(name, ip_address(ip)) for name, ip in edit["hosts"]]
        return lambda text: hosts_with_nodes(text, entries)
    nameserver = ip_address(edit["nameserver"])
    return lambda text: resolv_with_nameserver(text, nameserver)


@dataclass
class MarkedEdit(Step):
    """lazyjack's tagged lines in /etc/hosts or /etc/resolv.conf (1.x markers), with a .bak copy.

    `edit` says which lines ({"hosts": [[name, ip], ...]} or {"nameserver": ip}); the record keeps
    it, so that status and restore can tell and mend lazyjack's lines after the config changed.
    """

    kind = "marked-edit"
    record_model = MarkedEditRecord
    path: str
    edit: Record
    label: str

    @property
    def title(self) -> str:
        return self.label

    @property
    def transform(self) -> Callable[[str], str]:
        return marked_transform(self.edit)

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
        backup = keep_backup(files, self.path, current if existed else None)
        try:
            files.write_atomic(self.path, new)
        except BaseException:
            # Leave nothing half-done: the journal has no record of this step to undo it.
            restore_backup(files, backup)
            raise
        return {
            "path": self.path,
            "existed": existed,
            "original": b64(current),
            "written": _digest(new),
            "edit": self.edit,
            **backup,
            "summary": self.title,
        }

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        files = ctx.host.files
        path = record["path"]
        original = unb64(record["original"]) or b""
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
        changes += restore_backup(files, record)
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

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        path = record["path"]
        current = ctx.host.files.read_bytes(path)
        if "edit" not in record:  # journaled by an earlier lazyjack: only the bytes it wrote are known
            if current is not None and _digest(current) == record["written"]:
                return Status.ok(f"{path} as lazyjack wrote it")
            return Status.drifted(f"{path} was changed since lazyjack wrote it", fix="`lazyjack prepare` edits it again")
        if current is None:
            return Status.missing(f"{path} is gone")
        new = _encode(marked_transform(record["edit"])(_decode(current)))
        if new == current:
            return Status.ok(f"{path} has lazyjack's lines")
        old_lines, new_lines = _decode(current).splitlines(), _decode(new).splitlines()
        details = [f"{path}: line {line.strip()!r} missing" for line in new_lines if line not in old_lines]
        details += [f"{path}: line {line.strip()!r} is not lazyjack's (restore replaces or disables it)"
                    for line in old_lines if line not in new_lines]
        return Status.drifted(*details, diff=unified_diff(path, current, new))

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        """Only lazyjack's marked lines change (the 1.x rules); the record kept for clean is not touched.

        The returned record is what revert needs to put back the file as restore found it.
        """
        step = cls(record["path"], record["edit"], str(record.get("summary", record["path"])))
        files = ctx.host.files
        existed = files.exists(step.path)
        current = step._current(ctx)
        new = step._new(current)
        files.write_atomic(step.path, new)
        return {"path": step.path, "existed": existed, "original": b64(current), "written": _digest(new),
                "edit": step.edit, "backup": None, "backup_original": None, "summary": step.title}


@dataclass
class KubeadmConfigFile(ManagedFile):
    """<work-area>/kubeadm.conf: the user may customise it between prepare and up.

    A later prepare that would change it keeps the current file as kubeadm.conf.bak.
    """

    kind = "kubeadm-config"

    def plan(self, ctx: Context) -> Outcome:
        outcome = super().plan(ctx)
        current = ctx.host.files.read_bytes(self.path)
        if outcome.needed and current is not None and current != self.content:
            return Outcome.change(
                f"update {self.path}, keeping the current file (customised?) as {self.path}.bak",
                diff=outcome.diff,
            )
        return outcome

    def apply(self, ctx: Context) -> Record:
        files = ctx.host.files
        current = files.read_bytes(self.path)
        # Only a file with other contents is kept aside (for the mode alone there is nothing to keep).
        kept = current if current != self.content else None
        backup = keep_backup(files, self.path, kept, mode=self.mode, secret=self.secret)
        try:
            record = super().apply(ctx)
        except BaseException:
            restore_backup(files, backup)
            raise
        return {**record, **backup}

    @classmethod
    def edited(cls, path: str) -> Status:
        return Status.ok(f"{path} customised since lazyjack wrote it (yours to edit)")

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        # The backup first: a directory lazyjack created can only go once it is empty.
        backup = restore_backup(ctx.host.files, record)
        outcome = super().revert(ctx, record)
        changes = [*outcome.changes, *backup]
        return Outcome.change(*changes) if changes else outcome


@dataclass
class Symlink(Step):
    """A symbolic link lazyjack makes (a unit's `.wants/` link, as `systemctl enable` makes it)."""

    kind = "symlink"
    path: str
    target: str
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.path

    def plan(self, ctx: Context) -> Outcome:
        files = ctx.host.files
        current = files.readlink(self.path)
        if current == self.target:
            return Outcome.noop(f"{self.path} -> {self.target} exists")
        if current is not None or files.exists(self.path):
            raise HostError(f"{ctx.real_path(self.path)} exists and is not a link to {self.target}; "
                            "lazyjack does not replace it: remove it and run again")
        return Outcome.change(f"link {self.path} -> {self.target}")

    def apply(self, ctx: Context) -> Record:
        return self._make(ctx, self.path, self.target, self.title)

    @staticmethod
    def _make(ctx: Context, path: str, target: str, title: str) -> Record:
        created = make_parents(ctx, path)
        try:
            ctx.host.files.symlink(path, target)
        except BaseException:
            remove_created_dirs(ctx, created)
            raise
        return {"path": path, "target": target, "created_dirs": created, "summary": title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        path, files = record["path"], ctx.host.files
        changes = []
        if files.readlink(path) == record["target"] and files.remove(path):
            changes.append(f"removed {path}")
        changes += [f"removed {d}/" for d in remove_created_dirs(ctx, record.get("created_dirs", []))]
        return Outcome.change(*changes) if changes else Outcome.noop(f"{path} is gone")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"remove {record['path']}")

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        path, target = record["path"], record["target"]
        current = ctx.host.files.readlink(path)
        if current == target:
            return Status.ok(f"{path} -> {target}")
        if current is None and not ctx.host.files.exists(path):
            return Status.missing(f"{path} is gone")
        return Status.drifted(f"{path} is no longer a link to {target}", fix="someone replaced it; lazyjack leaves it")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        return cls._make(ctx, record["path"], record["target"], str(record.get("summary", record["path"])))
