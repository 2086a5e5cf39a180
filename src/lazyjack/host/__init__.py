"""Every side effect on the host, behind small interfaces handed to steps in one `Host`.

netlink: links, addresses, routes (pyroute2). files: files under --root, atomic writes.
sysctl: /proc/sys. process: external programs. fake: in-memory stand-ins for unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lazyjack.host.files import Files
from lazyjack.host.netlink import Netlink
from lazyjack.host.process import Runner, RunnerAPI
from lazyjack.host.sysctl import Sysctl, SysctlAPI


@dataclass
class Host:
    """The context object handed to steps: everything they may change on the host goes here."""

    net: Netlink
    files: Files
    sysctl: SysctlAPI
    proc: RunnerAPI

    @classmethod
    def real(cls, root: Path = Path("/"), *, netns: str | None = None) -> Host:
        """This machine: files under `root`; the kernel (of `netns`, if named) for the rest."""
        return cls(net=Netlink(netns), files=Files(root), sysctl=Sysctl(), proc=Runner())

    def close(self) -> None:
        """Release the netlink socket, if one was opened."""
        self.net.close()
