"""The cluster runner with local processes, and the SSH transport's argv and `ssh -G` parsing."""

from __future__ import annotations

import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from lazyjack.cluster.runner import Result, Runner, Task
from lazyjack.cluster.ssh import SshTransport, parse_ssh_g
from lazyjack.cluster.transport import Launch, LocalTransport

PY = sys.executable


def task(tmp_path: Path, node: str, code: str, *, timeout: float = 30, stdin: bytes | None = None) -> Task:
    return Task(node, "test", Launch([PY, "-c", code]), tmp_path / f"{node}.log", timeout, stdin)


def test_bounded_parallel_output_in_logs_and_order(tmp_path: Path) -> None:
    seen: list[str] = []
    code = "import sys,time; print('hello from', sys.argv); time.sleep(0.5)"
    tasks = [task(tmp_path, f"n{i}", code) for i in range(4)]
    start = time.monotonic()
    results = Runner(parallel=2, on_done=lambda r: seen.append(r.node)).run(tasks)
    took = time.monotonic() - start
    assert [r.node for r in results] == ["n0", "n1", "n2", "n3"] and sorted(seen) == ["n0", "n1", "n2", "n3"]
    assert all(r.ok and "hello from" in r.output for r in results)
    assert 1.0 <= took < 4.0  # two waves of two, not four at once nor one by one
    assert "hello from" in (tmp_path / "n3.log").read_text()


def test_stdin_exit_code_and_tail(tmp_path: Path) -> None:
    code = "import sys; data = sys.stdin.read(); print(data.upper()); print('bye'); sys.exit(3)"
    (result,) = Runner(parallel=1).run([task(tmp_path, "a", code, stdin=b"secret config")])
    assert result.returncode == 3 and not result.ok
    assert result.tail() == ["SECRET CONFIG", "bye"]


def test_timeout_stops_the_process(tmp_path: Path) -> None:
    (result,) = Runner(parallel=1).run([task(tmp_path, "a", "import time; time.sleep(60)", timeout=0.5)])
    assert result.returncode is None and result.stopped == "timeout" and result.seconds < 10
    assert "stopped after 0.5s" in (tmp_path / "a.log").read_text()


def test_interrupt_stops_running_tasks_with_sigterm_and_reports_them(tmp_path: Path) -> None:
    code = ("import signal,sys,time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('rolling back', flush=True), sys.exit(143)))\n"
            "print('started', flush=True); time.sleep(60)")
    done: list[Result] = []

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            Runner(parallel=1, on_done=done.append).run([task(tmp_path, "a", code), task(tmp_path, "b", code)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # a was stopped (and rolled back); b never started.
    assert [(r.node, r.returncode, r.stopped) for r in done] == [("a", 143, "interrupted")]
    assert "rolling back" in done[0].output


def test_an_interrupt_while_a_task_finishes_still_stops_the_others(tmp_path: Path) -> None:
    """The interrupt lands after the first task's pipe is closed and before it leaves the running list (here: in
    its report): stopping the rest must neither look the closed pipe up again nor report the task twice."""
    reported: list[str] = []

    def report(result: Result) -> None:
        reported.append(result.node)
        if result.node == "quick":
            raise KeyboardInterrupt

    slow = ("import signal,sys,time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
            "print('started', flush=True); time.sleep(60)")
    tasks = [task(tmp_path, "quick", "print('done')"), task(tmp_path, "slow", slow)]
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        Runner(parallel=2, on_done=report).run(tasks)
    assert time.monotonic() - start < 20
    assert reported == ["quick", "slow"]
    assert (tmp_path / "quick.log").read_text().rstrip().splitlines()[-1].startswith("===== exit 0 after")
    assert "(stopped: the cluster run was interrupted)" in (tmp_path / "slow.log").read_text()


def test_local_transport_runs_argv_as_is() -> None:
    assert LocalTransport().launch("n", ["lazyjack", "version"], root=False, attached=True).argv == [
        "lazyjack", "version"]


def test_ssh_argv_quotes_the_remote_command_and_checks_keys(tmp_path: Path) -> None:
    ssh = SshTransport({"n": "host.example"}, user="admin", ssh_config=tmp_path / "cfg")
    try:
        argv = ["lazyjack", "--host", "n", "--config", "/etc/it's here.yaml", "up"]
        launch = ssh.launch("n", argv, root=True, attached=True)
        assert launch.interrupt_by_tty
        assert launch.argv[:3] == ["ssh", "-F", str(tmp_path / "cfg")]
        assert "StrictHostKeyChecking=yes" in launch.argv and "-tt" in launch.argv
        assert "ControlPath=none" in launch.argv  # Ctrl-C must reach the terminal: no master connection
        assert launch.argv[-3:-1] == ["--", "host.example"]
        assert shlex.split(launch.argv[-1]) == ["sudo", "-n", "--", *argv]
        quick = ssh.launch("n", ["lazyjack", "version"], root=False, attached=False)
        assert f"ControlPath={ssh.control_dir}/%C" in quick.argv and "-T" in quick.argv
        assert shlex.split(quick.argv[-1]) == ["lazyjack", "version"]
        accept = SshTransport({"n": "h"}, user="root", accept_new=True)
        assert "StrictHostKeyChecking=accept-new" in (accept.connect_argv("n") or [])
        accept.close()
    finally:
        ssh.close()
    assert not ssh.control_dir.exists()


def test_login_user_from_the_config_else_ssh_config_else_root(tmp_path: Path) -> None:
    """Real `ssh -G` (it connects nowhere): general.ssh-user wins; without it, ssh_config's User for the host;
    where ssh_config names none, root (not ssh's own default, the local login name)."""
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host configured\n    User admin\nHost *\n    Port 2222\n")
    hosts = {"a": "configured", "b": "plain"}
    named, unnamed = SshTransport(hosts, user="ops", ssh_config=cfg), SshTransport(hosts, user=None, ssh_config=cfg)
    try:
        assert named.login("a") == ("ops", True) and named.login("b") == ("ops", True)
        assert unnamed.login("a") == ("admin", False) and unnamed.login("b") == ("root", True)
        configured = unnamed.launch("a", ["lazyjack", "up"], root=True, attached=True).argv
        assert "-l" not in configured and shlex.split(configured[-1]) == ["sudo", "-n", "--", "lazyjack", "up"]
        plain = unnamed.launch("b", ["lazyjack", "up"], root=True, attached=True).argv
        assert plain[plain.index("-l") + 1] == "root" and shlex.split(plain[-1]) == ["lazyjack", "up"]
        assert unnamed.resolve("a").where == "admin@configured port 2222"
        assert unnamed.resolve("b").where == "root@plain port 2222"
    finally:
        named.close()
        unnamed.close()


def test_parse_ssh_g() -> None:
    text = ("user admin\nhostname 10.0.0.5\nport 2222\nhostkeyalias none\n"
            "userknownhostsfile ~/.ssh/known_hosts ~/.ssh/known_hosts2\nglobalknownhostsfile /etc/ssh/ssh_known_hosts\n")
    resolved = parse_ssh_g(text)
    assert (resolved.hostname, resolved.port, resolved.user, resolved.host_key_alias) == ("10.0.0.5", 2222, "admin", None)
    assert resolved.known_hosts_name == "[10.0.0.5]:2222"
    assert resolved.known_hosts[-1] == "/etc/ssh/ssh_known_hosts" and not resolved.known_hosts[0].startswith("~")
    aliased = parse_ssh_g("hostname fe80::2%ssh0\nport 22\nhostkeyalias node-a\nuser root\n")
    assert aliased.known_hosts_name == "node-a"
