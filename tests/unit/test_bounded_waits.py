"""Every wait on a process is bounded, and what did not stop is named.

A process stuck in the kernel (state D, on a hung mount) does not end even on SIGKILL. A kernel
thread plays one here for real: it ignores every signal, SIGKILL included, and stays.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lazyjack.errors import HostError
from lazyjack.host.daemon import Daemons
from lazyjack.host.process import describe_stuck, stop_pids

PF_KTHREAD = 0x00200000


def _kernel_thread() -> int:
    """kthreadd, the kernel threads' parent: signals to it change nothing (checked by its flags, not just its pid)."""
    stat = Path("/proc/2/stat").read_text()
    comm, flags = stat.split("(", 1)[1].split(")")[0], int(stat.rsplit(")", 1)[1].split()[6])
    if comm != "kthreadd" or not flags & PF_KTHREAD:
        pytest.fail(f"pid 2 is {comm!r} (flags {flags:#x}), not the kernel's kthreadd: this test needs a plain host")
    return 2


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="signalling a kernel thread needs root (CI runs as root)")


@needs_root
def test_stop_pids_gives_up_after_its_grace_and_names_what_did_not_stop() -> None:
    pid = _kernel_thread()
    start = time.monotonic()
    assert stop_pids([pid], grace=0.2, poll=0.02) == [pid]
    assert time.monotonic() - start < 2.0  # SIGTERM's grace and SIGKILL's, not forever
    assert describe_stuck([pid]) == f"{pid} (kthreadd, state S)"


@needs_root
def test_a_daemon_that_does_not_stop_is_an_error_naming_it(tmp_path: Path) -> None:
    pid = _kernel_thread()

    class Trusted(Daemons):
        """The pid file's process is taken for ours (what `running` checks is tested elsewhere)."""

        def running(self, pid_file: Path, *, program: str) -> int | None:
            return pid

    start = time.monotonic()
    with pytest.raises(HostError, match=rf"named did not stop within 0.4s of SIGTERM and SIGKILL: {pid} \(kthreadd"):
        Trusted().stop(tmp_path / "named.pid", program="named", timeout=0.2)
    assert time.monotonic() - start < 3.0

