"""The pid-file lock: exclusive, names the holder, waits when asked, survives its directory being removed."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from pathlib import Path

import pytest

from lazyjack.host.lock import Locked, pid_lock


def _hold(path: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    with pid_lock(Path(path)):
        ready.set()
        release.wait(10)


def test_a_second_holder_is_refused_with_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lock"
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    other = multiprocessing.Process(target=_hold, args=(str(path), ready, release))
    other.start()
    try:
        assert ready.wait(10)
        with pytest.raises(Locked) as refused, pid_lock(path):
            pass
        assert refused.value.holder == str(other.pid)
    finally:
        release.set()
        other.join(10)
    assert not path.exists()


def test_waiting_ends_when_the_holder_leaves_even_if_it_removed_the_directory(tmp_path: Path) -> None:
    base = tmp_path / "state"
    path = base / "lock"
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    other = multiprocessing.Process(target=_hold, args=(str(path), ready, release))
    other.start()
    told: list[str] = []
    try:
        assert ready.wait(10)

        def leave() -> None:
            release.set()
            other.join(10)
            shutil.rmtree(base)  # what a releasing holder does with an empty state directory

        started = time.monotonic()
        with pid_lock(path, wait=10, waiting=lambda holder: (told.append(holder), leave())):
            assert path.read_text().strip() == str(os.getpid())
        assert time.monotonic() - started < 10
    finally:
        release.set()
        other.join(10)
    assert told == [str(other.pid)]
    assert not path.exists()
