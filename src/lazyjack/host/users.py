"""The users of the host, and files in a directory a user controls (their home), handled as that user.

lazyjack runs as root; a user who may run `sudo lazyjack` controls their home. Root must not
follow a link the user made there (`~/.kube -> /etc`) nor write a file they could swap: every
read and write in a user's directory happens in a child process that has dropped to the user's
uid and gids, relative to a descriptor of the directory that root opened, and never follows a
symbolic link below it (each component is opened with O_NOFOLLOW). What the user can reach that
way, they could reach anyway; what they own is theirs, so ownership is right by construction.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lazyjack.errors import HostError
from lazyjack.host.files import open_directory, write_at

#: The longest a child acting as the user may take (a home on a hung network mount, say).
CHILD_TIMEOUT = 30.0


@dataclass(frozen=True)
class User:
    """An account: its name, uid, primary gid and home directory (a host path, before --root)."""

    name: str
    uid: int
    gid: int
    home: str


class UsersAPI(Protocol):
    def lookup(self, name: str) -> User | None: ...


class SystemUsers:
    """The accounts of this machine (the password database)."""

    def lookup(self, name: str) -> User | None:
        import pwd

        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


class UserFiles:
    """Files under `home` (the real path of a user's home directory), read and written as `user`.

    Paths are relative to the home ("`.kube/config`"); no component may be a symbolic link.
    Every error is a HostError that names the path as the user knows it (`~alice/.kube`).
    """

    def __init__(self, user: User, home: Path, *, owned: bool = True) -> None:
        self.user = user
        self.home = home
        #: The directory must belong to the user (a home); False for a shared one (/tmp) they may write in.
        self.owned = owned

    def where(self, relative: str) -> str:
        return f"~{self.user.name}/{relative}"

    # --- the operations -------------------------------------------------------------------------

    def read(self, relative: str) -> bytes | None:
        """The file's contents, or None when it (or a directory on the way) does not exist."""
        result = self._as_user(lambda home: _read(home, _parts(relative)), relative)
        return None if result is None else bytes.fromhex(result)

    def write(self, relative: str, data: bytes, *, mode: int = 0o600, dir_mode: int = 0o700) -> list[str]:
        """Replace the file all at once (temp file beside it, fsync, rename), made with `mode`, and its
        missing directories with `dir_mode`; returns the directories made (relative), outermost first."""
        hexdata = data.hex()
        made: list[str] = self._as_user(lambda home: _write(home, _parts(relative), hexdata, mode, dir_mode),
                                        relative)
        return made

    def remove(self, relative: str) -> bool:
        """Remove the file (a link itself); False when it is not there."""
        removed: bool = self._as_user(lambda home: _remove(home, _parts(relative)), relative)
        return removed

    def rmdir(self, relative: str) -> bool:
        """Remove the directory if it is empty; False when it is not there or not empty."""
        removed: bool = self._as_user(lambda home: _remove(home, _parts(relative), directory=True), relative)
        return removed

    # --- as the user, in a child ------------------------------------------------------------------

    def _open_home(self) -> int:
        try:
            fd = open_directory(self.home)
        except FileNotFoundError:
            raise HostError(f"the home directory of {self.user.name}, {self.home}, does not exist") from None
        except OSError as exc:
            raise HostError(f"cannot open the home directory of {self.user.name}, {self.home}: {exc.strerror}") \
                from None
        info = os.fstat(fd)
        if self.owned and info.st_uid != self.user.uid:
            os.close(fd)
            raise HostError(f"the home directory of {self.user.name}, {self.home}, belongs to uid {info.st_uid}, "
                            f"not to {self.user.name} ({self.user.uid}); lazyjack writes nothing there")
        return fd

    def _as_user(self, action: Callable[[int], Any], relative: str) -> Any:
        """Run `action(home_fd)` in a child with the user's uid and gid; its JSON result, or its error raised here."""
        me = os.geteuid()
        if me != 0 and me != self.user.uid:
            raise HostError(f"only root can act as {self.user.name} in {self.where(relative)}")
        home = self._open_home()
        try:
            reader, writer = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: only system calls from here, then _exit
                os.close(reader)
                _child(writer, home, self.user, action)
            os.close(writer)
            answer = _collect(reader, pid)
        finally:
            os.close(home)
        if "error" in answer:
            code, text = answer["error"]
            raise HostError(f"{self.where(relative)} (as {self.user.name}): {text}"
                            + (f" ({errno.errorcode.get(code, code)})" if code else ""))
        return answer["ok"]


def _child(writer: int, home: int, user: User, action: Callable[[int], Any]) -> None:
    status = 0
    try:
        try:
            if os.geteuid() == 0:
                os.setgroups([user.gid])
                os.setresgid(user.gid, user.gid, user.gid)
                os.setresuid(user.uid, user.uid, user.uid)
            os.umask(0o077)
            answer: dict[str, Any] = {"ok": action(home)}
        except OSError as exc:
            answer = {"error": [exc.errno or 0, exc.strerror or str(exc)]}
        except Exception as exc:  # a refusal (a link, not a directory), said as it is
            answer = {"error": [0, str(exc)]}
        os.write(writer, json.dumps(answer).encode())
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _collect(reader: int, pid: int) -> dict[str, Any]:
    """The child's answer; it is stopped (and said so) when it takes longer than CHILD_TIMEOUT."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([reader], [], [], max(left, 0))
            if not ready:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                gone = _reaped(pid, within=CHILD_TIMEOUT)
                raise HostError(f"acting as the user did not finish within {CHILD_TIMEOUT:g}s; pid {pid} "
                                + ("was stopped" if gone else "did not stop after SIGKILL either"))
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
    # It closed its end of the pipe: it is exiting, but a wait is bounded all the same.
    status = _reaped(pid, within=CHILD_TIMEOUT)
    if status is None:
        raise HostError(f"acting as the user: pid {pid} did not exit within {CHILD_TIMEOUT:g}s of answering")
    if not chunks or status != 0:
        raise HostError(f"acting as the user failed (pid {pid} exited with status {status})")
    answer: dict[str, Any] = json.loads(b"".join(chunks))
    return answer


def _reaped(pid: int, *, within: float) -> int | None:
    """The child's exit status once it has ended, at most `within` seconds from now; None if it has not."""
    deadline = time.monotonic() + within
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


class _Refused(Exception):
    """A path lazyjack will not use (a symbolic link, not a directory); the message says which."""


def _parts(relative: str) -> list[str]:
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise HostError(f"{relative!r} is not a plain path below a home directory")
    return parts


def _open_dir(parent: int, name: str, *, make: int | None = None) -> tuple[int, bool]:
    """A descriptor of the directory `name` in `parent`, never through a link; made with mode `make` if missing."""
    made = False
    if make is not None:
        try:
            os.mkdir(name, make, dir_fd=parent)
            made = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            kind = "a symbolic link" if _is_link(parent, name) else "not a directory"
            raise _Refused(f"{name} is {kind}; lazyjack does not follow it (remove it and run again)") from None
        raise
    return fd, made


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _walk(home: int, directories: list[str], *, make: int | None = None) -> tuple[int, list[str]] | None:
    """A descriptor of the directory `directories` name below home (None when one is missing and not made)."""
    fd, made = os.dup(home), []
    try:
        for index, name in enumerate(directories):
            try:
                inner, new = _open_dir(fd, name, make=make)
            except FileNotFoundError:
                os.close(fd)
                return None
            os.close(fd)
            fd = inner
            if new:
                made.append("/".join(directories[: index + 1]))
    except BaseException:
        os.close(fd)
        raise
    return fd, made


def _read(home: int, parts: list[str]) -> str | None:
    found = _walk(home, parts[:-1])
    if found is None:
        return None
    directory, _ = found
    try:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused(f"{parts[-1]} is a symbolic link; lazyjack does not follow it (remove it and run "
                               "again)") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Refused(f"{parts[-1]} is not a regular file")
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks).hex()
        finally:
            os.close(fd)
    finally:
        os.close(directory)


def _write(home: int, parts: list[str], hexdata: str, mode: int, dir_mode: int) -> list[str]:
    found = _walk(home, parts[:-1], make=dir_mode)
    assert found is not None
    directory, made = found
    try:
        write_at(directory, parts[-1], bytes.fromhex(hexdata), mode=mode)
    except BaseException:
        for made_dir in reversed(made):  # leave no directory behind that this call made
            with contextlib.suppress(OSError):
                os.rmdir(made_dir, dir_fd=home)
        raise
    finally:
        os.close(directory)
    return made


def _remove(home: int, parts: list[str], *, directory: bool = False) -> bool:
    """Unlink the file (or remove the empty `directory`) at `parts` below `home`; False when it is not there
    (or, a directory, not empty)."""
    found = _walk(home, parts[:-1])
    if found is None:
        return False
    parent, _ = found
    try:
        if directory:
            os.rmdir(parts[-1], dir_fd=parent)
        else:
            os.unlink(parts[-1], dir_fd=parent)
        return True
    except OSError as exc:
        if exc.errno == errno.ENOENT or (directory and exc.errno in (errno.ENOTEMPTY, errno.EEXIST)):
            return False
        raise
    finally:
        os.close(parent)
