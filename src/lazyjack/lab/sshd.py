"""A lab node that is reached over SSH like a separate machine: its own files, its own sshd.

Each node's sshd (Debian's openssh-server) runs in the node's network namespace and in a mount
namespace of its own, where /etc is an overlay on this machine's (changes land in the node's
directory), /var/lib/lazyjack and /tmp are the node's own directories, and /run/netns stays
shared with this machine, so a namespace lazyjack makes there (the DNS64/NAT64 support namespace)
is seen, and removed, from outside. This machine's own /etc is never written; only an empty
/var/lib/lazyjack is made here when missing, as the mount point of the nodes' own.

The node is reached on an access link of its own (`ssh0`, IPv6 link-local), as a real host is
reached on an interface other than its cluster one; the lab's client key, known_hosts (with the
node's host key pinned under its name) and ssh_config live in the lab's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lazyjack.host.process import RunnerAPI, describe_stuck, stop_pids
from lazyjack.lab import LabError

SSHD = "/usr/sbin/sshd"
ACCESS_LINK = "ssh0"
HOST_ADDRESS, NODE_ADDRESS = "fe80::1", "fe80::2"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
POLL = 0.02
KEY_TIMEOUT = 30.0
STATE_MOUNT = "/var/lib/lazyjack"


@dataclass(frozen=True)
class SshNode:
    """Where a node's sshd and its private files live."""

    name: str
    netns: str
    directory: Path
    host_link: str  # the access link's end on this machine
    #: Directories the node must see as this machine has them though they lie under its own /tmp, /etc or
    #: /var/lib/lazyjack (a checkout in /tmp, say). The interpreter's and lazyjack's always are.
    keep: tuple[Path, ...] = ()

    @property
    def sshd_dir(self) -> Path:
        return self.directory / "sshd"

    @property
    def pid_file(self) -> Path:
        return self.sshd_dir / "sshd.pid"

    @property
    def host_key(self) -> Path:
        return self.sshd_dir / "ssh_host_ed25519_key"

    @property
    def etc(self) -> Path:
        """The node's own changes to /etc (the overlay's upper layer)."""
        return self.directory / "etc"

    @property
    def state(self) -> Path:
        """The node's /var/lib/lazyjack."""
        return self.directory / "var-lib-lazyjack"

    @property
    def tmp(self) -> Path:
        """The node's /tmp (the default work area /tmp/lazyjack is in it)."""
        return self.directory / "tmp"

    @property
    def address(self) -> str:
        """What ssh connects to: the node's end of the access link, scoped to this machine's end."""
        return f"{NODE_ADDRESS}%{self.host_link}"

    def view(self, path: str) -> Path:
        """`path` as the node sees it, read from this machine (through its sshd's root)."""
        pid = running_pid(self)
        if pid is None:
            raise LabError(f"the sshd of {self.name} is not running: its files cannot be seen")
        return Path(f"/proc/{pid}/root") / path.lstrip("/")


def prepare_dirs(node: SshNode) -> None:
    """The node's directories; /etc/hosts and /etc/resolv.conf are seeded by the caller into `etc`."""
    for path, mode in ((node.directory, 0o755), (node.sshd_dir, 0o755), (node.state, 0o700), (node.tmp, 0o1777)):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    for _, upper in _layers_of(node.directory):
        upper.mkdir(exist_ok=True)
        (upper.parent / f"{upper.name}.work").mkdir(exist_ok=True)


def add_access_link(proc: RunnerAPI, node: SshNode) -> None:
    """A veth from this machine to the node's `ssh0`, link-local addresses on both ends (no DAD)."""
    proc.run(["ip", "link", "add", node.host_link, "type", "veth", "peer", "name", ACCESS_LINK,
              "netns", node.netns], timeout=KEY_TIMEOUT)
    proc.run(["ip", "addr", "add", f"{HOST_ADDRESS}/64", "dev", node.host_link, "nodad"], timeout=KEY_TIMEOUT)
    proc.run(["ip", "link", "set", node.host_link, "up"], timeout=KEY_TIMEOUT)
    proc.run(["ip", "-n", node.netns, "addr", "add", f"{NODE_ADDRESS}/64", "dev", ACCESS_LINK, "nodad"],
             timeout=KEY_TIMEOUT)
    proc.run(["ip", "-n", node.netns, "link", "set", ACCESS_LINK, "up"], timeout=KEY_TIMEOUT)


def delete_access_link(proc: RunnerAPI, node: SshNode) -> None:
    proc.run(["ip", "link", "del", node.host_link], timeout=KEY_TIMEOUT, check=False)


def new_key(proc: RunnerAPI, path: Path, *, comment: str) -> None:
    """An ed25519 key pair without passphrase at `path` and `path`.pub (kept when it exists)."""
    if not path.exists():
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], timeout=KEY_TIMEOUT)


def write_sshd_config(node: SshNode, *, authorized_keys: str) -> Path:
    (node.sshd_dir / "authorized_keys").write_text(authorized_keys)
    (node.sshd_dir / "authorized_keys").chmod(0o644)
    config = node.sshd_dir / "sshd_config"
    config.write_text("\n".join([
        "# lazyjack lab: the sshd of one node",
        f"ListenAddress {NODE_ADDRESS}%{ACCESS_LINK}",
        "Port 22",
        f"HostKey {node.host_key}",
        f"PidFile {node.pid_file}",
        f"AuthorizedKeysFile {node.sshd_dir / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The key files are the lab's own, possibly under a sticky /tmp (which StrictModes refuses).
        "StrictModes no",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "",
    ]))
    return config


def running_pid(node: SshNode) -> int | None:
    """The node's sshd pid, if that process is running and is sshd."""
    try:
        pid = int(node.pid_file.read_text().split()[0])
        exe = os.readlink(f"/proc/{pid}/exe")
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(exe).name == "sshd" else None


def start_sshd(node: SshNode, *, authorized_keys: str) -> int:
    """Start the node's sshd in its network namespace and a mount namespace of its own; its pid."""
    if not Path(SSHD).exists():
        raise LabError(f"{SSHD} is not installed (apt-get install openssh-server)")
    new_key_quiet = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lazyjack lab {node.name}",
                     "-f", str(node.host_key)]
    if not node.host_key.exists():
        subprocess.run(new_key_quiet, check=True, timeout=KEY_TIMEOUT)
    config = write_sshd_config(node, authorized_keys=authorized_keys)
    # sshd's privilege separation directory, as the openssh-server service would make it.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    Path(STATE_MOUNT).mkdir(mode=0o700, parents=True, exist_ok=True)
    node.pid_file.unlink(missing_ok=True)
    argv = ["nsenter", f"--net=/run/netns/{node.netns}", "unshare", "--mount", "--propagation", "unchanged", "--",
            sys.executable, "-m", "lazyjack.lab.sshd", str(node.directory),
            *(f"--keep={path}" for path in (Path(sys.prefix), Path(__file__).resolve().parents[2], *node.keep)), "--",
            SSHD, "-D", "-f", str(config), "-E", str(node.sshd_dir / "sshd.log")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH", "")]))}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(node.sshd_dir / "start.log", "wb"), env=env,  # noqa: SIM115
                            start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        pid = running_pid(node)
        if pid is not None:
            return pid
        if proc.poll() is not None:
            break
        time.sleep(POLL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(START_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise LabError(f"the sshd of {node.name} did not start, and did not stop after SIGKILL either: "
                       f"{describe_stuck([proc.pid])}") from None
    why = (node.sshd_dir / "start.log").read_text(errors="replace")
    with contextlib.suppress(OSError):
        why += (node.sshd_dir / "sshd.log").read_text(errors="replace")
    raise LabError(f"the sshd of {node.name} did not start:\n{why.strip()}")


def stop_sshd(node: SshNode) -> bool:
    """Stop the node's sshd listener (sessions it started end on their own); True if it ran."""
    pid = running_pid(node)
    if pid is None:
        return False
    # stop_pids counts a zombie as stopped and reaps it: the sshd that this process started is its child,
    # and waiting for its /proc entry to go took the whole timeout.
    stuck = stop_pids([pid], grace=STOP_TIMEOUT)
    if stuck:
        raise LabError(f"{node.name}'s sshd did not stop: {describe_stuck(stuck)}")
    node.pid_file.unlink(missing_ok=True)
    return True


def known_hosts_line(node: SshNode) -> str:
    """The node's host key, filed under its name (ssh_config gives HostKeyAlias NAME)."""
    kind, key = Path(f"{node.host_key}.pub").read_text().split()[:2]
    return f"{node.name} {kind} {key}\n"


def ssh_config_entry(node: SshNode, *, key: Path, known_hosts: Path, user: str = "root") -> str:
    return "\n".join([
        f"Host {node.name}",
        f"    HostName {node.address.replace('%', '%%')}",  # ssh_config expands %
        f"    HostKeyAlias {node.name}",
        f"    User {user}",
        f"    IdentityFile {key}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    GlobalKnownHostsFile /dev/null",
        "",
    ])


def lazyjack_program() -> str:
    """The nodes' `lazyjack`: this machine's interpreter and package, with the PATH `lab up` had."""
    package_parent = Path(__file__).resolve().parents[2]
    return "\n".join([
        f"#!{sys.executable}",
        '"""lazyjack in a lab node reached over SSH: the lab\'s own lazyjack and PATH."""',
        "import os, sys",
        f"os.environ['PYTHONPATH'] = {str(package_parent)!r}",
        f"os.environ['PATH'] = {os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')!r}",
        "os.environ.pop('SUDO_USER', None)",
        "os.execv(sys.executable, [sys.executable, '-m', 'lazyjack', *sys.argv[1:]])",
        "",
    ])


def enter(directory: Path, argv: list[str], *, keep: list[Path]) -> None:
    """Inside the new mount namespace: the node's layers over this machine's, then exec sshd."""
    targets = [path for path, _ in _layers_of(directory)] + [STATE_MOUNT, "/tmp"]
    # The node's directory (sshd's config, pid file, log), and the directories of `keep` (lazyjack and its
    # interpreter), stay what they are on this machine, also when they lie under a layer, /var/lib/lazyjack
    # or /tmp: held open now, bound back over the layers at the end (outermost first).
    hidden = [Path(t) for t in targets]
    wanted = sorted({directory, *(k for k in keep if any(k.is_relative_to(h) for h in hidden))},
                    key=lambda p: len(p.parts))
    outermost = [p for i, p in enumerate(wanted) if not any(p.is_relative_to(q) for q in wanted[:i])]
    held = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in outermost}
    parents = set()
    for target in targets:
        found = subprocess.run(["findmnt", "-n", "-o", "TARGET", "-T", target], capture_output=True, text=True,
                               check=True, timeout=KEY_TIMEOUT).stdout.strip()
        parents.add(found)
    for parent in sorted(parents):
        # Only these: /run/netns keeps sharing with this machine.
        _mount("--make-private", parent)
    for path, upper in _layers_of(directory):
        work = upper.parent / f"{upper.name}.work"
        _mount("-t", "overlay", "overlay", "-o", f"lowerdir={path},upperdir={upper},workdir={work}", path)
    _mount("--bind", str(directory / "var-lib-lazyjack"), STATE_MOUNT)
    _mount("--bind", str(directory / "tmp"), "/tmp")
    for kept, fd in held.items():
        os.makedirs(kept, exist_ok=True)
        # --no-canonicalize: the descriptor itself, not the path it had (now hidden by the layers).
        _mount("--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", str(kept), keep=fd)
        os.close(fd)
    os.chdir("/")
    os.execv(argv[0], argv)


def _layers_of(directory: Path) -> list[tuple[str, Path]]:
    # Not /var/lib: a lab keeps the nodes' directories under it, and overlay layers must not nest.
    return [("/etc", directory / "etc")]


def _mount(*args: str, keep: int | None = None) -> None:
    subprocess.run(["mount", *args], check=True, timeout=KEY_TIMEOUT, pass_fds=() if keep is None else (keep,))


def remove_node_files(node: SshNode) -> None:
    shutil.rmtree(node.directory, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    split = args.index("--")
    enter(Path(args[0]), args[split + 1:],
          keep=[Path(a.removeprefix("--keep=")) for a in args[1:split] if a.startswith("--keep=")])
