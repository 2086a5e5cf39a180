"""The DNS64/NAT64 servers lazyjack's native runtime starts for a test node, found (and, after a failure, killed)
by the node's --root sandbox on their command lines."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from internet import sh

SERVERS = ("named", "unbound", "tayga")
STOP_TIMEOUT = 5.0


def cmdline(pid: int) -> list[str]:
    """The process's arguments; none for a process gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def server_pids(root: Path) -> dict[str, list[int]]:
    """named, unbound and tayga processes whose command line mentions the sandbox `root`, by program."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(int(entry.name))
        if argv and Path(argv[0]).name in SERVERS and any(Path(arg).is_relative_to(root) for arg in argv):
            found.setdefault(Path(argv[0]).name, []).append(int(entry.name))
    return found


def kill_servers(root: Path) -> None:
    pids = [pid for group in server_pids(root).values() for pid in group]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(cmdline(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}
