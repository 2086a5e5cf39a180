"""Throwaway container engines for the end-to-end tests: dockerd or a podman API service inside a node's namespace.

Each engine keeps all its state (images, containers, networks, sockets) in directories of
the test and its bridges and firewall rules in the node's network namespace, so nothing of
the host's own docker or podman is touched. The image both DNS64/NAT64 containers use is a
Debian rootfs made by debootstrap (bind9, tayga, iproute2), cached as a tarball under
CACHE_DIR so that later runs import it in seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lazyjack.host.containers import Engine

CACHE_DIR = Path(os.environ.get("LAZYJACK_TEST_CACHE", "/var/cache/lazyjack-tests"))
PACKAGES = ("tayga", "bind9", "unbound", "iproute2")
SUITE = "bookworm"
TARBALL = CACHE_DIR / f"dns64nat64-{SUITE}-{'-'.join(PACKAGES)}.tar"
IMAGE = "lazyjack/test-dns64nat64:latest"
MOUNTNS = Path(__file__).resolve().parent / "docker_mountns.py"
PODMAN_NETWORK_STATE = "/run/containers/networks"
DEBOOTSTRAP_TIMEOUT = 900.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def sh(*argv: str, check: bool = True, timeout: float = 120, stdin: int | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def rootfs_tarball() -> Path:
    """The cached rootfs tarball, made with debootstrap the first time (under a lock: tests may race)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if TARBALL.exists():
            return TARBALL
        work = CACHE_DIR / f"build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            rootfs = work / "rootfs"
            sh("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs),
               timeout=DEBOOTSTRAP_TIMEOUT)
            partial = work / "rootfs.tar"
            sh("tar", "-C", str(rootfs), "-cf", str(partial), ".", timeout=300)
            partial.rename(TARBALL)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return TARBALL


def _in_netns(netns: str) -> list[str]:
    # nsenter changes only the network namespace: `ip netns exec` would also remount /sys, which
    # hides the cgroup mounts dockerd and podman need.
    return ["nsenter", f"--net=/run/netns/{netns}"]


def _wait(engine: Engine, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not engine.answers():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} did not answer within {START_TIMEOUT}s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _mounts_under(directory: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target == str(directory) or target.startswith(f"{directory}/"):
            found.append(target)
    return found


def _remove_tree(directory: Path) -> None:
    """Unmount what an engine left mounted (overlays, netns files), deepest first, then delete the tree."""
    for target in sorted(_mounts_under(directory), key=len, reverse=True):
        sh("umount", "-l", target, check=False)
    shutil.rmtree(directory, ignore_errors=True)


@dataclass
class RunningEngine:
    runtime: str  # "docker" or "podman"
    socket: str
    env: dict[str, str]  # what lazyjack needs to find this engine
    cli: list[str]  # the engine's own CLI, pointed at it

    @property
    def api(self) -> Engine:
        return Engine(self.socket, name=self.runtime)


def short_dir(prefix: str) -> Path:
    """A fresh directory with a short path: a unix socket's path must fit in 108 bytes (containerd's is deep)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@contextlib.contextmanager
def dockerd(*, netns: str) -> Iterator[RunningEngine]:
    """dockerd in `netns` with its own data and exec roots; stopped and its files gone afterwards."""
    base = short_dir("ljdocker-")
    sock, log = base / "docker.sock", base / "dockerd.log"
    argv = [
        *_in_netns(netns), "dockerd",
        "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
        "-H", f"unix://{sock}", "--pidfile", str(base / "dockerd.pid"),
        # ip6tables needs experimental in docker 20.10; with it, docker's FORWARD chain drops new IPv6
        # connections into its bridges, which lazyjack's rules must open for the cluster nodes.
        "--experimental", "--iptables=true", "--ip6tables=true",
        "--bridge=none",  # no docker0: the namespace keeps only what lazyjack asks for
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        engine = RunningEngine("docker", str(sock), {"LAZYJACK_DOCKER_SOCKET": str(sock)},
                               ["docker", "-H", f"unix://{sock}"])
        _wait(engine.api, process, log, "dockerd")
        yield engine
    finally:
        _stop(process)
        _remove_tree(base)


@contextlib.contextmanager
def podman_service(*, netns: str) -> Iterator[RunningEngine]:
    """`podman system service` in `netns` with its own storage, network configs and network state; all gone afterwards.

    The service runs in a private mount namespace (docker_mountns.py) with an empty
    /run/containers/networks; the test's own podman commands go through the service
    (`podman --url`), so they see that state too.
    """
    base = short_dir("ljpodman-")
    sock, log = base / "podman.sock", base / "podman.log"
    options = [
        "--root", str(base / "storage"), "--runroot", str(base / "run"), "--tmpdir", str(base / "tmp"),
        "--network-config-dir", str(base / "networks"), "--cgroup-manager", "cgroupfs",
        "--events-backend", "none",
    ]
    private = [sys.executable, str(MOUNTNS), PODMAN_NETWORK_STATE, "--"]
    with open(log, "wb") as out:
        process = subprocess.Popen([*_in_netns(netns), *private, "podman", *options, "system", "service", "--time=0",
                                    f"unix://{sock}"],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    engine = RunningEngine("podman", str(sock), {"LAZYJACK_PODMAN_SOCKET": str(sock)},
                           ["podman", "--url", f"unix://{sock}"])
    try:
        _wait(engine.api, process, log, "podman system service")
        yield engine
    finally:
        # Containers are run by conmon, not the service: remove them before it goes.
        if process.poll() is None:
            sh(*engine.cli, "rm", "-a", "-f", "-t", "2", check=False, timeout=120)
            sh(*engine.cli, "network", "prune", "-f", check=False, timeout=60)
        _stop(process)
        _kill_lingering(base)
        _remove_tree(base)


def _kill_lingering(base: Path) -> None:
    """Kill what podman left running for `base`: conmon keeps each finished exec session for
    exit_command_delay (300 s) and then runs `podman --root BASE/... container cleanup`, which
    would make the deleted directories again."""
    needle = str(base).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def import_image(engine: RunningEngine, tarball: Path, *, ref: str = IMAGE) -> None:
    """Load the rootfs tarball as `ref` (`docker import -`; podman through its service: `import FILE`)."""
    if engine.runtime == "podman":
        sh(*engine.cli, "import", str(tarball), ref, timeout=300)
        return
    with open(tarball, "rb") as data:
        subprocess.run([*engine.cli, "import", "-", ref], stdin=data, capture_output=True, check=True, timeout=300)
