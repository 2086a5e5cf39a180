"""Servers as transient systemd units: the calls lazyjack makes to systemd-run and systemctl.

systemd is not PID 1 here, so a stand-in runner plays it: it accepts only the argv shapes
lazyjack must send, starts the unit's command as a real process, and answers MainPID.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from lazyjack.errors import CommandFailed
from lazyjack.host.daemon import SystemdDaemons, unit_name
from lazyjack.host.process import Completed


class FakeSystemd:
    """Checks every call and keeps one real process per unit."""

    def __init__(self) -> None:
        self.units: dict[str, subprocess.Popen[bytes]] = {}
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}"

    def run(self, argv: list[str], *, timeout: float, input: bytes | None = None,
            env: Mapping[str, str] | None = None, check: bool = True, on_progress: object = None,
            progress_interval: float = 5.0) -> Completed:
        assert timeout > 0
        self.calls.append(argv)
        if argv[0] == "systemd-run":
            split = argv.index("--")
            options, command = argv[1:split], argv[split + 1:]
            unit = next(o.split("=", 1)[1] for o in options if o.startswith("--unit="))
            assert unit.startswith("lazyjack-") and unit.endswith(".service")
            assert "--collect" in options and "--property=Restart=on-failure" in options
            log = next(o.split(":", 1)[1] for o in options if o.startswith("--property=StandardOutput=append:"))
            assert Path(log).is_absolute()
            assert unit not in self.units, "a unit must be stopped before it is started again"
            self.units[unit] = subprocess.Popen(command)
            return Completed(argv, 0, "", "")
        if argv[:4] == ["systemctl", "show", "--property=MainPID", "--value"] and len(argv) == 5:
            process = self.units.get(argv[4])
            pid = process.pid if process is not None and process.poll() is None else 0
            return Completed(argv, 0, f"{pid}\n", "")
        if argv[:2] == ["systemctl", "stop"] and len(argv) == 3:
            process = self.units.pop(argv[2], None)
            if process is not None:
                process.terminate()
                process.wait(10)
            return Completed(argv, 0, "", "")
        raise AssertionError(f"unexpected call {argv}")

    def close(self) -> None:
        for process in self.units.values():
            process.kill()
            process.wait(10)


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    fake = FakeSystemd()
    try:
        yield fake
    finally:
        fake.close()


def _server(directory: Path) -> list[str]:
    # Looks like `named -g -c <dir>/named.conf` to the pid-file checks, and just sleeps.
    return [sys.executable, "-c", "import time; time.sleep(60)", "named", str(directory / "named.conf")]


def test_start_runs_a_transient_unit_and_keeps_its_main_pid(tmp_path: Path, systemd: FakeSystemd) -> None:
    daemons = SystemdDaemons(systemd)
    pid_file, log = tmp_path / "named.pid", tmp_path / "named.log"
    pid = daemons.start(_server(tmp_path), pid_file=pid_file, log_file=log)
    unit = unit_name(pid_file)
    assert systemd.calls[0][:2] == ["systemd-run", f"--unit={unit}"]
    assert pid_file.read_text().strip() == str(pid)
    assert daemons.running(pid_file, program="named") == pid
    assert daemons.running(pid_file, program="tayga") is None  # another program is not ours
    assert daemons.stop(pid_file, program="named") is True
    assert ["systemctl", "stop", unit] in systemd.calls
    assert not pid_file.exists()
    assert daemons.running(pid_file, program="named") is None
    assert daemons.stop(pid_file, program="named") is False  # stopping twice is harmless


def test_a_restart_by_systemd_is_followed(tmp_path: Path, systemd: FakeSystemd) -> None:
    daemons = SystemdDaemons(systemd)
    pid_file = tmp_path / "named.pid"
    first = daemons.start(_server(tmp_path), pid_file=pid_file, log_file=tmp_path / "named.log")
    unit = unit_name(pid_file)
    old = systemd.units.pop(unit)  # systemd restarts the unit: a new main process
    old.kill()
    old.wait(10)
    systemd.units[unit] = subprocess.Popen(_server(tmp_path))
    deadline = time.monotonic() + 10
    now = None
    while now is None and time.monotonic() < deadline:  # until the new process has exec'd
        now = daemons.running(pid_file, program="named")
    assert now is not None and now != first
    # Asking is reading: the pid file keeps what start wrote (a --dry-run must change nothing).
    assert pid_file.read_text().strip() == str(first)
    assert daemons.stop(pid_file, program="named") is True
    assert unit not in systemd.units and not pid_file.exists()


def test_running_changes_nothing(tmp_path: Path, systemd: FakeSystemd) -> None:
    """running() only reads, also when the pid file is missing or stale (plans and --dry-run call it)."""
    daemons = SystemdDaemons(systemd)
    pid_file = tmp_path / "named.pid"
    pid = daemons.start(_server(tmp_path), pid_file=pid_file, log_file=tmp_path / "named.log")
    pid_file.unlink()
    before = sorted(tmp_path.iterdir())
    assert daemons.running(pid_file, program="named") == pid
    assert sorted(tmp_path.iterdir()) == before and not pid_file.exists()
    pid_file.write_text("1\n")  # stale: another process
    stat = pid_file.stat()
    assert daemons.running(pid_file, program="named") == pid
    assert pid_file.read_text() == "1\n" and pid_file.stat().st_mtime_ns == stat.st_mtime_ns
    assert daemons.running(tmp_path / "gone" / "named.pid", program="named") is None
    assert not (tmp_path / "gone").exists()


def test_units_of_two_sandboxes_do_not_collide(tmp_path: Path) -> None:
    assert unit_name(tmp_path / "a" / "named.pid") != unit_name(tmp_path / "b" / "named.pid")
    assert unit_name(tmp_path / "a" / "named.pid") != unit_name(tmp_path / "a" / "tayga.pid")


def test_a_unit_that_dies_at_once_is_reported_with_its_log(tmp_path: Path, systemd: FakeSystemd,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import lazyjack.host.daemon as daemon

    monkeypatch.setattr(daemon, "POLL", 0.01)
    monkeypatch.setattr(daemon, "UNIT_START_TIMEOUT", 1.0)
    log = tmp_path / "named.log"
    log.write_text("named: bad option\n")
    argv = [sys.executable, "-c", "raise SystemExit(1)", "named"]
    with pytest.raises(CommandFailed, match="did not stay running") as failed:
        SystemdDaemons(systemd).start(argv, pid_file=tmp_path / "named.pid", log_file=log)
    assert "bad option" in str(failed.value)
    assert ["systemctl", "stop", unit_name(tmp_path / "named.pid")] in systemd.calls
