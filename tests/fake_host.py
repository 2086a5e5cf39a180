"""In-memory stand-ins for the host, for unit tests of the layers above: a kernel that answers
netlink requests with the errno the real one gives, a sysctl table, and a scripted runner.

`FakeNetlink` is the real `Netlink` logic on `FakeKernel`, so steps tested against it go
through the same idempotency code as on a host. The kernel behaviours modelled were checked
against Linux in tests/netns; among those not modelled: link-local addresses, the local
table, metrics other than the defaults, multipath, keep_addr_on_down.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

from lazyjack.addresses import IPAddr, IPIface, IPNet
from lazyjack.errors import CommandFailed, HostError
from lazyjack.host import Host
from lazyjack.host.files import Files
from lazyjack.host.netlink import (
    MAIN_TABLE,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RTPROT_KERNEL,
    RTPROT_STATIC,
    AddrRecord,
    LinkRecord,
    Netlink,
    RouteRecord,
)
from lazyjack.host.process import Completed, ProgressCallback
from lazyjack.host.sysctl import sysctl_parts
from lazyjack.host.users import User

# Kernel facts the fake reproduces.
IFNAMSIZ = 16  # names are at most 15 bytes; longer ones are refused with ERANGE
MIN_MTU, MAX_MTU = 68, 65535  # the range of a veth
IPV6_MIN_MTU = 1280  # below it the kernel disables IPv6 on the link
V4_ROUTE_METRIC = 0
V6_ROUTE_METRIC = 1024  # IP6_RT_PRIO_USER, given to user routes without a metric
V6_CONNECTED_METRIC = 256  # IP6_RT_PRIO_ADDRCONF

# Public operation name -> the kernel request it makes, where fail_next() strikes.
FAULT_POINTS = {
    "link_exists": "link_get",
    "link_index": "link_get",
    "get_mtu": "link_get",
    "is_up": "link_get",
    "link_names": "link_dump",
    "set_mtu": "link_set_mtu",
    "link_up": "link_set_up",
    "link_down": "link_set_down",
    "delete_link": "link_del",
    "addresses": "addr_dump",
    "route_table": "route_dump",
    "add_address": "addr_add",
    "del_address": "addr_del",
    "route": "route_dump",
    "active_routes": "route_dump",
    "routes": "route_dump",
    "default_route_dev": "route_dump",
    "add_route": "route_add",
    "add_routes": "route_add",
    "del_route": "route_del",
    "del_routes": "route_del",
}


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _scope(iface: IPIface) -> int:
    if iface.ip.is_loopback:
        return RT_SCOPE_HOST
    if iface.version == 6 and iface.ip.is_link_local:
        return RT_SCOPE_LINK
    return RT_SCOPE_UNIVERSE


@dataclass
class FakeLink:
    """A link of the fake kernel."""

    index: int
    name: str
    mtu: int = 1500
    up: bool = True
    peer: int | None = None
    addresses: list[IPIface] = field(default_factory=list)

    @property
    def ipv6(self) -> bool:
        return self.mtu >= IPV6_MIN_MTU


@dataclass
class _Fault:
    request: str
    code: int
    after: int


class FakeKernel:
    """An in-memory kernel answering the requests of `lazyjack.host.netlink.Kernel`.

    It starts with `lo` (up, 127.0.0.1/8 and ::1/128). Routes live in the main table only.
    """

    def __init__(self) -> None:
        self.links: dict[int, FakeLink] = {}
        self.routes: list[RouteRecord] = []
        self._next_index = 1
        self._faults: list[_Fault] = []
        lo = self.links[self.add_link("lo", mtu=65536, up=False)]
        lo.addresses += [IPv4Interface("127.0.0.1/8"), IPv6Interface("::1/128")]
        self._set_up(lo)

    # Test set-up and fault injection -----------------------------------------------------

    def add_link(self, name: str, *, mtu: int = 1500, up: bool = True, peer: str | None = None) -> int:
        """Create a link (and its veth peer, if named); returns its index."""
        for new in (name, peer):
            if new is None:
                continue
            if len(new.encode()) >= IFNAMSIZ:
                raise _error(errno.ERANGE)
            if any(link.name == new for link in self.links.values()):
                raise _error(errno.EEXIST)
        index = self._new_link(name, mtu, up)
        if peer is not None:
            peer_index = self._new_link(peer, mtu, up)
            self.links[index].peer, self.links[peer_index].peer = peer_index, index
        return index

    def _new_link(self, name: str, mtu: int, up: bool) -> int:
        index = self._next_index
        self._next_index += 1
        self.links[index] = FakeLink(index, name, mtu, up=False)
        if up:
            self._set_up(self.links[index])
        return index

    def fail_next(self, request: str, code: int, *, after: int = 0) -> None:
        """The request of this kind after `after` others of its kind fails with `code`."""
        self._faults.append(_Fault(request, code, after))

    def _request(self, request: str) -> None:
        fired: _Fault | None = None
        for fault in [f for f in self._faults if f.request == request]:
            if fault.after == 0 and fired is None:
                fired = fault
                self._faults.remove(fault)
            elif fault.after > 0:
                fault.after -= 1
        if fired is not None:
            raise _error(fired.code)

    # Links -------------------------------------------------------------------------------

    def _get(self, index: int) -> FakeLink:
        if index not in self.links:
            raise _error(errno.ENODEV)
        return self.links[index]

    @staticmethod
    def _record(link: FakeLink) -> LinkRecord:
        return LinkRecord(link.index, link.name, link.mtu, link.up)

    def link_get(self, name: str) -> LinkRecord:
        self._request("link_get")
        if len(name.encode()) >= IFNAMSIZ:
            raise _error(errno.ERANGE)
        for link in self.links.values():
            if link.name == name:
                return self._record(link)
        raise _error(errno.ENODEV)

    def link_dump(self) -> list[LinkRecord]:
        self._request("link_dump")
        return [self._record(link) for link in self.links.values()]

    def link_set_mtu(self, index: int, mtu: int) -> None:
        self._request("link_set_mtu")
        link = self._get(index)
        if not MIN_MTU <= mtu <= MAX_MTU:
            raise _error(errno.EINVAL)
        link.mtu = mtu
        if not link.ipv6:
            # The kernel tears IPv6 down on the link: addresses and routes go.
            link.addresses = [a for a in link.addresses if a.version == 4]
            self.routes = [r for r in self.routes if not (r.dst.version == 6 and r.oif == index)]

    def link_set_up(self, index: int) -> None:
        self._request("link_set_up")
        self._set_up(self._get(index))

    def _set_up(self, link: FakeLink) -> None:
        if link.up:
            return
        link.up = True
        for iface in link.addresses:
            self._add_connected(link, iface)

    def link_set_down(self, index: int) -> None:
        self._request("link_set_down")
        link = self._get(index)
        if not link.up:
            return
        link.up = False
        # As Linux with keep_addr_on_down=0: routes through the link and IPv6 addresses go.
        link.addresses = [a for a in link.addresses if a.version == 4]
        self.routes = [r for r in self.routes if r.oif != index]

    def link_del(self, index: int) -> None:
        self._request("link_del")
        link = self._get(index)
        gone = {index} if link.peer is None else {index, link.peer}
        for i in gone:
            del self.links[i]
        self.routes = [r for r in self.routes if r.oif not in gone]

    # Addresses ---------------------------------------------------------------------------

    def addr_dump(self, index: int) -> list[AddrRecord]:
        self._request("addr_dump")
        link = self._get(index)
        return [AddrRecord(index, a, _scope(a)) for a in link.addresses]

    def addr_add(self, index: int, iface: IPIface, *, nodad: bool) -> None:
        self._request("addr_add")
        link = self._get(index)
        if iface.version == 6 and not link.ipv6:
            raise _error(errno.EINVAL)
        for a in link.addresses:
            # IPv6 addresses are keyed by address; IPv4 ones by address and prefix length.
            if a.ip == iface.ip and (iface.version == 6 or a.network.prefixlen == iface.network.prefixlen):
                raise _error(errno.EEXIST)
        link.addresses.append(iface)
        if link.up:
            self._add_connected(link, iface)

    def addr_del(self, index: int, iface: IPIface) -> None:
        self._request("addr_del")
        link = self._get(index)
        if iface not in link.addresses:
            raise _error(errno.EADDRNOTAVAIL)
        gone = [iface]
        if iface.version == 4:
            same_subnet = [a for a in link.addresses if a.network == iface.network]
            if same_subnet[0] == iface:
                # Deleting a primary address deletes its secondaries (promote_secondaries=0).
                gone = same_subnet
        link.addresses = [a for a in link.addresses if a not in gone]
        for network in {a.network for a in gone}:
            if not any(a.network == network for a in link.addresses):
                self.routes = [
                    r for r in self.routes if not (r.proto == RTPROT_KERNEL and r.oif == index and r.dst == network)
                ]

    def _add_connected(self, link: FakeLink, iface: IPIface) -> None:
        # IPv4: no prefix route for /32 or host-scope addresses (those are in the local table).
        if iface.version == 4 and (iface.network.prefixlen == 32 or _scope(iface) == RT_SCOPE_HOST):
            return
        metric = V4_ROUTE_METRIC if iface.version == 4 else V6_CONNECTED_METRIC
        route = RouteRecord(iface.network, None, link.index, proto=RTPROT_KERNEL, priority=metric)
        if route not in self.routes:
            self.routes.append(route)

    # Routes ------------------------------------------------------------------------------

    def route_dump(self, family: int | None) -> list[RouteRecord]:
        self._request("route_dump")
        if family is None:
            return list(self.routes)
        version = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}[family]
        return [r for r in self.routes if r.dst.version == version]

    def route_add(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None:
        self._request("route_add")
        if gateway is not None and gateway.version != dst.version:
            raise _error(errno.EINVAL)
        link = self._get(oif) if oif is not None else None
        if link is not None and dst.version == 6 and not link.ipv6:
            raise _error(errno.ENODEV)
        if gateway is None:
            if link is None:
                raise _error(errno.ENODEV)
            if not link.up:
                raise _error(errno.ENETDOWN)
            out = link.index
        elif gateway.version == 6:
            out = self._v6_nexthop(gateway, link)
        else:
            out = self._v4_nexthop(gateway, link)
        metric = V4_ROUTE_METRIC if dst.version == 4 else V6_ROUTE_METRIC
        if any(r.dst == dst and r.priority == metric for r in self.routes):
            raise _error(errno.EEXIST)
        self.routes.append(RouteRecord(dst, gateway, out, proto=RTPROT_STATIC, priority=metric))

    def _v4_nexthop(self, gateway: IPAddr, link: FakeLink | None) -> int:
        # A gateway must be reachable through an on-link (link-scope) route.
        on_link = [
            r
            for r in self.routes
            if r.gateway is None and r.dst.version == 4 and gateway in r.dst and (link is None or r.oif == link.index)
        ]
        if not on_link:
            raise _error(errno.ENETUNREACH)
        best = max(on_link, key=lambda r: r.dst.prefixlen)
        assert best.oif is not None
        return best.oif

    def _v6_nexthop(self, gateway: IPAddr, link: FakeLink | None) -> int:
        if gateway.is_link_local:
            # Reachable on any link, but only a named one.
            if link is None:
                raise _error(errno.EINVAL)
            if not link.up:
                raise _error(errno.ENETDOWN)
            return link.index
        if any(a.ip == gateway for each in self.links.values() for a in each.addresses):
            raise _error(errno.EINVAL)
        # The longest match for the gateway must be an on-link route (through that link).
        covering = [r for r in self.routes if r.dst.version == 6 and gateway in r.dst]
        if not covering:
            raise _error(errno.EHOSTUNREACH)
        best = max(covering, key=lambda r: (r.dst.prefixlen, -r.priority))
        if best.gateway is not None or best.oif is None:
            raise _error(errno.EHOSTUNREACH)
        if link is not None and best.oif != link.index:
            raise _error(errno.EHOSTUNREACH)
        return best.oif

    def route_del(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None:
        self._request("route_del")
        matching = [
            r
            for r in self.routes
            if r.dst == dst
            and r.table == MAIN_TABLE
            and (gateway is None or r.gateway == gateway)
            and (oif is None or r.oif == oif)
        ]
        if not matching:
            raise _error(errno.ESRCH)
        self.routes.remove(min(matching, key=lambda r: r.priority))

    def close(self) -> None:
        return None


class FakeNetlink(Netlink):
    """`Netlink` on a `FakeKernel`: same answers, same NetlinkFailed codes, no privileges."""

    def __init__(self) -> None:
        self.kernel = FakeKernel()
        super().__init__(kernel=self.kernel)

    def add_link(self, name: str, *, mtu: int = 1500, up: bool = True, peer: str | None = None) -> int:
        """Create a link, as a test's set-up; returns its index (OSError EEXIST/ERANGE)."""
        return self.kernel.add_link(name, mtu=mtu, up=up, peer=peer)

    def fail_next(self, operation: str, code: int, *, after: int = 0) -> None:
        """Make the kernel refuse, with errno `code`, the next request that `operation` makes.

        `operation` is a method name ("add_route"); the fault strikes the next request of
        that kind, whichever method makes it ("add_route" and "add_routes" share one, and
        every method looking up a link makes a "link_exists" request). With `after`, that
        many such requests succeed first: a batch can fail half-way.
        """
        if operation not in FAULT_POINTS:
            known = ", ".join(sorted(FAULT_POINTS))
            raise ValueError(f"no operation {operation!r} to fail; known: {known}")
        self.kernel.fail_next(FAULT_POINTS[operation], code, after=after)


class FakeSysctl:
    """Kernel parameters held in a dict; like /proc/sys, writing never creates a key."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {self._key(k): str(v).strip() for k, v in (values or {}).items()}
        self.writes: list[tuple[str, str]] = []

    @staticmethod
    def _key(name: str) -> tuple[str, ...]:
        return tuple(sysctl_parts(name))

    @property
    def values(self) -> dict[str, str]:
        """Current values by dotted name (a dot inside a component is written '/')."""
        return {".".join(p.replace(".", "/") for p in k): v for k, v in self._values.items()}

    def get(self, name: str) -> str:
        key = self._key(name)
        if key not in self._values:
            raise HostError(f"sysctl {name} does not exist")
        return self._values[key]

    def set(self, name: str, value: str) -> None:
        key = self._key(name)
        if key not in self._values:
            raise HostError(f"sysctl {name} does not exist")
        self._values[key] = str(value).strip()
        self.writes.append((name, value))


@dataclass(frozen=True)
class FakeCall:
    """One call made to FakeRunner.run, as made."""

    argv: list[str]
    timeout: float
    input: bytes | None
    env: dict[str, str] | None


@dataclass
class _Script:
    prefix: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    times: int | None


class FakeRunner:
    """Records every run() and answers from scripts, failing the way Runner fails.

    A program is installed when it was scripted or named in `installed`; running any other
    is "not found on PATH". A run of an installed program that no script matches is a bug in
    the test: AssertionError.
    """

    def __init__(self, installed: Iterable[str] = ()) -> None:
        self.installed = set(installed)
        self.calls: list[FakeCall] = []
        self._scripts: list[_Script] = []

    def script(
        self,
        argv_prefix: Sequence[str],
        *,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
        duration: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer runs whose argv starts with these tokens (the longest prefix wins).

        `duration` is how long the run pretends to take: on_progress is called as the real
        runner would, and a duration beyond the call's timeout is a timeout. `times` limits
        how many runs this script answers (None: any number).
        """
        if not argv_prefix:
            raise ValueError("a script needs at least the program name")
        self.installed.add(argv_prefix[0])
        self._scripts.append(_Script(list(argv_prefix), returncode, stdout, stderr, duration, times))

    def which(self, name: str) -> str | None:
        if name not in self.installed:
            return None
        return name if "/" in name else f"/usr/bin/{name}"

    def argvs(self) -> list[list[str]]:
        """The argv of every run, in order."""
        return [c.argv for c in self.calls]

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
        if not argv:
            raise ValueError("run() needs a program to run")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        argv = list(argv)
        self.calls.append(FakeCall(argv, timeout, input, dict(env) if env is not None else None))
        if argv[0] not in self.installed:
            raise CommandFailed(argv, None, "", reason="not found on PATH")
        script = self._match(argv)
        elapsed = progress_interval
        while on_progress is not None and elapsed < min(script.duration, timeout):
            on_progress(elapsed)
            elapsed += progress_interval
        done = Completed(argv, script.returncode, script.stdout, script.stderr)
        if script.duration > timeout:
            raise CommandFailed(argv, None, done.output, reason=f"timed out after {timeout:g}s")
        if check and done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.output)
        return done

    def _match(self, argv: list[str]) -> _Script:
        usable = [s for s in self._scripts if argv[: len(s.prefix)] == s.prefix and (s.times is None or s.times > 0)]
        if not usable:
            raise AssertionError(f"FakeRunner: nothing scripted for {argv}")
        best = max(usable, key=lambda s: len(s.prefix))  # first of the longest
        if best.times is not None:
            best.times -= 1
        return best


class FixedUsers:
    """The accounts a test names (the host's own are never touched): a UsersAPI for `Host.users`."""

    def __init__(self, users: Iterable[User]) -> None:
        self.users = {user.name: user for user in users}

    def lookup(self, name: str) -> User | None:
        return self.users.get(name)


def fake_host(
    root: Path,
    *,
    net: FakeNetlink | None = None,
    sysctl: FakeSysctl | None = None,
    proc: FakeRunner | None = None,
) -> Host:
    """A Host made of fakes, with files under `root` (a test's tmp_path)."""
    return Host(
        net=net if net is not None else FakeNetlink(),
        files=Files(root),
        sysctl=sysctl if sysctl is not None else FakeSysctl(),
        proc=proc if proc is not None else FakeRunner(),
    )
