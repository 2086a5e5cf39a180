"""Tests for the unbound.conf renderer: exact text, and unbound-checkconf accepts what it writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from lazyjack.render.dns64 import render_unbound_conf

PREFIX = IPv6Network("fd00:10:64:ff9b::/96")
CLUSTER = [IPv6Network("fd00:20::/64"), IPv6Network("fd00:40::/72"), IPv6Network("fd00:10::/64"),
           IPv6Network("::1/128")]

EXPECTED_SYNTHESISE_ALL = """\
# Written by lazyjack: recursive DNS64 resolver for an IPv6-only cluster.
# Queries are forwarded to 203.0.113.53 through NAT64 as fd00:10:64:ff9b::cb00:7135.
server:
    verbosity: 1
    do-daemonize: no
    use-syslog: no
    logfile: ""
    chroot: ""
    username: ""
    directory: "/tmp/lazyjack/dns64/data"
    pidfile: "/tmp/lazyjack/dns64/data/unbound.pid"
    interface: fd00:10::100
    ip-freebind: yes
    port: 53
    do-ip4: no
    do-ip6: yes
    access-control: fd00:20::/64 allow
    access-control: fd00:40::/72 allow
    access-control: fd00:10::/64 allow
    access-control: ::1/128 allow
    module-config: "dns64 iterator"
    dns64-prefix: fd00:10:64:ff9b::/96
    dns64-synthall: yes
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: fd00:10:64:ff9b::cb00:7135
    forward-first: no
"""


def _render(**overrides: object) -> str:
    args: dict[str, object] = {
        "prefix": PREFIX,
        "forwarder": IPv4Address("203.0.113.53"),
        "allow_aaaa": False,
        "directory": "/tmp/lazyjack/dns64/data",
        "pid_file": "/tmp/lazyjack/dns64/data/unbound.pid",
        "listen_on": IPv6Address("fd00:10::100"),
        "clients": CLUSTER,
    }
    args.update(overrides)
    return render_unbound_conf(**args)  # type: ignore[arg-type]


def test_unbound_conf_synthesises_every_answer_without_allow_aaaa() -> None:
    assert _render() == EXPECTED_SYNTHESISE_ALL


def test_unbound_conf_with_allow_aaaa_keeps_real_aaaa_records() -> None:
    rendered = _render(allow_aaaa=True)
    assert rendered == EXPECTED_SYNTHESISE_ALL.replace("    dns64-synthall: yes\n", "")


def test_unbound_conf_forwarder_follows_the_prefix_length() -> None:
    rendered = _render(prefix=IPv6Network("64:ff9b::/96"), forwarder=IPv4Address("100.64.113.53"))
    assert "    forward-addr: 64:ff9b::6440:7135\n" in rendered
    assert "    dns64-prefix: 64:ff9b::/96\n" in rendered
    rendered = _render(prefix=IPv6Network("2001:db8:122::/48"), forwarder=IPv4Address("192.0.2.33"))
    assert "    forward-addr: 2001:db8:122:c000:2:2100::\n" in rendered  # RFC 6052 section 2.4


def test_unbound_conf_serves_ipv4_clients_too_when_asked() -> None:
    rendered = _render(clients=[IPv6Network("fd00:20::/64"), IPv4Network("127.0.0.0/8")])
    assert "    access-control: fd00:20::/64 allow\n    access-control: 127.0.0.0/8 allow\n" in rendered


def test_unbound_conf_refuses_to_serve_nobody() -> None:
    with pytest.raises(ValueError, match="clients is empty"):
        _render(clients=[])


@pytest.mark.parametrize(("field", "value"), [("directory", ""), ("directory", '/tmp/"x'),
                                              ("pid_file", "/tmp/x\nserver:"), ("pid_file", "/tmp\\x")])
def test_unbound_conf_rejects_strings_that_would_break_quoting(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"{field} .* cannot be written to unbound\.conf"):
        _render(**{field: value})


def test_unbound_conf_rejects_a_prefix_unbound_would_refuse() -> None:
    with pytest.raises(ValueError, match="RFC 6052"):
        _render(prefix=IPv6Network("fd00:10:64:ff9b::/80"))


def _checkconf() -> str:
    found = shutil.which("unbound-checkconf") or next(
        (p for p in ("/usr/sbin/unbound-checkconf", "/usr/bin/unbound-checkconf") if Path(p).is_file()), None)
    if found is None:
        # scripts/bootstrap installs it; in CI a missing checker must fail, not skip.
        if os.environ.get("CI"):
            pytest.fail("unbound-checkconf is not installed (apt-get install unbound)")
        pytest.skip("unbound-checkconf is not installed (apt-get install unbound)")
    return found


@pytest.mark.parametrize("allow_aaaa", [False, True])
def test_unbound_checkconf_accepts_rendered_file(tmp_path: Path, allow_aaaa: bool) -> None:
    conf = tmp_path / "unbound.conf"
    conf.write_text(_render(allow_aaaa=allow_aaaa, directory=str(tmp_path), pid_file=str(tmp_path / "unbound.pid"),
                            clients=[*CLUSTER, IPv4Network("127.0.0.0/8")]))
    result = subprocess.run([_checkconf(), str(conf)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no errors" in result.stdout


def test_unbound_checkconf_would_catch_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: the same checker refuses a file with a bad access-control action."""
    conf = tmp_path / "unbound.conf"
    conf.write_text(_render(directory=str(tmp_path), pid_file=str(tmp_path / "unbound.pid"))
                    .replace("fd00:20::/64 allow", "fd00:20::/64 permit"))
    result = subprocess.run([_checkconf(), str(conf)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
