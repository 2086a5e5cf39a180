"""A small cluster of network namespaces for tests: one per node, joined on eth1, with --root sandboxes.

lazyjack runs inside each namespace as a real subprocess (`ip netns exec`), with the
recording kubeadm/systemctl stand-ins of tests/standins first on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazyjack.host.process import cmdline, describe_stuck, stop_pids

STANDINS = Path(__file__).resolve().parents[1] / "standins"
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lazyjack" / "examples"
HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "search example.test\nnameserver 198.51.100.53\n"
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")
#: The DNS64/NAT64 servers of the native runtime, and how long they get to go once killed.
SERVERS = ("named", "unbound", "tayga")
STOP_TIMEOUT = 5.0


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)


# Runs inside a node's namespace: each job through cli.main, its output captured.
_MANY = """
import contextlib, io, json, sys
from lazyjack.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


@dataclass
class Node:
    name: str
    netns: str
    root: Path
    log: Path

    def run(
        self, *args: str, config: Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`lazyjack --config C --host NAME --root R ARGS` inside this node's namespace."""
        environ = self._env()
        environ.update(env or {})
        # nsenter switches only the network namespace (ip netns exec would also make a private
        # mount namespace, in which namespaces lazyjack creates would not be visible outside).
        argv = [
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            sys.executable,
            "-m",
            "lazyjack",
            "--config",
            str(config),
            "--host",
            self.name,
            "--root",
            str(self.root),
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=timeout)

    def run_many(self, commands: list[list[str]], *, config: Path, timeout: float = 300) -> list[tuple[int, str, str]]:
        """Several lazyjack command lines in one interpreter inside the namespace (faster than one process
        each): (exit code, stdout, stderr) of each, run with `--config C --host NAME --root R` as `run` does."""
        jobs = [["--config", str(config), "--host", self.name, "--root", str(self.root), *c] for c in commands]
        argv = ["nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-c", _MANY, json.dumps(jobs)]
        result = subprocess.run(argv, capture_output=True, text=True, env=self._env(), timeout=timeout, check=False)
        assert result.returncode == 0, result.stderr
        return [tuple(r) for r in json.loads(result.stdout)]  # type: ignore[misc]

    def _env(self) -> dict[str, str]:
        environ = dict(os.environ)
        environ["PATH"] = f"{STANDINS}:{Path(sys.executable).parent}:{environ.get('PATH', '')}"
        environ["STANDIN_ROOT"] = str(self.root)
        environ["STANDIN_LOG"] = str(self.log)
        environ.pop("SUDO_USER", None)
        return environ

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.netns, *argv, check=check)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def snapshot(self) -> dict[str, Any]:
        """Everything lazyjack may change on this node: kernel state of the namespace and files under root."""
        addrs = json.loads(self.exec("ip", "-j", "addr", "show", "dev", "eth1").stdout)[0]
        routes = {
            family: sorted(
                json.dumps(r, sort_keys=True)
                for r in json.loads(self.exec("ip", "-j", family, "route", "show", "table", "main").stdout)
            )
            for family in ("-4", "-6")
        }
        sysctls = {s: self.exec("cat", f"/proc/sys/{s}").stdout.strip() for s in SYSCTLS}
        links = sorted(link["ifname"] for link in json.loads(self.exec("ip", "-j", "link", "show").stdout))
        files: dict[str, tuple[int, str]] = {}
        for path in sorted(self.root.rglob("*")):
            rel = str(path.relative_to(self.root))
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            files[rel] = (st.st_mode, digest)
        return {
            "addresses": sorted(
                f"{a['local']}/{a['prefixlen']}" for a in addrs["addr_info"] if a.get("scope") == "global"
            ),
            "mtu": addrs["mtu"],
            "up": "UP" in addrs["flags"],
            "routes": routes,
            "sysctls": sysctls,
            "links": links,
            "files": files,
        }


@dataclass
class Cluster:
    nodes: dict[str, Node]
    config: Path
    namespaces: list[str] = field(default_factory=list)

    def run(self, name: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.nodes[name].run(*args, config=self.config, **kwargs)

    def ok(self, name: str, *args: str, **kwargs: Any) -> str:
        result = self.run(name, *args, **kwargs)
        assert result.returncode == 0, (
            f"lazyjack {' '.join(args)} on {name}: rc={result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def snapshots(self) -> dict[str, dict[str, Any]]:
        return {name: node.snapshot() for name, node in self.nodes.items()}

    def destroy(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)


def make_cluster(tmp_path: Path, config_text: str, node_names: list[str], *, mtu: int = 1500) -> Cluster:
    """Namespaces for the nodes (eth1 each, joined by a bridge namespace), sandboxes, and the config file."""
    tag = uuid.uuid4().hex[:6]
    switch = f"ljt-{tag}-sw"
    cluster = Cluster(nodes={}, config=tmp_path / "config.yaml")
    cluster.config.write_text(config_text)
    try:
        sh("ip", "netns", "add", switch)
        cluster.namespaces.append(switch)
        sh("ip", "-n", switch, "link", "add", "sw", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "sw", "up")
        for i, name in enumerate(node_names):
            ns = f"ljt-{tag}-{i}"
            sh("ip", "netns", "add", ns)
            cluster.namespaces.append(ns)
            port = f"p{i}"
            sh(
                "ip",
                "-n",
                switch,
                "link",
                "add",
                port,
                "mtu",
                str(mtu),
                "type",
                "veth",
                "peer",
                "name",
                "eth1",
                "netns",
                ns,
            )
            sh("ip", "-n", switch, "link", "set", port, "master", "sw", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # IPv6 DAD would keep new addresses tentative for a second or two; these links are private.
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth1.accept_dad=0")
            root = tmp_path / name
            for sub in ("etc", "var/lib", "tmp"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            (root / "etc" / "hosts").write_text(HOSTS.format(name=name))
            (root / "etc" / "resolv.conf").write_text(RESOLV)
            cluster.nodes[name] = Node(name, ns, root, tmp_path / f"calls-{name}.jsonl")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


# --- the DNS64/NAT64 servers of a node's sandbox ----------------------------------------------

def server_pids(root: Path) -> dict[str, list[int]]:
    """named, unbound and tayga processes whose command line mentions the sandbox `root`, by program."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(int(entry.name))
        if argv and Path(argv[0]).name in SERVERS and any(Path(arg).is_relative_to(root) for arg in argv):
            found.setdefault(Path(argv[0]).name, []).append(int(entry.name))
    return found


def kill_servers(root: Path) -> None:
    """Stop every server of `root` (what a failed run may leave) and wait for them to go."""
    stuck = stop_pids([pid for group in server_pids(root).values() for pid in group], grace=STOP_TIMEOUT)
    assert not stuck, f"servers of {root} did not stop: {describe_stuck(stuck)}"


# --- what a run reports ---------------------------------------------------------------------------

STEP_MARKS = ("✓", "~", "✗", "↺", "·")


def step_lines(out: str) -> list[str]:
    """The lines of a node command's report that say what a step did (`  ✓ title: ...`, `  · title: reason`)."""
    return [line for line in out.splitlines() if line[:2] == "  " and line[2:3] in STEP_MARKS and line[3:4] == " "]


def assert_nothing_changed(out: str, node: str, state: str) -> None:
    """The exact outcome of a run that had nothing to do: every step a no-op with its reason, then the closing line."""
    steps = step_lines(out)
    assert steps and all(line.startswith("  · ") for line in steps), out
    assert out.rstrip("\n").splitlines()[-1] == f"nothing to change: {node} is already {state}", out


def assert_only_planned(out: str) -> None:
    """A dry run's report: it says so, and every step says what it would change (~) or why it need not (·)."""
    assert "(dry run: nothing changes)" in out.splitlines()[0], out
    steps = step_lines(out)
    assert any(line.startswith("  ~ ") for line in steps), out
    assert all(line.startswith(("  ~ ", "  · ")) for line in steps), out
