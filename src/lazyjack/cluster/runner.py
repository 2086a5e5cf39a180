"""Running node commands as local processes: many at once, bounded, each node's output in its log file.

One thread watches every process (selectors): output goes to the node's log as it comes, a
process past its deadline is stopped, and on Ctrl-C or SIGTERM every running command is
stopped so that its node rolls its own run back (Ctrl-C into an SSH terminal, SIGTERM to a
local process group), with a grace period before harder signals.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lazyjack.cluster.transport import Launch

#: How long a stopped node command gets to roll its run back before its connection is cut.
ROLLBACK_GRACE = 60.0
#: After cutting it (SIGTERM to ssh: the remote terminal hangs up), before SIGKILL.
KILL_GRACE = 10.0
#: How long to read what is left in a pipe after its process ended (a forked ssh master may hold it).
DRAIN = 0.5
TICK = 0.1
CTRL_C = b"\x03"


@dataclass
class Task:
    """One command on one node."""

    node: str
    command: str
    launch: Launch
    log: Path
    timeout: float
    stdin: bytes | None = None


@dataclass
class Result:
    """How a task ended: returncode None when it was stopped (timeout or interrupt)."""

    node: str
    command: str
    returncode: int | None
    seconds: float
    output: str
    started: float = 0.0
    ended: float = 0.0
    stopped: str = ""  # "timeout" or "interrupted"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> list[str]:
        return [line for line in self.output.rstrip().splitlines() if line.strip()][-lines:]


@dataclass
class _Running:
    task: Task
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float
    deadline: float
    chunks: list[bytes] = field(default_factory=list)
    stage: int = 0  # 0 running, 1 asked to stop, 2 connection cut, 3 killed
    stage_at: float = 0.0
    stopped: str = ""
    exited_at: float | None = None
    # Whether its output pipe is still watched. Kept here, not asked of the selector: an interrupt may come
    # after the pipe closed, and a selector cannot look up a closed file.
    watched: bool = True
    result: Result | None = None


def _stdin_of(task: Task) -> int | None:
    if task.stdin is None:
        return subprocess.PIPE if task.launch.interrupt_by_tty else subprocess.DEVNULL
    # A memory file: the input never lands on disk (it may hold the bootstrap token).
    fd = os.memfd_create("lazyjack-stdin", os.MFD_CLOEXEC)
    os.write(fd, task.stdin)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Runner:
    """Runs tasks with at most `parallel` at once; `on_done` hears of each as it ends."""

    def __init__(self, *, parallel: int, on_done: Callable[[Result], None] | None = None) -> None:
        self.parallel = max(1, parallel)
        self.on_done = on_done or (lambda result: None)

    def run(self, tasks: list[Task]) -> list[Result]:
        """Results in the order of `tasks`. Interrupted: every running task is stopped, then re-raised."""
        waiting = list(tasks)
        running: list[_Running] = []
        done: dict[int, Result] = {}
        selector = selectors.DefaultSelector()
        try:
            while waiting or running:
                while waiting and len(running) < self.parallel:
                    running.append(self._start(waiting.pop(0), selector))
                self._pump(selector, running, done, tasks)
        except KeyboardInterrupt:
            # Tasks still waiting never start: the orchestrator reports them as not started.
            self._stop_all(selector, running, done, tasks)
            raise
        finally:
            selector.close()
        return [done[i] for i in range(len(tasks))]

    def _start(self, task: Task, selector: selectors.BaseSelector) -> _Running:
        task.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(task.log, "ab")  # noqa: SIM115 - closed when the task ends
        log.write(f"\n===== {task.command} on {task.node}: {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        stdin = _stdin_of(task)
        try:
            proc = subprocess.Popen(task.launch.argv, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env={**os.environ, **task.launch.env},
                                    start_new_session=True)
        except OSError as exc:
            log.close()
            raise OSError(exc.errno, f"cannot start {task.launch.argv[0]}: {exc.strerror}") from exc
        finally:
            if isinstance(stdin, int) and stdin >= 0:
                os.close(stdin)
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        now = time.monotonic()
        entry = _Running(task, proc, log, now, now + task.timeout)
        selector.register(proc.stdout, selectors.EVENT_READ, entry)
        return entry

    def _pump(self, selector: selectors.BaseSelector, running: list[_Running], done: dict[int, Result],
              tasks: list[Task]) -> None:
        if selector.get_map():
            for key, _ in selector.select(TICK):
                self._read(selector, key.data)
        else:
            time.sleep(TICK)
        now = time.monotonic()
        for entry in list(running):
            if entry.proc.poll() is None:
                if now > entry.deadline and entry.stage == 0:
                    entry.stopped = "timeout"
                    self._signal(entry)
                elif entry.stage:
                    self._escalate(entry, now)
                continue
            entry.exited_at = entry.exited_at or now
            if entry.watched and now - entry.exited_at < DRAIN:
                continue
            self._finish(selector, entry, done, tasks)
            running.remove(entry)

    def _read(self, selector: selectors.BaseSelector, entry: _Running) -> None:
        pipe = entry.proc.stdout
        assert pipe is not None
        try:
            data = os.read(pipe.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            selector.unregister(pipe)
            entry.watched = False
            return
        # A remote terminal ends lines with CR LF.
        data = data.replace(b"\r\n", b"\n")
        entry.chunks.append(data)
        entry.log.write(data)
        entry.log.flush()

    def _finish(self, selector: selectors.BaseSelector, entry: _Running, done: dict[int, Result],
                tasks: list[Task]) -> None:
        """Close the task's pipes and log, and hand on its result; again after an interrupt half-way, it does
        what is left."""
        pipe = entry.proc.stdout
        assert pipe is not None
        if entry.watched:
            selector.unregister(pipe)
            entry.watched = False
        pipe.close()
        if entry.proc.stdin is not None:
            with contextlib.suppress(OSError):
                entry.proc.stdin.close()
        if entry.result is None:
            ended = time.monotonic()
            code = entry.proc.returncode
            output = b"".join(entry.chunks).decode("utf-8", "replace")
            entry.result = Result(entry.task.node, entry.task.command, None if entry.stopped == "timeout" else code,
                                  ended - entry.started, output, entry.started, ended, entry.stopped)
        if not entry.log.closed:
            note = {"timeout": f"(stopped after {entry.task.timeout:g}s)",
                    "interrupted": "(stopped: the cluster run was interrupted)"}.get(entry.stopped)
            if note:
                entry.log.write(f"\n{note}\n".encode())
            entry.log.write(f"===== exit {entry.proc.returncode} after {entry.result.seconds:.1f}s =====\n".encode())
            entry.log.close()
        index = next((i for i, t in enumerate(tasks) if t is entry.task and i not in done), None)
        if index is not None:
            done[index] = entry.result
            self.on_done(entry.result)

    def _signal(self, entry: _Running) -> None:
        """Ctrl-C into its terminal (SSH) or SIGTERM to its group: the node rolls its run back."""
        entry.stage, entry.stage_at = 1, time.monotonic()
        if entry.task.launch.interrupt_by_tty and entry.proc.stdin is not None:
            try:
                entry.proc.stdin.write(CTRL_C)
                entry.proc.stdin.flush()
                return
            except OSError:
                pass
        _kill(entry, signal.SIGTERM)

    def _escalate(self, entry: _Running, now: float) -> None:
        """Past the grace period: cut an SSH connection (the node's terminal hangs up), then SIGKILL."""
        waited = now - entry.stage_at
        if entry.stage == 1 and waited > ROLLBACK_GRACE:
            if entry.task.launch.interrupt_by_tty:
                entry.stage, entry.stage_at = 2, now
                _kill(entry, signal.SIGTERM)
            else:
                entry.stage = 3
                _kill(entry, signal.SIGKILL)
        elif entry.stage == 2 and waited > KILL_GRACE:
            entry.stage = 3
            _kill(entry, signal.SIGKILL)

    def _stop_all(self, selector: selectors.BaseSelector, running: list[_Running], done: dict[int, Result],
                  tasks: list[Task]) -> None:
        """Stop every running task and wait for them (a second interrupt: harder signals at once)."""
        for entry in running:
            if entry.proc.poll() is None:
                entry.stopped = "interrupted"
                if entry.stage == 0:
                    self._signal(entry)
        while running:
            try:
                self._pump(selector, running, done, tasks)
            except KeyboardInterrupt:
                for entry in running:
                    entry.stage_at = float("-inf")


def _kill(entry: _Running, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(entry.proc.pid, sig)
