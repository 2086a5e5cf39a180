"""A fake node for the step, engine and node-command tests: a packaged example's config and plan,
in-memory kernel, sysctls and programs, real files under a temporary root, and snapshots of it all.

The starting state is a host nobody has prepared: eth1 is down with MTU 1500 (the examples
ask for 1400), forwarding is off, /etc/hosts and /etc/resolv.conf are a distribution's, and
eth0 (up, with the default route) stands for the interface the host is reached through.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path, PurePosixPath
from typing import Any

import lazyjack
from fake_host import FakeNetlink, FakeRunner, FakeSysctl, FixedUsers
from lazyjack.commands.node import NodeRun, run_node_command
from lazyjack.config import load_config
from lazyjack.config.model import Config
from lazyjack.config.plan import NodePlan, Plan, build_plan
from lazyjack.errors import FileOperationFailed, HostError
from lazyjack.host import Host
from lazyjack.host.files import Files
from lazyjack.host.process import Completed, ProgressCallback
from lazyjack.host.users import User, UserFiles
from lazyjack.steps.base import Context
from lazyjack.steps.engine import RunResult
from lazyjack.steps.journal import JOURNAL_PATH, Journal
from lazyjack.steps.kube import ADMIN_CONF, APISERVER_MANIFEST, KUBELET_CONF

EXAMPLES = Path(lazyjack.__file__).parent / "examples"
#: Example file -> (master, a minion).
EXAMPLE_NODES: dict[str, tuple[str, str]] = {
    "ipv6.yaml": ("my-master", "a-minion"),
    "ipv4.yaml": ("master", "minion-1"),
    "dual-stack.yaml": ("master", "minion"),
}
#: (example, node name) for the master and a minion of every example, with readable ids.
EXAMPLE_ROLES: list[tuple[str, str]] = [(ex, name) for ex, names in EXAMPLE_NODES.items() for name in names]


def role_id(example: str, node: str) -> str:
    return f"{example.removesuffix('.yaml')}-{node}"


CONFIG_MTU = 1400
START_MTU = 1500
HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "search example.test\nnameserver 198.51.100.53\n"
SYSCTLS = {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0", "vm.swappiness": "60"}
KUBEADM_VERSION = "v1.31.2"
KUBE_PATHS = (APISERVER_MANIFEST, ADMIN_CONF, KUBELET_CONF)


#: The DNS64/NAT64 node of the IPv6 example runs named and tayga in a network namespace, which
#: these fakes do not model: the tests move those roles to a node of their own.
SUPPORT_NODE = "dns-box"


def config_text(example: str, *, mtu: int = CONFIG_MTU) -> str:
    """The example's YAML with pod_net.mtu set (and in IPv6, DNS64/NAT64 on SUPPORT_NODE)."""
    text = (EXAMPLES / example).read_text()
    if "opmodes: master dns64 nat64" in text:
        text = text.replace("opmodes: master dns64 nat64", "opmodes: master").replace(
            "topology:\n", f"topology:\n    {SUPPORT_NODE}:\n        interface: eth1\n        opmodes: dns64 nat64\n"
            "        id: 4\n"
        )
    if "    mtu:" in text:
        return "\n".join(
            f"    mtu: {mtu}" if line.strip().startswith("mtu:") else line for line in text.splitlines()
        ) + "\n"
    return text.replace("pod_net:\n", f"pod_net:\n    mtu: {mtu}\n")


class KubeRunner(FakeRunner):
    """FakeRunner answering the calls lazyjack makes of kubeadm and systemctl, and nothing else.

    Like tests/standins/kubeadm it leaves the files real kubeadm leaves under the root
    (init: the API server manifest, admin.conf, kubelet.conf; join: kubelet.conf; reset
    removes them), so the steps' idempotency checks see a real effect. `fail(...)` makes
    the next matching call exit non-zero.
    """

    ALLOWED = (
        ["kubeadm", "version", "-o", "short"],
        ["kubeadm", "reset", "-f"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "kubelet"],
    )

    def __init__(self, root: Path) -> None:
        super().__init__(installed=["kubelet"])
        self.root = root
        self.script(["kubeadm"])
        self.script(["kubeadm", "version"], stdout=f"{KUBEADM_VERSION}\n")
        self.script(["systemctl"])

    def fail(self, argv_prefix: list[str], *, returncode: int = 1, stderr: str = "failed as the test asked") -> None:
        """The next call starting with these tokens (at least two) exits with `returncode`."""
        assert len(argv_prefix) >= 2, "a failure needs a prefix longer than the general scripts"
        self.script(argv_prefix, returncode=returncode, stderr=stderr, times=1)

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        on_progress: ProgressCallback | None = None,
        progress_interval: float = 5.0,
    ) -> Completed:
        kubeadm_config = len(argv) == 4 and argv[:1] == ["kubeadm"] and argv[1] in ("init", "join")
        assert list(argv) in self.ALLOWED or (kubeadm_config and argv[2] == "--config"), f"unexpected call {argv}"
        done = super().run(
            argv,
            timeout=timeout,
            input=input,
            env=env,
            check=check,
            on_progress=on_progress,
            progress_interval=progress_interval,
        )
        if done.returncode == 0:
            self._effects(argv)
        return done

    def _effects(self, argv: list[str]) -> None:
        if argv[:2] in (["kubeadm", "init"], ["kubeadm", "join"]):
            assert Path(argv[3]).is_file(), f"kubeadm was given {argv[3]}, which does not exist"
            made = KUBE_PATHS if argv[1] == "init" else (KUBELET_CONF,)
            for path in made:
                real = self.root / path.lstrip("/")
                real.parent.mkdir(parents=True, exist_ok=True)
                real.write_text(f"written by kubeadm {argv[1]}\n")
        elif argv == ["kubeadm", "reset", "-f"]:
            for path in KUBE_PATHS:
                (self.root / path.lstrip("/")).unlink(missing_ok=True)
            for directory in ("etc/kubernetes/manifests", "etc/kubernetes"):
                with contextlib.suppress(OSError):  # not empty: left as kubeadm leaves it
                    (self.root / directory).rmdir()

    def kube_calls(self) -> list[list[str]]:
        """Every call but `kubeadm version` (which only reads)."""
        return [a for a in self.argvs() if a[:2] != ["kubeadm", "version"]]


class FlakySysctl(FakeSysctl):
    """FakeSysctl whose next write of a named key can be refused, as /proc/sys refuses it (EPERM)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        super().__init__(values)
        self.refuse: set[str] = set()

    def fail_next(self, name: str) -> None:
        self.refuse.add(name)

    def set(self, name: str, value: str) -> None:
        if name in self.refuse:
            self.refuse.discard(name)
            raise HostError(f"sysctl {name} could not be set to {value!r}: {os.strerror(errno.EPERM)}")
        super().set(name, value)


def fail_writes(files: Files, path: str, *, times: int = 1, code: int = errno.EACCES) -> None:
    """Make the next `times` writes of `path` (atomic, or of a secret) fail with FileOperationFailed (this Files only)."""
    real, real_secret = files.write_atomic, files.write_secret
    left = [times]

    def failing() -> bool:
        if left[0] > 0:
            left[0] -= 1
            return True
        return False

    def write_atomic(target: Any, data: bytes, *, mode: int | None = None) -> None:
        if str(target) == path and failing():
            raise FileOperationFailed("write", path, code, root=str(files.root))
        real(target, data, mode=mode)

    def write_secret(target: Any, data: bytes) -> None:
        if str(target) == path and failing():
            raise FileOperationFailed("write", path, code, root=str(files.root))
        real_secret(target, data)

    files.write_atomic = write_atomic  # type: ignore[method-assign]
    files.write_secret = write_secret  # type: ignore[method-assign]


def fail_symlinks(files: Files, path: str, *, code: int = errno.EACCES) -> None:
    """Make the next symbolic link made at `path` fail with FileOperationFailed (this Files only)."""
    real = files.symlink
    left = [1]

    def symlink(target_path: Any, target: str) -> None:
        if str(target_path) == path and left[0] > 0:
            left[0] -= 1
            raise FileOperationFailed("create symbolic link", path, code, root=str(files.root))
        real(target_path, target)

    files.symlink = symlink  # type: ignore[method-assign]


Snapshot = dict[str, Any]


@dataclass
class FakeNode:
    """One node of an example cluster on fakes; `snapshot()` is all the state lazyjack may touch."""

    root: Path
    net: FakeNetlink
    sysctl: FlakySysctl
    runner: KubeRunner
    host: Host
    config: Config
    plan: Plan
    node: NodePlan
    lines: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.node.name

    def context(self, *, invoking_user: str | None = None, skip_phases: frozenset[str] = frozenset()) -> Context:
        return Context(
            host=self.host,
            config=self.config,
            plan=self.plan,
            node=self.node,
            root=self.root,
            report=self.lines.append,
            kubeadm_api="v1beta4",
            skip_phases=skip_phases,
            invoking_user=invoking_user,
        )

    def journal(self) -> Journal:
        return Journal.load(self.host.files, host=self.name)

    def run(self, command: str, *, dry_run: bool = False, rollback: bool = True) -> RunResult:
        """run_node_command as the CLI calls it; what it reports lands in `lines`."""
        return run_node_command(
            self.host,
            self.config,
            self.plan,
            self.name,
            NodeRun(command, dry_run=dry_run, rollback=rollback),
            root=self.root,
            report=self.lines.append,
        )

    def output(self) -> str:
        text = "\n".join(self.lines)
        self.lines.clear()
        return text

    def write(self, path: str, data: str | bytes) -> None:
        """Arrange a file, as someone other than lazyjack would."""
        real = self.root / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_bytes(data.encode() if isinstance(data, str) else data)

    def read(self, path: str) -> str | None:
        real = self.root / path.lstrip("/")
        return real.read_text() if real.is_file() else None

    def add_certs(self) -> None:
        """A CA in the work area, as `lazyjack init` leaves it (up copies it for kubeadm)."""
        certs = f"{self.config.general.work_area.rstrip('/')}/certs"
        self.write(f"{certs}/ca.crt", "-----BEGIN CERTIFICATE-----\nfake\n")
        self.write(f"{certs}/ca.key", "-----BEGIN PRIVATE KEY-----\nfake\n")

    def snapshot(self, *, journal: bool = True) -> Snapshot:
        """Links, addresses, routes, sysctls and every file and directory under the root.

        With journal=False the journal's directory is left out (apply_steps keeps it; the
        node lock of run_node_command removes it when empty).
        """
        kernel = self.net.kernel
        names = {link.index: link.name for link in kernel.links.values()}
        links = {
            link.name: {"mtu": link.mtu, "up": link.up, "addresses": [str(a) for a in link.addresses]}
            for link in kernel.links.values()
        }
        routes = sorted(
            f"{r.dst} via {r.gateway} dev {names.get(r.oif or -1)} proto {r.proto} metric {r.priority}"
            for r in kernel.routes
        )
        files: dict[str, object] = {}
        for directory, dirnames, filenames in os.walk(self.root):
            for name in sorted(dirnames + filenames):
                real = Path(directory, name)
                relative = "/" + str(real.relative_to(self.root))
                if not journal and _is_state_dir(relative):
                    continue
                info = real.lstat()
                mode = oct(info.st_mode & 0o7777)
                if real.is_symlink():  # an absolute target is a host path: not followed here
                    files[relative] = ("link", str(real.readlink()))
                else:
                    files[relative] = ("dir", mode) if real.is_dir() else ("file", mode, real.read_bytes())
        return {"links": links, "routes": routes, "sysctls": dict(self.sysctl.values), "files": files}


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed between two snapshots, one readable line per item ([] when equal)."""
    lines: list[str] = []
    for part in ("links", "sysctls", "files"):
        old, new = before[part], after[part]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                lines.append(f"{part} {key}: {_short(old.get(key))} -> {_short(new.get(key))}")
    lines += [f"route gone: {r}" for r in before["routes"] if r not in after["routes"]]
    lines += [f"route added: {r}" for r in after["routes"] if r not in before["routes"]]
    return lines


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _is_state_dir(path: str) -> bool:
    state, here = PurePosixPath(JOURNAL_PATH).parent, PurePosixPath(path)
    return here == state or here in state.parents or state in here.parents


#: Who runs `sudo lazyjack` on the fake nodes: an unprivileged uid (nobody's, 65534) when the tests run as
#: root, the user running them otherwise; their home is under the node's root, never this machine's.
USER = User("alice", 65534, 65534, "/home/alice") if os.geteuid() == 0 else User(
    "alice", os.getuid(), os.getgid(), "/home/alice")


def current_user() -> str:
    return USER.name


def kubeconfig_path(user: str) -> str:
    """Where UserKubeconfig puts the user's kubeconfig (a host path: under the root)."""
    assert user == USER.name
    return f"{USER.home}/.kube/config"


def user_files(fake: FakeNode) -> UserFiles:
    """The test user's home on the node, handled as that user (to arrange a kubeconfig of their own)."""
    return UserFiles(USER, fake.root / USER.home.lstrip("/"))


@functools.cache
def example_config(example: str, mtu: int) -> tuple[Config, Plan]:
    """The example's validated config and its plan (both immutable: loaded once per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, example)
        path.write_text(config_text(example, mtu=mtu))
        config = load_config(path)
    return config, build_plan(config)


def make_node(
    tmp_path: Path,
    example: str,
    name: str,
    *,
    mtu: int = CONFIG_MTU,
    arrange: Callable[[FakeNode], None] | None = None,
) -> FakeNode:
    """A fresh, unprepared node `name` of `example`, its files under tmp_path/root."""
    config, plan = example_config(example, mtu)
    root = tmp_path / "root"
    root.mkdir()
    net = FakeNetlink()
    net.add_link("eth0")
    net.add_address("eth0", ip_interface("198.51.100.10/24"))
    net.add_route(ip_network("0.0.0.0/0"), ip_address("198.51.100.1"), dev="eth0")
    net.add_link("eth1", mtu=START_MTU, up=False)
    sysctl = FlakySysctl(SYSCTLS)
    runner = KubeRunner(root)
    host = Host(net=net, files=Files(root), sysctl=sysctl, proc=runner, users=FixedUsers([USER]))
    fake = FakeNode(root, net, sysctl, runner, host, config, plan, plan.nodes[name])
    (root / "var/lib").mkdir(parents=True)  # as on every host: the node lock leaves only what it found
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    home = root / USER.home.lstrip("/")
    home.mkdir(parents=True)
    os.chown(home, USER.uid, USER.gid)
    fake.write("/etc/hosts", HOSTS.format(name=name))
    fake.write("/etc/resolv.conf", RESOLV)
    if arrange is not None:
        arrange(fake)
    return fake
