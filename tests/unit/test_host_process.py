"""Runner: argv lists, PATH lookup, captured output, timeouts that end the whole process group.

The programs run here are stand-ins written by the tests, put first on PATH.
"""

from __future__ import annotations

import itertools
import os
import select
import sys
import time
from pathlib import Path

import pytest

from lazyjack.errors import CommandFailed
from lazyjack.host.process import Runner


def stand_in(directory: Path, name: str, body: str) -> Path:
    """An executable Python script called `name` in `directory`."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def test_which_finds_stand_ins_first_on_path(bin_dir: Path) -> None:
    stand_in(bin_dir, "kubeadm", "pass")
    assert Runner().which("kubeadm") == str(bin_dir / "kubeadm")
    assert Runner().which("no-such-program-here") is None


def test_run_captures_output_and_passes_argv_unchanged(bin_dir: Path) -> None:
    stand_in(
        bin_dir,
        "kubeadm",
        "print(repr(sys.argv[1:])); print('warn', file=sys.stderr)",
    )
    done = Runner().run(["kubeadm", "init", "--config", "a b; rm -rf /"], timeout=30)
    assert done.argv == ["kubeadm", "init", "--config", "a b; rm -rf /"]
    assert done.returncode == 0
    assert done.stdout == "['init', '--config', 'a b; rm -rf /']\n"
    assert done.stderr == "warn\n"


def test_input_and_env_reach_the_program(bin_dir: Path) -> None:
    stand_in(bin_dir, "show", "print(sys.stdin.read(), os.environ['KUBECONFIG'], os.environ['HOME'])")
    done = Runner().run(["show"], timeout=30, input=b"config", env={"KUBECONFIG": "/etc/k"})
    assert done.stdout == f"config /etc/k {os.environ['HOME']}\n"


def test_stdin_is_empty_without_input(bin_dir: Path) -> None:
    stand_in(bin_dir, "reader", "print(repr(sys.stdin.read()))")
    assert Runner().run(["reader"], timeout=30).stdout == "''\n"


def test_env_path_is_where_the_program_is_looked_for(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stand_in(elsewhere, "only-here", "print('found')")
    done = Runner().run(["only-here"], timeout=30, env={"PATH": str(elsewhere)})
    assert done.stdout == "found\n"


def test_a_non_zero_exit_keeps_argv_code_and_output(bin_dir: Path) -> None:
    stand_in(bin_dir, "systemctl", "print('out'); print('unit not found', file=sys.stderr); sys.exit(5)")
    with pytest.raises(CommandFailed) as caught:
        Runner().run(["systemctl", "restart", "kubelet"], timeout=30)
    error = caught.value
    assert error.argv == ["systemctl", "restart", "kubelet"]
    assert error.returncode == 5
    assert error.output == "out\nunit not found\n"
    assert str(error).startswith("systemctl restart kubelet exited with 5\n")


def test_without_check_a_non_zero_exit_is_returned(bin_dir: Path) -> None:
    stand_in(bin_dir, "systemctl", "sys.exit(3)")
    done = Runner().run(["systemctl", "is-active", "kubelet"], timeout=30, check=False)
    assert done.returncode == 3


def test_a_missing_program_is_not_found_on_path(bin_dir: Path) -> None:
    with pytest.raises(CommandFailed) as caught:
        Runner().run(["no-such-program-here", "--version"], timeout=30)
    assert caught.value.returncode is None
    assert str(caught.value) == "no-such-program-here --version not found on PATH"


def test_a_program_that_cannot_start_says_why(bin_dir: Path) -> None:
    script = bin_dir / "not-executable"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    with pytest.raises(CommandFailed, match="not found: No such file or directory"):
        Runner().run([str(script)], timeout=30)


def test_a_timeout_ends_the_whole_process_group(bin_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    stand_in(
        bin_dir,
        "hang",
        # A grandchild that holds the output pipe open too, as daemons started by a
        # stuck program would.
        f"import subprocess\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        f"print('started', flush=True)\n"
        f"time.sleep(300)",
    )
    started = time.monotonic()
    with pytest.raises(CommandFailed) as caught:
        Runner().run(["hang"], timeout=1.0)
    assert time.monotonic() - started < 10
    assert caught.value.returncode is None
    assert "hang timed out after 1s" in str(caught.value)
    assert "started" in caught.value.output
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Whether the process is still running a few seconds from now.

    A killed process closes its files (so run() returns) a moment before it has exited:
    wait for the exit itself, which a pidfd reports, rather than look once.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        readable, _, _ = select.select([fd], [], [], 5.0)
    finally:
        os.close(fd)
    return not readable


def test_progress_is_reported_while_the_program_runs(bin_dir: Path) -> None:
    stand_in(bin_dir, "slow", "time.sleep(0.55)")
    seen: list[float] = []
    Runner().run(["slow"], timeout=30, on_progress=seen.append, progress_interval=0.1)
    assert 3 <= len(seen) <= 6
    assert seen == sorted(seen)
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(seen))


def test_a_quick_program_reports_no_progress(bin_dir: Path) -> None:
    stand_in(bin_dir, "quick", "pass")
    seen: list[float] = []
    Runner().run(["quick"], timeout=30, on_progress=seen.append, progress_interval=5)
    assert seen == []


def test_an_error_in_on_progress_stops_the_program(bin_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    stand_in(bin_dir, "slow", f"open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(300)")

    def give_up(elapsed: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Runner().run(["slow"], timeout=60, on_progress=give_up, progress_interval=0.2)
    assert not _alive(int(marker.read_text()))


@pytest.mark.parametrize(("argv", "timeout"), [([], 1.0), (["true"], 0.0)], ids=["empty argv", "zero timeout"])
def test_programming_errors_are_value_errors(argv: list[str], timeout: float) -> None:
    with pytest.raises(ValueError):
        Runner().run(argv, timeout=timeout)
