"""Reaching nodes with the system OpenSSH client, one multiplexed connection per node.

Why the `ssh` program and not a library: it honours the user's ssh_config, agent, ProxyJump,
certificates and known_hosts exactly as `ssh` does, `ssh -G` tells the effective settings
without connecting, and lazyjack gains no dependency. A master connection per node
(ControlMaster) carries the short queries (version, facts, the config hand-out) as channels;
a node command that acts gets a connection and a terminal of its own, so that Ctrl-C reaches it.

The login user is general.ssh-user when the config names one (`ssh -l`); else ssh_config's `User` for
that host, and root where ssh_config sets none (`ssh -G` shows ssh's own default, the local login
name, then). A user other than root runs lazyjack on the node with `sudo -n`.

Host keys are always checked (StrictHostKeyChecking=yes, or accept-new when asked). When a
connection fails, `diagnose` tells an unknown key from a changed one from a host that cannot
be reached by what it can check: the known_hosts entries (`ssh-keygen -F`) against the key the
host presents to a probe that records it in a throwaway known_hosts file.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lazyjack.cluster.transport import Launch
from lazyjack.errors import LazyjackError
from lazyjack.host.process import Runner, RunnerAPI

CONNECT_TIMEOUT = 10
#: An idle master connection left behind by a killed run closes itself after this long.
CONTROL_PERSIST = 600
PROBE_TIMEOUT = 30.0
QUERY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Resolved:
    """What `ssh -G` says about a host: where it really goes and which known_hosts files apply."""

    hostname: str
    port: int
    user: str
    known_hosts: tuple[str, ...]
    host_key_alias: str | None

    @property
    def known_hosts_name(self) -> str:
        """The name the host's key is filed under in known_hosts."""
        name = self.host_key_alias or self.hostname
        return name if self.port == 22 else f"[{name}]:{self.port}"

    @property
    def where(self) -> str:
        return f"{self.user}@{self.hostname}" + ("" if self.port == 22 else f" port {self.port}")


def parse_ssh_g(text: str) -> Resolved:
    """Parse `ssh -G HOST` output (one `key value...` per line, keys in lower case)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        values.setdefault(key.lower(), []).append(rest.strip())

    def first(key: str, default: str = "") -> str:
        return values.get(key, [default])[0]

    files: list[str] = []
    for key in ("userknownhostsfile", "globalknownhostsfile"):
        for entry in values.get(key, []):
            files += [os.path.expanduser(f) for f in shlex.split(entry)]
    alias = first("hostkeyalias") or None
    return Resolved(hostname=first("hostname"), port=int(first("port", "22")), user=first("user"),
                    known_hosts=tuple(files), host_key_alias=None if alias == "none" else alias)


def known_keys(proc: RunnerAPI, resolved: Resolved) -> list[tuple[str, str, str]]:
    """(key type, key, file) of every known_hosts entry for the host; hashed files work too."""
    found = []
    for path in resolved.known_hosts:
        if not os.path.exists(path):
            continue
        done = proc.run(["ssh-keygen", "-F", resolved.known_hosts_name, "-f", path], timeout=QUERY_TIMEOUT,
                        check=False)
        for line in done.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3 and not line.startswith("#"):
                found.append((fields[1], fields[2], path))
    return found


class SshTransport:
    """Nodes reached with `ssh`; `hosts` maps node -> what to give ssh (ssh-host or the node's name)."""

    kind = "ssh"

    def __init__(self, hosts: dict[str, str], *, user: str | None, ssh_config: Path | None = None,
                 accept_new: bool = False, proc: RunnerAPI | None = None) -> None:
        self.hosts = hosts
        self.user = user  # general.ssh-user; None: ssh_config's User, else root
        self.ssh_config = ssh_config
        self.accept_new = accept_new
        self.proc = proc or Runner()
        self.control_dir = Path(tempfile.mkdtemp(prefix="lazyjack-ssh-"))
        self.connected: set[str] = set()
        self._logins: dict[str, tuple[str, bool]] = {}

    def _config(self) -> list[str]:
        return ["ssh"] + (["-F", str(self.ssh_config)] if self.ssh_config is not None else [])

    def login(self, node: str) -> tuple[str, bool]:
        """(the user ssh logs in as on `node`, whether lazyjack must say so with -l)."""
        if self.user is not None:
            return self.user, True
        if node not in self._logins:
            done = self.proc.run([*self._config(), "-G", "--", self.hosts[node]], timeout=QUERY_TIMEOUT)
            configured = parse_ssh_g(done.stdout).user
            # ssh's own default is the local login name: ssh_config names no user for the host then.
            self._logins[node] = ("root", True) if configured in ("", getpass.getuser()) else (configured, False)
        return self._logins[node]

    def _login_args(self, node: str) -> list[str]:
        user, explicit = self.login(node)
        return ["-l", user] if explicit else []

    def _base(self, node: str, *, shared: bool = True) -> list[str]:
        """ssh's options; `shared`: through the node's master connection (ssh takes the first value given)."""
        return [*self._config(), *self._login_args(node),
                "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
                # Command-line options win over ssh_config: keys are checked whatever the config says.
                "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new else 'yes'}",
                "-o", f"ControlPath={self.control_dir}/%C" if shared else "ControlPath=none"]

    def connect_argv(self, node: str) -> list[str] | None:
        self.connected.add(node)
        return [*self._base(node), "-o", "ControlMaster=yes", "-o", f"ControlPersist={CONTROL_PERSIST}",
                "-T", "--", self.hosts[node], "true"]

    def launch(self, node: str, argv: list[str], *, root: bool, attached: bool) -> Launch:
        if root and self.login(node)[0] != "root":
            argv = ["sudo", "-n", "--", *argv]
        if not attached:
            return Launch([*self._base(node), "-o", "ControlMaster=no", "-T", "--", self.hosts[node], shlex.join(argv)])
        # A terminal on the node for commands that act: Ctrl-C written to it becomes SIGINT there,
        # and a lost connection hangs it up (SIGHUP); without one, the remote command would go on.
        # A connection of its own: through a master connection, the Ctrl-C never reaches the
        # terminal (OpenSSH 9.2, tested). Its handshake is small beside the command it runs.
        # LogLevel=ERROR: not "Connection to ... closed." after every command.
        return Launch([*self._base(node, shared=False), "-tt", "-o", "LogLevel=ERROR", "--", self.hosts[node],
                       shlex.join(argv)], interrupt_by_tty=True)

    def resolve(self, node: str) -> Resolved:
        done = self.proc.run([*self._config(), *self._login_args(node), "-G", "--", self.hosts[node]],
                             timeout=QUERY_TIMEOUT)
        return parse_ssh_g(done.stdout)

    def diagnose(self, node: str, output: str) -> str:
        last = output.strip().splitlines()[-1] if output.strip() else "ssh failed"
        try:
            resolved = self.resolve(node)
        except LazyjackError as exc:
            return f"cannot connect ({last}); `ssh -G` failed too: {exc}"
        known = known_keys(self.proc, resolved)
        presented, fingerprint = self._probe(node)
        files = ", ".join(resolved.known_hosts) or "no known_hosts file"
        if not presented:
            return f"cannot reach {resolved.where}: {last}"
        if not known:
            return (f"the host key of {resolved.where} is unknown ({fingerprint}); after checking that fingerprint, "
                    f"add it with `ssh-keyscan -p {resolved.port} {resolved.hostname} >> {resolved.known_hosts[0] if resolved.known_hosts else '~/.ssh/known_hosts'}`, "
                    "or run again with --accept-new-host-keys")
        if any((kind, key) in {(k, b) for k, b, _ in known} for kind, key in presented):
            return f"the host key of {resolved.where} is known and matches, but logging in failed: {last}"
        where = sorted({f for _, _, f in known})
        return (f"the host key of {resolved.where} has CHANGED (it now presents {fingerprint}; {', '.join(where)} "
                f"holds another). If the host was reinstalled, remove the old key with "
                f"`ssh-keygen -R '{resolved.known_hosts_name}' -f {where[0]}` and run again with "
                f"--accept-new-host-keys; otherwise someone may be intercepting the connection (known hosts: {files})")

    def _probe(self, node: str) -> tuple[list[tuple[str, str]], str]:
        """The key the host presents (type, key) and its fingerprint, recorded without logging in."""
        scratch = Path(tempfile.mkdtemp(prefix="lazyjack-hostkey-"))
        try:
            record = scratch / "known_hosts"
            argv = [*self._config(), *self._login_args(node), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                     "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={record}",
                     "-o", "GlobalKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none",
                     "-o", "ControlMaster=no", "-o", "ControlPath=none", "-T", "--", self.hosts[node], "true"]
            self.proc.run(argv, timeout=PROBE_TIMEOUT, check=False)
            if not record.exists() or not record.read_text().strip():
                return [], ""
            keys = [(f[1], f[2]) for f in (line.split() for line in record.read_text().splitlines()) if len(f) >= 3]
            printed = self.proc.run(["ssh-keygen", "-l", "-f", str(record)], timeout=QUERY_TIMEOUT, check=False)
            words = printed.stdout.split()
            fingerprint = f"{words[-1].strip('()')} {words[1]}" if len(words) >= 3 else "a key"
            return keys, fingerprint
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def close(self) -> None:
        """Stop every master connection (`ssh -O exit`) and remove their sockets."""
        for node in sorted(self.connected):
            self.proc.run([*self._base(node), "-O", "exit", "--", self.hosts[node]], timeout=QUERY_TIMEOUT, check=False)
        self.connected.clear()
        shutil.rmtree(self.control_dir, ignore_errors=True)
