"""Background daemons (named, tayga) started by lazyjack, found again through pid files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Protocol

from lazyjack.errors import CommandFailed, HostError
from lazyjack.host.files import replace_file
from lazyjack.host.process import RunnerAPI, alive, cmdline, describe_stuck, stop_pids

POLL = 0.05
#: How long a transient unit may take to show a main process that stays up.
UNIT_START_TIMEOUT = 5.0


class DaemonsAPI(Protocol):
    def start(self, argv: list[str], *, pid_file: Path, log_file: Path) -> int: ...
    def running(self, pid_file: Path, *, program: str) -> int | None: ...
    def stop(self, pid_file: Path, *, program: str, timeout: float = 10.0) -> bool: ...
    def listening(self, pid: int, *, port: int, timeout: float) -> bool: ...


def write_pid(pid_file: Path, pid: int) -> None:
    """Write a pid file all at once: a reader never finds it empty or half-written."""
    replace_file(pid_file, f"{pid}\n".encode(), mode=0o644)


def _ours(pid: int, *, pid_file: Path, program: str) -> bool:
    """Whether `pid` runs `program` with a file beside `pid_file` (its configuration) on its command line."""
    argv = cmdline(pid)
    if not alive(pid) or not any(Path(arg).name == program for arg in argv):
        return False
    return any(Path(arg).parent == pid_file.parent for arg in argv if arg.startswith("/"))


class Daemons:
    """Starts programs detached (own session, output to a log file) and stops them by pid file.

    A pid file is trusted only if /proc says the process runs the expected program with a
    file beside the pid file (its configuration) on its command line, so a recycled pid is
    never signalled: after a reboot the host's own bind9 may well hold the pid our named had.
    """

    def start(self, argv: list[str], *, pid_file: Path, log_file: Path) -> int:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            try:
                child = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                raise CommandFailed(argv, None, "", reason=f"cannot start: {exc.strerror}") from None
        write_pid(pid_file, child.pid)
        # Give it a moment to fail on a bad configuration, which shows up right away.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pid_file.unlink(missing_ok=True)
                output = log_file.read_text(errors="replace")[-4000:]
                raise CommandFailed(argv, child.returncode, output, reason=f"exited at start with {child.returncode}")
            time.sleep(POLL)
        return child.pid

    def running(self, pid_file: Path, *, program: str) -> int | None:
        """The pid of our `program` that `pid_file` names, if it runs; only reads (plans and --dry-run ask)."""
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _ours(pid, pid_file=pid_file, program=program) else None

    def stop(self, pid_file: Path, *, program: str, timeout: float = 10.0) -> bool:
        pid = self.running(pid_file, program=program)
        pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stuck = stop_pids([pid], grace=timeout, poll=POLL)
        if stuck:
            raise HostError(f"{program} did not stop within {2 * timeout:g}s of SIGTERM and SIGKILL: "
                            f"{describe_stuck(stuck)} (state D: it waits on the kernel, a hung mount say)")
        return True

    def listening(self, pid: int, *, port: int, timeout: float) -> bool:
        """Whether the process's network namespace has a UDP socket bound to `port` (polls)."""
        needle = f":{port:04X} "
        deadline = time.monotonic() + timeout
        while True:
            for table in ("udp6", "udp"):
                try:
                    lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
                except OSError:
                    return False
                if any(needle in line.split(None, 2)[1] + " " for line in lines if len(line.split()) > 1):
                    return True
            if time.monotonic() >= deadline or not alive(pid):
                return False
            time.sleep(POLL)


def unit_name(pid_file: Path) -> str:
    """The systemd unit of a server: its program and a digest of where its files are."""
    import hashlib

    digest = hashlib.sha256(str(pid_file.parent).encode()).hexdigest()[:8]
    return f"lazyjack-{pid_file.stem}-{digest}.service"


class SystemdDaemons(Daemons):
    """On a host where systemd runs: each server is a transient unit (`systemd-run`), restarted on
    failure and stopped with `systemctl stop`. start keeps its main pid in the pid file; `running`
    asks systemd for the main pid it has now (a restart changes it) and checks it as `Daemons` does
    (program, files beside the pid file)."""

    def __init__(self, runner: RunnerAPI) -> None:
        self.runner = runner

    def start(self, argv: list[str], *, pid_file: Path, log_file: Path) -> int:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        unit = unit_name(pid_file)
        self.runner.run(
            [
                "systemd-run", f"--unit={unit}", "--collect", "--quiet",
                "--property=Restart=on-failure",
                f"--property=StandardOutput=append:{log_file}",
                f"--property=StandardError=append:{log_file}",
                "--", *argv,
            ],
            timeout=60,
        )
        # Like Daemons.start: a bad configuration shows within half a second.
        settled = time.monotonic() + 0.5
        deadline = time.monotonic() + UNIT_START_TIMEOUT
        pid = 0
        while time.monotonic() < deadline:
            pid = self._main_pid(unit)
            if pid and time.monotonic() >= settled and alive(pid):
                write_pid(pid_file, pid)
                return pid
            time.sleep(POLL)
        output = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else ""
        self.runner.run(["systemctl", "stop", unit], timeout=60, check=False)
        raise CommandFailed(argv, None, output, reason=f"did not stay running as {unit}")

    def _main_pid(self, unit: str) -> int:
        out = self.runner.run(["systemctl", "show", "--property=MainPID", "--value", unit], timeout=30, check=False)
        try:
            return int(out.stdout.strip() or "0")
        except ValueError:
            return 0

    def running(self, pid_file: Path, *, program: str) -> int | None:
        # systemd may have restarted it since: the main pid it has now, not the one start wrote. Only
        # asked, never written back: plans and --dry-run call this.
        pid = self._main_pid(unit_name(pid_file))
        if pid and _ours(pid, pid_file=pid_file, program=program):
            return pid
        return super().running(pid_file, program=program)

    def stop(self, pid_file: Path, *, program: str, timeout: float = 10.0) -> bool:
        was_running = self.running(pid_file, program=program) is not None
        self.runner.run(["systemctl", "stop", unit_name(pid_file)], timeout=60 + timeout, check=False)
        pid_file.unlink(missing_ok=True)
        return was_running


def host_daemons(runner: RunnerAPI) -> Daemons:
    """Transient systemd units where systemd is the init system, detached processes elsewhere."""
    if Path("/run/systemd/system").is_dir():
        return SystemdDaemons(runner)
    return Daemons()
