"""`lazyjack lab up && lab check && lab down` on real namespaces, daemons and CNI plugins, in every mode.

Each test runs the CLI as a subprocess, as a user would, and ends with nothing of the lab left:
no namespaces, no processes, no state directory. A lab a test leaves behind on failure is
removed by `lab down` in the fixture.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lazyjack.config import load_config
from lazyjack.host.netns import support_netns
from lazyjack.lab.state import STATE_BASE
from lazyjack.lab.topology import NETNS_DIR, processes_using

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lazyjack" / "examples"
SRC = str(Path(__file__).resolve().parents[2] / "src")
LOCK_WAIT = 600.0
SERIAL_LOCK = "/var/lib"

# IPv6 with node IDs of two hex digits (10 -> ::a, 18 -> ::12, 171 -> ::ab), ptp, a real `init`
# (not insecure), and no dns64-nat64-runtime: the lab must write `native` into its copy.
IPV6_IDS = """\
general:
    plugin: ptp
    mode: ipv6
    kubernetes-version: v1.31.0
    insecure: false
topology:
    gw-master:
        interface: eth1
        opmodes: master dns64 nat64
        id: 10
    gw-minion-a:
        interface: eth1
        opmodes: minion
        id: 18
    gw-minion-b:
        interface: eth1
        opmodes: minion
        id: 171
support_net:
    cidr: fd00:10::/64
    v4cidr: 172.18.0.0/16
mgmt_net:
    cidr: fd00:20::/64
pod_net:
    cidr: fd00:40::/72
    mtu: 1400
service_net:
    cidr: fd00:30::/110
nat64:
    v4_cidr: 172.18.0.128/25
    v4_ip: 172.18.0.200
    ip: fd00:10::200
dns64:
    remote_server: 203.0.113.53
    cidr: fd00:10:64:ff9b::/96
    ip: fd00:10::100
"""

# Dual-stack with IPv4 first everywhere, the bridge plugin, and IDs >= 10.
DUAL_V4_FIRST = """\
general:
    plugin: bridge
    mode: dual-stack
    kubernetes-version: v1.31.0
    insecure: true
topology:
    ds-master:
        interface: eth1
        opmodes: master
        id: 12
    ds-minion:
        interface: eth1
        opmodes: minion
        id: 200
mgmt_net:
    cidr: 10.192.0.0/16
    cidr2: fd00:20::/64
pod_net:
    cidr: 10.244.0.0/16
    cidr2: fd00:40::/72
service_net:
    cidr: 10.96.0.0/12
    cidr2: fd00:30::/110
"""

IPV6 = (EXAMPLES / "ipv6.yaml").read_text()


def _ipv6(replace: dict[str, str]) -> str:
    text = IPV6
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# The site's own DNS64 server and NAT64 gateway on the management network (the lab plays the site).
IPV6_EXTERNAL = IPV6[:IPV6.index("support_net:")].replace("opmodes: master dns64 nat64", "opmodes: master") \
    + IPV6[IPV6.index("mgmt_net:"):IPV6.index("nat64:")] + """\
nat64:
    external-gateway: fd00:20::64
dns64:
    cidr: 64:ff9b::/96
    external-server: fd00:20::53
"""
# The site's DNS64 server on another network, through the site's router on the management network; the
# cluster's own NAT64 on the master.
IPV6_EXTERNAL_DNS64 = IPV6.replace("opmodes: master dns64 nat64", "opmodes: master nat64").replace(
    "    remote_server: 203.0.113.53\n", "").replace("    ip: fd00:10::100\n", "").replace(
    "    allow_aaaa_use: false\n", "    external-server: fd00:99::53\n    external-via: fd00:20::1\n")
# The cluster's own DNS64 server (unbound) on the master, the site's NAT64 gateway.
IPV6_EXTERNAL_NAT64 = IPV6.replace("opmodes: master dns64 nat64", "opmodes: master dns64").replace(
    IPV6[IPV6.index("nat64:"):IPV6.index("dns64:\n")], "nat64:\n    external-gateway: fd00:20::64\n").replace(
    "dns64:\n", "dns64:\n    server: unbound\n")
# DNS64 on the master, NAT64 on a node of its own.
IPV6_SPLIT = _ipv6({"opmodes: master dns64 nat64": "opmodes: master dns64",
                    "    a-minion:\n": "    nat-gw:\n        interface: eth1\n        opmodes: nat64\n        id: 9\n"
                                     "    a-minion:\n"})

CONFIGS = {
    "ipv6": IPV6,
    "ipv6-unbound": _ipv6({"dns64:\n": "dns64:\n    server: unbound\n"}),
    # The well-known prefix with a private pool; its internet is in the shared address space (lab/internet.py).
    "ipv6-wkp": _ipv6({"cidr: fd00:10:64:ff9b::/96": "cidr: 64:ff9b::/96",
                       "remote_server: 203.0.113.53": "remote_server: 100.64.113.53"}),
    "ipv6-external": IPV6_EXTERNAL,
    "ipv6-ext-dns64": IPV6_EXTERNAL_DNS64,
    "ipv6-ext-nat64": IPV6_EXTERNAL_NAT64,
    "ipv6-split": IPV6_SPLIT,
    "ipv4": (EXAMPLES / "ipv4.yaml").read_text(),
    "dual-stack": (EXAMPLES / "dual-stack.yaml").read_text(),
    "ipv6-ids": IPV6_IDS,
    "dual-v4-first": DUAL_V4_FIRST,
}


def lab(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lazyjack", "lab", *args], capture_output=True, text=True,
                          env=environ, timeout=timeout)


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = lab(*args, env=env)
    assert result.returncode == 0, f"lab {' '.join(args)}: rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Lab:
    """A lab's name and config, and what must be gone after `lab down`."""

    def __init__(self, tmp_path: Path, name: str, text: str) -> None:
        self.name = name
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(text)
        self.spec = load_config(self.config, require_token=False)
        self.directory = STATE_BASE / name

    def namespaces(self) -> list[str]:
        names = [f"ljlab-{self.name}-switch", f"ljlab-{self.name}-inet", f"ljlab-{self.name}-site"]
        for node, spec in self.spec.nodes.items():
            names += [f"lj-{node}", f"lj-{node}-pod"]
            if "nat64" in spec.roles or "dns64" in spec.roles:
                names.append(support_netns((self.directory / "nodes" / node / "root").resolve()))
        return names

    def leftovers(self) -> list[str]:
        found = [f"namespace {n}" for n in self.namespaces() if (NETNS_DIR / n).exists()]
        found += [f"process {pid}" for pid in processes_using(self.directory)]
        if self.directory.exists():
            found.append(f"directory {self.directory}")
        return found

    def down(self) -> str:
        out = ok("down", "--name", self.name)
        assert self.leftovers() == []
        return out


MakeLab = Callable[[str, str], Lab]


@pytest.fixture
def serial() -> Iterator[None]:
    """One lab test at a time, also across pytest runs of different checkouts: labs of the same nodes
    share namespace names and lab names, which are machine-wide.

    The lock is on a directory every machine has (no other program flocks it), so it is the same for
    every checkout and leaves nothing behind.
    """
    fd = os.open(SERIAL_LOCK, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"another run held the lab test lock for {LOCK_WAIT:g}s"
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


@pytest.fixture
def make_lab(tmp_path: Path, e2e_programs: None, serial: None) -> Iterator[MakeLab]:
    """make_lab(name, config_text): a Lab; `lab down` at the end if a failed test left it."""
    made: list[Lab] = []

    def make(name: str, text: str) -> Lab:
        one = Lab(tmp_path, name, text)
        if one.directory.exists():
            # Left by a run killed before its teardown: this test holds the machine-wide lab test lock, so
            # no running test owns it. Taken away as a user would, or this test would fail for another's sake.
            down = lab("down", "--name", name)
            assert down.returncode == 0 and one.leftovers() == [], f"a stale lab {name!r}:\n{down.stdout}{down.stderr}"
        made.append(one)
        return one

    try:
        yield make
    finally:
        for one in made:
            if one.directory.exists():
                lab("down", "--name", one.name)


def _lines_with(out: str, text: str) -> list[int]:
    return [i for i, line in enumerate(out.splitlines()) if text in line]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_up_check_down(make_lab: MakeLab, name: str) -> None:
    one = make_lab(name, CONFIGS[name])
    spec = one.spec
    master = next(n for n, s in spec.nodes.items() if s.is_master)
    servers = [n for n, s in spec.nodes.items() if "nat64" in s.roles or "dns64" in s.roles]
    others = [n for n in spec.nodes if n not in servers]
    minions = [n for n, s in spec.nodes.items() if "minion" in s.roles]

    out = ok("up", "--config", str(one.config))
    assert "--skip-phases kubelet,kubeadm" in out  # neither is installed here; the lab says so
    for node in spec.nodes:
        assert _lines_with(out, f" ✓ prepare on {node} ")
    if servers and others:  # the DNS64/NAT64 node(s) are prepared before every other node
        first = max(_lines_with(out, f" ✓ prepare on {n} ")[0] for n in servers)
        assert all(first < _lines_with(out, f" ✓ prepare on {n} ")[0] for n in others)
    up_master = _lines_with(out, f" ✓ up on {master} ")[0]
    assert all(up_master < _lines_with(out, f" ✓ up on {m} ")[0] for m in minions)
    assert ("✓ init on" in out) == (not spec.general.insecure)
    if name == "ipv6-ids":
        assert "dns64-nat64-runtime: native (unset in the config)" in out
    assert f"Lab {name!r} is up" in out

    status = ok("status", "--name", name)
    assert f"lab {name}: up" in status

    result = lab("check", "--name", name)
    kinds = ("test pod", "node ping", "pod ping", "DNS64", "NAT64")
    rows = [line for line in result.stdout.splitlines() if line.startswith(kinds)]
    failed = [row for row in rows if "✗" in row]
    assert result.returncode == 0 and not failed, f"{result.stdout}\n{result.stderr}"
    nodes, families = len(spec.nodes), len(spec.mgmt)
    cluster = sum(s.is_cluster_node for s in spec.nodes.values())
    expected = nodes * (nodes - 1) * families + cluster * (cluster - 1) * len(spec.pod)
    expected += 2 * cluster if spec.mode == "ipv6" else 0
    assert len(rows) == expected, result.stdout
    assert len(_lines_with(result.stdout, " ✓ Test pod on ")) == cluster

    if name == "dual-stack":  # a second check reuses the pods and their addresses
        again = lab("check", "--name", name)
        assert again.returncode == 0, again.stdout
        pods = [line.split("(")[:2] for line in result.stdout.splitlines() if "Test pod on" in line]
        assert [line.split("(")[:2] for line in again.stdout.splitlines() if "Test pod on" in line] == pods

    if name == "ipv4":  # exec reaches the node's namespace and sandbox, and passes the exit code back
        probe = lab("exec", "--name", name, master, "--", "sh", "-c",
                    'ip -br link show eth1 && test -f "$LAZYJACK_LAB_ROOT/etc/cni/net.d/00-lazyjack.conflist"; exit 7')
        assert probe.returncode == 7, probe.stderr
        assert probe.stdout.startswith("eth1"), probe.stdout
        again = lab("up", "--config", str(one.config))
        assert again.returncode == 1 and f"lab {name!r} exists" in again.stderr

    out = one.down()
    for node in spec.nodes:
        assert f" ✓ {node} is back to its state before prepare" in out
    assert _lines_with(out, f" ✓ down on {master} ")[0] > max([_lines_with(out, f" ✓ down on {m} ")[0] for m in minions])
    if servers and others:  # and cleaned after them
        last = min(_lines_with(out, f" ✓ clean on {n} ")[0] for n in servers)
        assert all(last > _lines_with(out, f" ✓ clean on {n} ")[0] for n in others)


def test_down_after_a_failed_up(make_lab: MakeLab, tmp_path: Path) -> None:
    """kubeadm present (so not skipped) but broken: prepare fails on every node; down still removes it all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubeadm"
    fake.write_text("#!/bin/sh\necho 'kubeadm stand-in: failing on purpose' >&2\nexit 1\n")
    fake.chmod(0o755)
    one = make_lab("lab-failed", CONFIGS["dual-stack"])

    result = lab("up", "--config", str(one.config), "--name", one.name,
                 env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert " ✗ prepare on master (exit 1)" in result.stdout
    assert "kubeadm stand-in: failing on purpose" in result.stdout
    assert f"lazyjack lab down --name {one.name}" in result.stderr
    assert f"lab {one.name}: failed" in ok("status", "--name", one.name)

    out = one.down()
    assert " ✓ master is back to its state before prepare" in out


def test_down_after_an_interrupted_up(make_lab: MakeLab) -> None:
    """SIGTERM while the minion prepares (after the DNS64/NAT64 node is done): up stops, down removes everything."""
    one = make_lab("lab-intr", CONFIGS["ipv6"])
    environ = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-m", "lazyjack", "lab", "up", "--config", str(one.config),
                             "--name", one.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=environ)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the minion's prepare starts as soon as my-master's has ended
        seen.append(line)
        if line.startswith(" ✓ prepare on my-master "):
            break
    assert proc.poll() is None, "".join(seen)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode == 143, out
    assert "lab up interrupted" in out
    assert f"lab {one.name}: interrupted" in ok("status", "--name", one.name)

    down = one.down()
    assert " ✓ clean on my-master " in down
    assert " ✓ my-master is back to its state before prepare" in down


def test_ssh_lab_up_check_down(make_lab: MakeLab) -> None:
    """lab up --ssh: an sshd in every node, `lazyjack cluster up` over SSH from here, lab check passes."""
    one = make_lab("ssh-ipv6", IPV6_IDS)
    out = ok("up", "--ssh", "--config", str(one.config), "--name", one.name)
    for node in one.spec.nodes:
        assert _lines_with(out, f" ✓ Starting sshd in {node} (reached at fe80::2%ljs")
        assert _lines_with(out, f" ✓ prepare on {node} ")
        sessions = (one.directory / "nodes" / node / "ssh" / "sshd" / "sshd.log").read_text()
        assert "Accepted publickey for root" in sessions  # lazyjack really ran over SSH
    assert "Running `lazyjack cluster up` over SSH" in out
    assert " ✓ pre-flight on 3 node(s)" in out and " ✓ init on gw-master " in out
    first = _lines_with(out, " ✓ prepare on gw-master ")[0]
    assert all(first < _lines_with(out, f" ✓ prepare on {m} ")[0] for m in ("gw-minion-a", "gw-minion-b"))
    # Every node holds the lab's config with init's token, root's and 0600, pushed over SSH.
    lab_config = (one.directory / "config.yaml").read_bytes()
    assert b"token-cert-hash:" in lab_config
    for node in one.spec.nodes:
        copy = one.directory / "nodes" / node / "config.yaml"
        assert copy.read_bytes() == lab_config and copy.stat().st_mode & 0o777 == 0o600
    tag = "ljs" + hashlib.sha256(one.name.encode()).hexdigest()[:6]
    assert sorted(link for link in os.listdir("/sys/class/net") if link.startswith(tag)) == [
        f"{tag}{i}" for i in range(3)]  # this machine's ends of the nodes' access links

    result = lab("check", "--name", one.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checks passed" in result.stdout and "failed" not in result.stdout.splitlines()[-1]

    down = one.down()
    for node in one.spec.nodes:
        assert f" ✓ {node} is back to its state before prepare" in down
    assert not [link for link in os.listdir("/sys/class/net") if link.startswith(tag)]


def _restore_log(one: Lab, node: str) -> str:
    logs = sorted((one.directory / "nodes" / node / "logs").glob("*-boot-lazyjack-restore.log"))
    assert logs, f"no boot of {node} ran lazyjack-restore.service"
    return logs[-1].read_text()


def test_reboot_of_the_dns64_nat64_master_and_of_a_minion(make_lab: MakeLab) -> None:
    """3-node IPv6 lab: each rebooted node loses its kernel state and comes back by its own boot files."""
    one = make_lab("ipv6-reboot", IPV6_IDS)
    ok("up", "--config", str(one.config), "--name", one.name)
    status = ok("status", "--name", one.name)
    for node in one.spec.nodes:
        row = next(line for line in status.splitlines() if line.strip().startswith(node))
        assert "prepared and up; all" in row and "in place" in row, status

    for node in ("gw-master", "gw-minion-a"):
        out = ok("reboot", "--name", one.name, node)
        assert f" ✓ Power off {node}" in out and f" ✓ Boot {node}: lazyjack-restore.service" in out, out
        restore = _restore_log(one, node)
        # The kernel lost what lazyjack applied; the sysctl.d file brought forwarding back before restore ran.
        address = "fd00:20::a/64" if node == "gw-master" else "fd00:20::12/64"
        assert f"✓ address {address} on eth1: re-applied ({address} is not on eth1)" in restore, restore
        assert "✓ MTU of eth1: re-applied (MTU of eth1 is 1500 instead of 1400)" in restore, restore
        assert "· sysctl net.ipv6.conf.all.forwarding: 1" in restore, restore
        if node == "gw-master":
            for server in ("DNS64 server (named)", "NAT64 server (tayga)", "support namespace"):
                assert f"✓ {server}" in restore, restore
        result = lab("check", "--name", one.name)
        failed = [line for line in result.stdout.splitlines() if "✗" in line]
        assert result.returncode == 0 and not failed, f"after rebooting {node}:\n{result.stdout}\n{result.stderr}"
        assert any(line.startswith("DNS64") for line in result.stdout.splitlines())
        assert any(line.startswith("NAT64") for line in result.stdout.splitlines())
        status = ok("status", "--name", one.name)
        assert status.count("in place") >= len(one.spec.nodes), status

    out = one.down()
    for node in one.spec.nodes:
        assert f" ✓ {node} is back to its state before prepare" in out, out
