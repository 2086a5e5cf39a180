"""Separate machines simulated for `lazyjack cluster` over SSH: a real sshd per node.

Each node is a network namespace with its cluster interface (eth1) on a shared switch and an
access link (ssh0) to this machine, and a mount namespace of its own (lazyjack.lab.sshd): its
/etc and /var/lib are overlays, its /var/lib/lazyjack and /tmp its own. lazyjack runs there as
`--remote-lazyjack` names it, with the recording stand-ins first on PATH. Names carry a random
tag, and `destroy` removes every namespace, process and file, also after a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazyjack.host.process import Runner, stop_pids
from lazyjack.lab import sshd
from lazyjack.lab.topology import processes_in

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
BASE = Path("/var/lib/lazyjack-ssh-test")
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "search example.test\nnameserver 198.51.100.53\n"
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")
STANDIN_LOG = "/tmp/lazyjack-standin.jsonl"
#: In each node's /etc: its lazyjack wrapper and the stand-ins' environment (env.json).
TEST_DIR = "/etc/lazyjack-test"
WRAPPER = """#!{python}
# lazyjack on a test node: {what}, the stand-ins first on PATH.
import json, os, sys
os.environ["PATH"] = "{standins}:{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"
os.environ["STANDIN_ROOT"] = "/"
os.environ["STANDIN_LOG"] = "{log}"
os.environ.pop("SUDO_USER", None)
{pythonpath}try:
    with open("{env}") as f:
        os.environ.update(json.load(f))
except FileNotFoundError:
    pass
os.execv(sys.executable, [sys.executable, "-m", "lazyjack", *sys.argv[1:]])
"""


def sh(*argv: str, check: bool = True, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout, **kw)


@dataclass
class SshCluster:
    directory: Path
    tag: str
    nodes: dict[str, sshd.SshNode] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.directory / "config.yaml"

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    #: The --remote-lazyjack of the nodes: each node has its own copy, in its own /etc.
    lazyjack = TEST_DIR + "/lazyjack"

    def cluster(self, *args: str, timeout: float = 300, ssh_config: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`lazyjack cluster ARGS` from this machine, as an admin would run it."""
        action, *rest = args
        argv = [sys.executable, "-m", "lazyjack", "cluster", action, "--config", str(self.config),
                "--ssh-config", str(ssh_config or self.ssh_config), "--remote-lazyjack", self.lazyjack,
                "--log-dir", str(self.directory / "logs" / uuid.uuid4().hex[:8]), *rest]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def write_ssh_config(self, path: Path, *, known_hosts: Path, user: str = "root") -> Path:
        path.write_text("".join(sshd.ssh_config_entry(n, key=self.key, known_hosts=known_hosts, user=user)
                                for n in self.nodes.values()))
        return path

    def calls(self, name: str) -> list[dict[str, Any]]:
        log = self.nodes[name].tmp / Path(STANDIN_LOG).name
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def standin_env(self, name: str, env: dict[str, str]) -> None:
        """The stand-ins' environment on one node from now on (STANDIN_FAIL, STANDIN_KUBEADM_SLEEP...)."""
        self.write_in_node(name, f"{TEST_DIR}/env.json", json.dumps(env).encode())

    def write_in_node(self, name: str, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file as the node sees it (inside its mount namespace)."""
        pid = sshd.running_pid(self.nodes[name])
        assert pid is not None, f"{name}'s sshd is not running"
        sh("nsenter", f"--mount=/proc/{pid}/ns/mnt", "--", "sh", "-c", 'cat > "$1" && chmod "$2" "$1"', "-",
           path, f"{mode:o}", input=data.decode())

    def remove_in_node(self, name: str, path: str) -> None:
        pid = sshd.running_pid(self.nodes[name])
        assert pid is not None, f"{name}'s sshd is not running"
        sh("nsenter", f"--mount=/proc/{pid}/ns/mnt", "--", "rm", "-f", "--", path)

    def snapshot(self, name: str) -> dict[str, Any]:
        """What lazyjack may change on the node: eth1, routes, forwarding sysctls and its own files."""
        node = self.nodes[name]

        def ns(*argv: str) -> str:
            return sh("nsenter", f"--net=/run/netns/{node.netns}", *argv).stdout

        eth1 = json.loads(ns("ip", "-j", "addr", "show", "dev", "eth1"))[0]
        files: dict[str, tuple[int, str] | None] = {}
        for top in ("etc", "var-lib-lazyjack", "tmp"):
            for path in sorted((node.directory / top).rglob("*")):
                if path.name == Path(STANDIN_LOG).name or str(path).startswith(str(node.etc / TEST_DIR[5:])):
                    continue
                entry = _entry(path)
                if top == "etc" and entry == _entry(Path("/") / path.relative_to(node.directory)):
                    continue  # copied up by the overlay, but as on this machine: not the node's change
                files[str(path.relative_to(node.directory))] = entry
        return {
            "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in eth1["addr_info"]),
            "up": "UP" in eth1["flags"],
            "mtu": eth1["mtu"],
            "routes": sorted(ns("ip", "-4", "route").splitlines() + ns("ip", "-6", "route").splitlines()),
            "sysctls": {s: ns("cat", f"/proc/sys/{s}").strip() for s in SYSCTLS},
            "files": files,
        }

    def snapshots(self) -> dict[str, dict[str, Any]]:
        return {name: self.snapshot(name) for name in self.nodes}

    def destroy(self) -> None:
        proc = Runner()
        for node in self.nodes.values():
            sshd.stop_sshd(node)
            stop_pids(processes_in(node.netns), grace=5.0)
            sshd.delete_access_link(proc, node)
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            BASE.rmdir()  # only when no other run's cluster is in it


def _entry(path: Path) -> tuple[int, str] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"
    return st.st_mode, digest


def make_ssh_cluster(config_text: str, names: list[str]) -> SshCluster:
    """The nodes of `names`, each with a running sshd; a pinned known_hosts and an ssh_config for them."""
    tag = uuid.uuid4().hex[:6]
    BASE.mkdir(mode=0o755, exist_ok=True)
    cluster = SshCluster(BASE / tag, tag)
    proc = Runner()
    try:
        cluster.directory.mkdir(mode=0o755)
        cluster.config.write_text(config_text)
        switch = f"ljs-{tag}-sw"
        sh("ip", "netns", "add", switch)
        cluster.namespaces.append(switch)
        sh("ip", "-n", switch, "link", "add", "sw", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "sw", "up")
        sshd.new_key(proc, cluster.key, comment="lazyjack ssh test")
        for i, name in enumerate(names):
            netns = f"ljs-{tag}-{i}"
            sh("ip", "netns", "add", netns)
            cluster.namespaces.append(netns)
            sh("ip", "-n", netns, "link", "set", "lo", "up")
            sh("ip", "-n", switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth1", "netns", netns)
            sh("ip", "-n", switch, "link", "set", f"p{i}", "master", "sw", "up")
            sh("nsenter", f"--net=/run/netns/{netns}", "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
               "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.eth1.accept_dad=0")
            node = sshd.SshNode(name, netns, cluster.directory / "nodes" / name, f"ljs{tag}{i}", keep=(REPO,))
            cluster.nodes[name] = node
            sshd.prepare_dirs(node)
            (node.etc / "hosts").write_text(HOSTS)
            (node.etc / "resolv.conf").write_text(RESOLV)
            (node.etc / TEST_DIR[5:]).mkdir()
            (node.etc / TEST_DIR[5:] / "lazyjack").write_text(wrapper_text(what="this worktree's lazyjack"))
            (node.etc / TEST_DIR[5:] / "lazyjack").chmod(0o755)
            sshd.add_access_link(proc, node)
            sshd.start_sshd(node, authorized_keys=Path(f"{cluster.key}.pub").read_text())
        cluster.known_hosts.write_text("".join(sshd.known_hosts_line(n) for n in cluster.nodes.values()))
        cluster.write_ssh_config(cluster.ssh_config, known_hosts=cluster.known_hosts)
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def wrapper_text(*, what: str, pythonpath: Path | None = None) -> str:
    """The node's lazyjack: a Python program that sets the stand-ins' environment and runs lazyjack."""
    return WRAPPER.format(python=sys.executable, what=what, standins=STANDINS, log=STANDIN_LOG,
                          bindir=Path(sys.executable).parent, env=f"{TEST_DIR}/env.json",
                          pythonpath=f'os.environ["PYTHONPATH"] = "{pythonpath}"\n' if pythonpath else "")
