"""External programs: argv lists only, a timeout on every call, output kept for errors; and how processes end.

`stop_groups` ends programs started in process groups of their own, `stop_pids` processes known
by pid (servers, strays), both SIGTERM first and SIGKILL after a grace period; `alive` reads /proc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lazyjack.errors import CommandFailed

ProgressCallback = Callable[[float], None]

# After SIGTERM to a timed-out program's group, how long it gets before SIGKILL, and how
# long to wait for the pipes to close afterwards.
TERM_GRACE = 2.0
DRAIN_TIMEOUT = 2.0


@dataclass(frozen=True)
class Completed:
    """A program that ran to its end."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, as kept in CommandFailed."""
        return _joined(self.stdout, self.stderr)


class RunnerAPI(Protocol):
    """What steps use to find and run programs."""

    def which(self, name: str) -> str | None: ...

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        on_progress: ProgressCallback | None = None,
        progress_interval: float = 5.0,
    ) -> Completed: ...


def _joined(stdout: str, stderr: str) -> str:
    if stdout and stderr and not stdout.endswith("\n"):
        return f"{stdout}\n{stderr}"
    return stdout + stderr


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


class Runner:
    """Runs programs found on PATH, each in its own process group so a timeout ends them all."""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        on_progress: ProgressCallback | None = None,
        progress_interval: float = 5.0,
    ) -> Completed:
        """Run argv and wait for it, at most `timeout` seconds.

        `env` adds to (or overrides in) the inherited environment; its PATH, if any, is also
        where the program is looked for. stdin is `input`, or empty. `on_progress` is called
        with the elapsed seconds about every `progress_interval` seconds while it runs.

        Raises CommandFailed: when the program is not found on PATH or cannot start, when it
        runs out of time (its process group is terminated), and, with `check`, when it exits
        non-zero. Each keeps argv and the output so far.
        """
        if not argv:
            raise ValueError("run() needs a program to run")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        argv = list(argv)
        full_env = {**os.environ, **env} if env is not None else None
        executable = argv[0]
        if os.sep not in executable:
            search = (full_env or os.environ).get("PATH", os.defpath)
            found = shutil.which(executable, path=search)
            if found is None:
                raise CommandFailed(argv, None, "", reason="not found on PATH")
            executable = found
        try:
            proc = subprocess.Popen(
                argv,
                executable=executable,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                # Its own process group: on timeout the whole tree can be signalled.
                start_new_session=True,
            )
        except OSError as e:
            reason = "not found" if isinstance(e, FileNotFoundError) else "could not be started"
            raise CommandFailed(argv, None, "", reason=f"{reason}: {e.strerror}") from e

        try:
            stdout, stderr = self._wait(proc, input, timeout, on_progress, progress_interval)
        except subprocess.TimeoutExpired as e:
            out, err, stuck = _stop_group(proc)
            output = _joined(_text(out or _as_bytes(e.stdout)), _text(err or _as_bytes(e.stderr)))
            why = f"; it did not stop after SIGKILL either: {describe_stuck(stuck)}" if stuck else ""
            raise CommandFailed(argv, None, output, reason=f"timed out after {timeout:g}s{why}") from None
        except BaseException:
            # KeyboardInterrupt, or on_progress raised: leave nothing running behind us.
            _stop_group(proc)
            raise

        done = Completed(argv, proc.returncode, _text(stdout), _text(stderr))
        if check and done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.output)
        return done

    @staticmethod
    def _wait(
        proc: subprocess.Popen[bytes],
        input: bytes | None,
        timeout: float,
        on_progress: ProgressCallback | None,
        interval: float,
    ) -> tuple[bytes, bytes]:
        start = time.monotonic()
        deadline = start + timeout
        next_report = start + interval
        pending_input = input
        while True:
            now = time.monotonic()
            until = deadline if on_progress is None else min(deadline, next_report)
            try:
                # communicate() waits on the process and its pipes; called again after a
                # TimeoutExpired it carries on without losing output.
                return proc.communicate(pending_input, timeout=max(until - now, 0.0))
            except subprocess.TimeoutExpired:
                pending_input = None
                now = time.monotonic()
                if now >= deadline:
                    raise
                if on_progress is not None and now >= next_report:
                    on_progress(now - start)
                    while next_report <= now:
                        next_report += interval


def _as_bytes(data: bytes | str | None) -> bytes:
    if isinstance(data, str):
        return data.encode()
    return data or b""


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group outlives its leader while children remain; gone means nothing to do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_groups(procs: Sequence[subprocess.Popen[bytes]], *, grace: float) -> list[int]:
    """End programs started in process groups of their own: SIGTERM to each group, then SIGKILL to
    each group once its leader has ended or `grace` seconds have passed, for whatever is left in it.

    Returns once every leader has ended, or `grace` more seconds after SIGKILL: the pids of the
    leaders that still run then (a process stuck in the kernel ignores even SIGKILL), so that the
    caller can say what did not stop. A program already reaped is left alone: its group id may
    have gone to another process since.
    """
    running = [p for p in procs if p.returncode is None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(deadline - time.monotonic(), 0.0))
        _signal_group(proc, signal.SIGKILL)
    deadline = time.monotonic() + grace
    stuck = []
    for proc in running:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            stuck.append(proc.pid)
    return stuck


def describe_stuck(pids: Sequence[int]) -> str:
    """`1234 (named, state D)` for each pid that did not stop: what it runs and why it may not end."""
    def one(pid: int) -> str:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            name = "?"
        return f"{pid} ({name}, state {process_state(pid) or 'gone'})"

    return ", ".join(one(pid) for pid in pids)


def process_state(pid: int) -> str:
    """The state letter /proc gives the process (R, S, D, Z, ...), or "" when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def cmdline(pid: int) -> list[str]:
    """The process's arguments; none for a process gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """Whether the process runs: it exists and is neither a zombie nor dead."""
    return process_state(pid) not in ("", "Z", "X")


def _reap(pid: int) -> None:
    # A process this very one started (a daemon, then stopped by a rollback) is its child: reap it,
    # or it stays a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pids(pids: Sequence[int], *, grace: float, poll: float = 0.05) -> list[int]:
    """SIGTERM to each process, SIGKILL to whatever still runs after `grace` seconds; waits up to
    `grace` again for those to end. Gone already counts as stopped. Returns the pids that still
    run (stuck in the kernel: even SIGKILL waits for that), for the caller to say so."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while True:
            for pid in pids:
                _reap(pid)
            if not any(alive(p) for p in pids):
                return []
            if time.monotonic() >= deadline:
                break
            time.sleep(poll)
    return [p for p in pids if alive(p)]


def _stop_group(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes, list[int]]:
    """Terminate the program's process group and collect what it wrote; the pids that did not stop."""
    stuck = stop_groups([proc], grace=TERM_GRACE)
    if stuck:
        # Its pipes stay open as long as it lives: do not wait to read them.
        _close_pipes(proc)
        return b"", b"", stuck
    try:
        out, err = proc.communicate(timeout=DRAIN_TIMEOUT)
    except (subprocess.TimeoutExpired, ValueError):
        # A descendant that left the group still holds the pipes (or an earlier attempt closed them):
        # stop reading.
        _close_pipes(proc)
        return b"", b"", []
    return out or b"", err or b"", []


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
