"""Namespaces and links of a lab: the nodes, the management switch, and the processes found inside them.

Everything goes through iproute2 and nsenter. `nsenter --net` switches only the network
namespace, unlike `ip netns exec`, whose private mount namespace would hide the namespaces
lazyjack itself creates (the DNS64/NAT64 support namespace) from everyone else.
"""

from __future__ import annotations

import os
from pathlib import Path

from lazyjack.errors import CommandFailed
from lazyjack.host.netns import NETNS_DIR, netns_exists
from lazyjack.host.process import RunnerAPI, describe_stuck, stop_pids
from lazyjack.lab import LabError

SWITCH_BRIDGE = "sw0"
IP_TIMEOUT = 30.0
STOP_GRACE = 5.0
POLL = 0.05


def node_netns(node: str) -> str:
    return f"lj-{node}"


def pod_netns(node: str) -> str:
    return f"lj-{node}-pod"


def switch_netns(lab: str) -> str:
    return f"ljlab-{lab}-switch"


def internet_netns(lab: str) -> str:
    return f"ljlab-{lab}-inet"


def site_netns(lab: str) -> str:
    return f"ljlab-{lab}-site"


def nsenter(netns: str) -> list[str]:
    """The argv prefix that runs a program in `netns` (network namespace only)."""
    return ["nsenter", f"--net={NETNS_DIR / netns}"]


def ip(proc: RunnerAPI, netns: str, *args: str, check: bool = True) -> str:
    return proc.run(["ip", "-n", netns, *args], timeout=IP_TIMEOUT, check=check).stdout


def sysctl(proc: RunnerAPI, netns: str, *settings: str) -> None:
    proc.run([*nsenter(netns), "sysctl", "-qw", *settings], timeout=IP_TIMEOUT)


def add_netns(proc: RunnerAPI, name: str) -> None:
    """A new namespace with lo up and no IPv6 duplicate address detection on links made later.

    Every link of a lab is private, so DAD would only keep new addresses tentative for a while.
    """
    proc.run(["ip", "netns", "add", name], timeout=IP_TIMEOUT)
    ip(proc, name, "link", "set", "lo", "up")
    sysctl(proc, name, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")


def add_switch(proc: RunnerAPI, netns: str) -> None:
    """The management switch: a bridge in a namespace of its own.

    Multicast snooping off: without an MLD querier it can stop IPv6 neighbour discovery.
    """
    add_netns(proc, netns)
    ip(proc, netns, "link", "add", SWITCH_BRIDGE, "type", "bridge", "mcast_snooping", "0")
    ip(proc, netns, "link", "set", SWITCH_BRIDGE, "up")


def plug_node(proc: RunnerAPI, *, switch: str, port: str, netns: str, interface: str, mtu: int) -> None:
    """A veth from a switch port to `interface` in the node's namespace; the node end stays down, as on a new host."""
    ip(proc, switch, "link", "add", port, "mtu", str(mtu), "type", "veth",
       "peer", "name", interface, "mtu", str(mtu), "netns", netns)
    ip(proc, switch, "link", "set", port, "master", SWITCH_BRIDGE, "up")


def link_pair(proc: RunnerAPI, *, a: tuple[str, str], b: tuple[str, str]) -> None:
    """A veth between (namespace, name) `a` and `b`, both ends up."""
    ip(proc, a[0], "link", "add", a[1], "type", "veth", "peer", "name", b[1], "netns", b[0])
    ip(proc, a[0], "link", "set", a[1], "up")
    ip(proc, b[0], "link", "set", b[1], "up")


def _netns_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def processes_in(netns: str) -> list[int]:
    """Processes whose network namespace is `netns` (by inode, so a name is never matched as text)."""
    wanted = _netns_id(NETNS_DIR / netns)
    if wanted is None:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _netns_id(entry / "ns" / "net") == wanted:
            found.append(int(entry.name))
    return sorted(found)


def processes_using(directory: Path) -> list[int]:
    """Processes whose command line names a path inside `directory`.

    The safety net for a daemon that escaped its namespace's deletion (a server lazyjack
    started, then lost track of when interrupted, keeps its namespace alive but unnamed).
    """
    prefix = str(directory).rstrip("/") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.decode(errors="replace").startswith(prefix) for arg in args):
            found.append(int(entry.name))
    return sorted(found)


def delete_netns(proc: RunnerAPI, name: str) -> list[int]:
    """Stop every process inside `name`, then delete it; returns the pids stopped. Absent: a no-op."""
    if not netns_exists(name):
        return []
    pids = processes_in(name)
    stuck = stop_pids(pids, grace=STOP_GRACE, poll=POLL)
    try:
        proc.run(["ip", "netns", "del", name], timeout=IP_TIMEOUT)
    except CommandFailed:
        if netns_exists(name):
            raise
    if stuck:
        raise LabError(f"processes in {name} did not stop after SIGKILL: {describe_stuck(stuck)}; the namespace "
                       "lives on with them")
    return pids


def free_name(taken: str, wanted: str, other: str) -> str:
    """`wanted`, unless the node's config already uses that name for its interface."""
    return other if taken == wanted else wanted
