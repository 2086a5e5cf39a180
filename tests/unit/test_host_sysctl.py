"""Sysctl reads and writes files under a proc/sys directory; tests give it one of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazyjack.errors import HostError
from lazyjack.host.sysctl import Sysctl, sysctl_parts


@pytest.fixture
def proc_sys(tmp_path: Path) -> Path:
    conf = tmp_path / "net" / "ipv6" / "conf"
    for link in ("all", "eth0.100"):
        (conf / link).mkdir(parents=True)
        (conf / link / "forwarding").write_text("0\n")
    (tmp_path / "net" / "ipv4").mkdir()
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("1\n")
    return tmp_path


def test_get_strips_the_value(proc_sys: Path) -> None:
    assert Sysctl(proc_sys).get("net.ipv4.ip_forward") == "1"


def test_set_writes_one_line(proc_sys: Path) -> None:
    sysctl = Sysctl(proc_sys)
    sysctl.set("net.ipv6.conf.all.forwarding", "1")
    assert (proc_sys / "net/ipv6/conf/all/forwarding").read_text() == "1\n"
    assert sysctl.get("net.ipv6.conf.all.forwarding") == "1"


@pytest.mark.parametrize("name", ["net.ipv6.conf.eth0/100.forwarding", "net/ipv6/conf/eth0.100/forwarding"])
def test_a_dot_in_a_link_name_is_written_as_sysctl_does(proc_sys: Path, name: str) -> None:
    assert sysctl_parts(name) == ["net", "ipv6", "conf", "eth0.100", "forwarding"]
    Sysctl(proc_sys).set(name, "1")
    assert (proc_sys / "net/ipv6/conf/eth0.100/forwarding").read_text() == "1\n"


def test_a_missing_key_is_named_and_never_created(proc_sys: Path) -> None:
    sysctl = Sysctl(proc_sys)
    with pytest.raises(HostError, match=r"sysctl net\.ipv6\.conf\.eth9\.forwarding does not exist"):
        sysctl.get("net.ipv6.conf.eth9.forwarding")
    with pytest.raises(HostError, match="does not exist"):
        sysctl.set("net.ipv6.conf.all.no_such_key", "1")
    assert not (proc_sys / "net/ipv6/conf/all/no_such_key").exists()


@pytest.mark.parametrize("name", ["", "net..ipv4", "net.ipv4.conf.../x", "net/../../etc/passwd", "."])
def test_names_that_are_not_keys_are_refused(proc_sys: Path, name: str) -> None:
    with pytest.raises(HostError, match="not valid"):
        Sysctl(proc_sys).get(name)


def test_a_refused_write_says_which_key_and_value(proc_sys: Path) -> None:
    key = proc_sys / "net/ipv4/ip_forward"
    key.unlink()
    key.mkdir()  # writing to a directory fails (EISDIR) as the kernel's EINVAL would
    with pytest.raises(HostError, match=r"net\.ipv4\.ip_forward could not be set to '2'"):
        Sysctl(proc_sys).set("net.ipv4.ip_forward", "2")


def test_the_real_proc_sys_is_the_default() -> None:
    value = Sysctl().get("kernel.ostype")
    assert value == "Linux"
