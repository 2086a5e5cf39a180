"""An exclusive lock held through a pid file that exists only while the lock is held."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lazyjack.errors import HostError


class Locked(HostError):
    """Another process holds the lock; `holder` is its pid as it wrote it."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is held by pid {holder}")


def _try_lock(path: Path) -> int | str:
    """The locked descriptor, or the holder's pid when another process has it."""
    while True:
        # A holder that just released may have removed the (then empty) directory as well.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            return holder
        # The holder before us may have removed the file after we opened it: lock the file there now.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def pid_lock(path: Path, *, wait: float = 0.0, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `path` exclusively; wait up to `wait` seconds for another holder, then raise Locked.

    The file holds this process's pid while locked and is removed on release, so nothing is
    left behind; `waiting` is told once, with the holder's pid, when we have to wait.
    """
    deadline = time.monotonic() + wait
    told = False
    while True:
        got = _try_lock(path)
        if isinstance(got, int):
            break
        if time.monotonic() >= deadline:
            raise Locked(path, got)
        if waiting is not None and not told:
            waiting(got)
            told = True
        time.sleep(0.1)
    fd = got
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.unlink(path)
        os.close(fd)
