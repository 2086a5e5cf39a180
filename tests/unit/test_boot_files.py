"""What prepare leaves for a node's boot: the sysctl.d file and the restore unit, enabled; clean takes them away."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stepkit import make_node

from lazyjack.render.boot import (
    SYSCTL_PATH,
    UNIT_PATH,
    WANTS_LINK,
    exec_start,
    quote_exec_arg,
    render_restore_unit,
    render_sysctl_conf,
)


def test_sysctl_conf_names_each_setting_once_in_order() -> None:
    text = render_sysctl_conf([("net.ipv6.conf.all.forwarding", "1"), ("net.ipv4.ip_forward", "1"),
                               ("net.ipv6.conf.all.forwarding", "1")])
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert settings == ["net.ipv6.conf.all.forwarding = 1", "net.ipv4.ip_forward = 1"]


@pytest.mark.parametrize("arg", ["/tmp/my config.yaml", "50%", "$HOME", 'say "hi"', "back\\slash", "plain"])
def test_exec_start_reads_back_what_was_quoted(arg: str) -> None:
    unit = render_restore_unit(["/usr/bin/python3", "-m", "lazyjack", "--config", arg, "restore"])
    assert exec_start(unit) == ["/usr/bin/python3", "-m", "lazyjack", "--config", arg, "restore"]
    assert "%" not in quote_exec_arg(arg).replace("%%", "")


def test_unit_refuses_a_relative_program() -> None:
    with pytest.raises(ValueError, match="absolute"):
        render_restore_unit(["lazyjack", "restore"])


@pytest.mark.parametrize("name", ["my-master", "a-minion"])
def test_prepare_writes_and_enables_the_unit_clean_removes_it(tmp_path: Path, name: str) -> None:
    node = make_node(tmp_path, "ipv6.yaml", name)
    before = node.snapshot()
    node.run("prepare")
    unit = node.read(UNIT_PATH)
    assert unit is not None
    argv = exec_start(unit)
    assert argv[:3] == [sys.executable, "-m", "lazyjack"]
    assert argv[argv.index("--host") + 1] == name and argv[argv.index("--root") + 1] == str(node.root)
    assert Path(argv[argv.index("--config") + 1]).is_absolute() and argv[-1] == "restore"
    assert "Before=kubelet.service" in unit and "After=network-online.target" in unit
    link = node.root / WANTS_LINK.lstrip("/")
    assert link.is_symlink() and str(link.readlink()) == UNIT_PATH
    assert "net.ipv6.conf.all.forwarding = 1" in (node.read(SYSCTL_PATH) or "")
    node.run("clean")
    assert node.snapshot() == before


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd-analyze verify reads the unit as systemd would (the ExecStart program must exist: it does)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: apt-get install systemd"
    node = make_node(tmp_path, "ipv6.yaml", "a-minion")
    node.run("prepare")
    # verify names the unit by its file name; it lives in the sandbox's /etc/systemd/system.
    unit = node.root / UNIT_PATH.lstrip("/")
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # And it does fail on a unit systemd would refuse: the check is real.
    broken = tmp_path / "lazyjack-restore.service"
    broken.write_text(unit.read_text().replace(sys.executable, "/nonexistent/python"))
    result = subprocess.run([analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "/nonexistent/python" in result.stderr
