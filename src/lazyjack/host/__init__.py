"""Every side effect on the host, behind small interfaces handed to steps in one `Host`.

netlink: links, addresses, routes (pyroute2). files: files under --root, atomic writes.
sysctl: /proc/sys. process: external programs. daemon: background servers. lock: pid-file locks.
users: the accounts, and files in a user's home handled as that user. dns: questions to a DNS server.
containers: the Docker Engine API. In-memory stand-ins for unit tests live in tests/fake_host.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lazyjack.host.daemon import Daemons, DaemonsAPI, host_daemons
from lazyjack.host.dns import Dns, DnsAPI
from lazyjack.host.files import Files
from lazyjack.host.netlink import Netlink
from lazyjack.host.netns import netns_exists
from lazyjack.host.process import Runner, RunnerAPI
from lazyjack.host.sysctl import Sysctl, SysctlAPI
from lazyjack.host.users import SystemUsers, UsersAPI


@dataclass
class Host:
    """The context object handed to steps: everything they may change on the host goes here."""

    net: Netlink
    files: Files
    sysctl: SysctlAPI
    proc: RunnerAPI
    daemons: DaemonsAPI = field(default_factory=Daemons)
    users: UsersAPI = field(default_factory=SystemUsers)
    dns: DnsAPI = field(default_factory=Dns)

    # Named network namespaces are reached through iproute2 (`ip netns`, `ip -n NS ...`):
    # pyroute2 would fork a helper process per namespace, which outlives a failed run.

    def netns_exists(self, name: str) -> bool:
        return netns_exists(name)

    def netns_add(self, name: str) -> None:
        self.proc.run(["ip", "netns", "add", name], timeout=30)

    def netns_del(self, name: str) -> bool:
        """Delete a named network namespace; False when it does not exist."""
        if not self.netns_exists(name):
            return False
        self.proc.run(["ip", "netns", "del", name], timeout=30)
        return True

    def ip_in(self, netns: str, *args: str, check: bool = True) -> str:
        """Run `ip -n NETNS ARGS` and return its output."""
        return self.proc.run(["ip", "-n", netns, *args], timeout=30, check=check).stdout

    @classmethod
    def real(cls, root: Path = Path("/"), *, netns: str | None = None) -> Host:
        """This machine: files under `root`; the kernel (of `netns`, if named) for the rest."""
        runner = Runner()
        return cls(net=Netlink(netns), files=Files(root), sysctl=Sysctl(), proc=runner, daemons=host_daemons(runner))

    def close(self) -> None:
        """Release the netlink sockets, if any were opened."""
        self.net.close()
