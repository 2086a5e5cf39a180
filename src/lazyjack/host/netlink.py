"""Links, addresses and routes of the kernel, changed idempotently: every answer is decided by errno.

`Netlink` holds the logic (what "already there" and "already gone" mean, conflict messages,
batching); a `Kernel` carries out the bare rtnetlink requests. The real kernel is reached through
pyroute2, imported only when the first request is made so that CLI start-up stays fast.
The tests' `FakeNetlink` (tests/fake_host.py) is the same `Netlink` on an in-memory kernel.

A kernel request that fails raises `OSError` with the kernel's errno; `Netlink` turns whatever it
does not treat as a no-op into `NetlinkFailed` naming the operation.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv6Address,
    ip_address,
    ip_interface,
    ip_network,
)
from types import TracebackType
from typing import Any, Protocol, Self

from lazyjack.addresses import IPAddr, IPIface, IPNet
from lazyjack.errors import NetlinkFailed

# Values from <linux/rtnetlink.h>, <linux/if_addr.h> and <linux/if.h>.
MAIN_TABLE = 254
RTPROT_KERNEL = 2
RTPROT_BOOT = 3  # what `ip route add` and lazyjack 1.x (vishvananda/netlink) write
RTPROT_STATIC = 4  # what lazyjack writes
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
IFA_F_NODAD = 0x02
IFF_UP = 0x1

# Routes that someone configured, as opposed to the kernel's own (connected, link-local...).
CONFIGURED_PROTOS = frozenset({RTPROT_BOOT, RTPROT_STATIC})


@dataclass(frozen=True)
class LinkRecord:
    """One link as the kernel reports it."""

    index: int
    name: str
    mtu: int
    up: bool


@dataclass(frozen=True)
class AddrRecord:
    """One address of a link as the kernel reports it."""

    index: int
    iface: IPIface
    scope: int


@dataclass(frozen=True)
class RouteRecord:
    """One route as the kernel reports it; a multipath route is described by its first hop."""

    dst: IPNet
    gateway: IPAddr | None
    oif: int | None
    table: int = MAIN_TABLE
    proto: int = RTPROT_STATIC
    type: int = RTN_UNICAST
    priority: int = 0


class Kernel(Protocol):
    """The bare rtnetlink requests `Netlink` is built on; each failure is an OSError with errno."""

    def link_get(self, name: str) -> LinkRecord: ...
    def link_dump(self) -> list[LinkRecord]: ...
    def link_set_mtu(self, index: int, mtu: int) -> None: ...
    def link_set_up(self, index: int) -> None: ...
    def link_set_down(self, index: int) -> None: ...
    def link_del(self, index: int) -> None: ...
    def addr_dump(self, index: int) -> list[AddrRecord]: ...
    def addr_add(self, index: int, iface: IPIface, *, nodad: bool) -> None: ...
    def addr_del(self, index: int, iface: IPIface) -> None: ...
    def route_dump(self, family: int | None) -> list[RouteRecord]: ...
    def route_add(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None: ...
    def route_del(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class RouteInfo:
    """A route of the main table: destination, gateway (None when on-link) and device name."""

    dst: IPNet
    gateway: IPAddr | None = None
    dev: str | None = None

    def __str__(self) -> str:
        text = str(self.dst)
        if self.gateway is not None:
            text += f" via {self.gateway}"
        if self.dev is not None:
            text += f" dev {self.dev}"
        return text


def _failed(operation: str, err: OSError, *, detail: str = "") -> NetlinkFailed:
    return NetlinkFailed(operation, err.errno or errno.EIO, detail=detail)


def _no_link(name: str, err: OSError) -> str:
    return f"no link named {name}" if err.errno == errno.ENODEV else ""


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _check_route(dst: IPNet, gateway: IPAddr | None, dev: str | None) -> None:
    # Programming errors, not host conditions: caught before anything is sent.
    if gateway is None and dev is None:
        raise ValueError(f"route to {dst} needs a gateway, a device or both")
    if gateway is not None and gateway.version != dst.version:
        raise ValueError(f"route to {dst}: gateway {gateway} is not IPv{dst.version}")


@dataclass
class _Session:
    """Lookups shared by the requests of one call, so that a batch of routes costs one dump."""

    kernel: Kernel
    indexes: dict[str, int] = field(default_factory=dict)
    names: dict[int, str] | None = None
    table: dict[IPNet, list[RouteRecord]] | None = None

    def lookup(self, name: str) -> int:
        """The link's index, asked once per session; OSError as the kernel answers."""
        if name not in self.indexes:
            self.indexes[name] = self.kernel.link_get(name).index
        return self.indexes[name]

    def index(self, name: str, operation: str) -> int:
        try:
            return self.lookup(name)
        except OSError as e:
            raise _failed(operation, e, detail=_no_link(name, e)) from e

    def name(self, index: int | None, operation: str) -> str | None:
        if index is None:
            return None
        if self.names is None:
            try:
                self.names = {link.index: link.name for link in self.kernel.link_dump()}
            except OSError as e:
                raise _failed(operation, e, detail="listing links") from e
        return self.names.get(index)

    def routes_to(self, dst: IPNet, operation: str, *, refresh: bool = False) -> list[RouteRecord]:
        """Unicast routes of the main table to exactly `dst`, active (lowest metric) first."""
        if self.table is None or refresh:
            try:
                records = self.kernel.route_dump(None)
            except OSError as e:
                raise _failed(operation, e, detail="listing routes") from e
            table: dict[IPNet, list[RouteRecord]] = {}
            for r in records:
                if r.table == MAIN_TABLE and r.type == RTN_UNICAST:
                    table.setdefault(r.dst, []).append(r)
            for same_dst in table.values():
                same_dst.sort(key=lambda r: r.priority)
            self.table = table
        return self.table.get(dst, [])

    def info(self, record: RouteRecord, operation: str) -> RouteInfo:
        return RouteInfo(record.dst, record.gateway, self.name(record.oif, operation))


class Netlink:
    """Links, addresses and routes, changed idempotently; one socket reused for every request.

    `netns` names a network namespace (as in `ip netns`) that must already exist. Methods that
    add return False when the exact thing is already there; methods that delete return False
    when it is already gone. Any other refusal raises NetlinkFailed with the kernel's errno.
    `kernel` replaces the real one (FakeNetlink passes its in-memory kernel).
    """

    def __init__(self, netns: str | None = None, *, kernel: Kernel | None = None) -> None:
        self.netns = netns
        self._kernel: Kernel = kernel if kernel is not None else Pyroute2Kernel(netns)

    def close(self) -> None:
        """Close the socket; a later request opens a new one."""
        self._kernel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Links -----------------------------------------------------------------------------------

    def _link(self, name: str, operation: str) -> LinkRecord:
        try:
            return self._kernel.link_get(name)
        except OSError as e:
            raise _failed(operation, e, detail=_no_link(name, e)) from e

    def link_exists(self, name: str) -> bool:
        try:
            self._kernel.link_get(name)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise _failed(f"look up link {name}", e) from e
        return True

    def link_index(self, name: str) -> int:
        """The link's index; NetlinkFailed with ENODEV when there is no such link."""
        return self._link(name, f"look up link {name}").index

    def link_names(self) -> list[str]:
        try:
            return [link.name for link in self._kernel.link_dump()]
        except OSError as e:
            raise _failed("list links", e) from e

    def get_mtu(self, name: str) -> int:
        return self._link(name, f"read MTU of {name}").mtu

    def _set(self, name: str, operation: str, request: Callable[[int], None]) -> None:
        """Make a request that changes the link `name`, naming `operation` when the kernel refuses."""
        index = self._link(name, operation).index
        try:
            request(index)
        except OSError as e:
            raise _failed(operation, e) from e

    def set_mtu(self, name: str, mtu: int) -> None:
        """Set the MTU (the kernel refuses values the link cannot take with EINVAL).

        Beware: an MTU below 1280 disables IPv6 on the link and the kernel drops its IPv6
        addresses and routes; raising the MTU again does not bring them back.
        """
        self._set(name, f"set MTU of {name} to {mtu}", lambda index: self._kernel.link_set_mtu(index, mtu))

    def link_up(self, name: str) -> None:
        self._set(name, f"bring up link {name}", self._kernel.link_set_up)

    def link_down(self, name: str) -> None:
        """Set the link administratively down.

        The kernel then drops every route through the link and its IPv6 addresses (unless
        keep_addr_on_down is set); IPv4 addresses stay. Bringing it up again restores only
        the IPv4 connected routes: whoever added the rest must add them again.
        """
        self._set(name, f"set link {name} down", self._kernel.link_set_down)

    def is_up(self, name: str) -> bool:
        """Administratively up (IFF_UP), whether or not there is a carrier."""
        return self._link(name, f"read state of {name}").up

    def delete_link(self, name: str) -> bool:
        """Delete the link (a veth takes its peer with it); False when it is already gone."""
        operation = f"delete link {name}"
        try:
            index = self._kernel.link_get(name).index
            self._kernel.link_del(index)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise _failed(operation, e) from e
        return True

    # Addresses -------------------------------------------------------------------------------

    def _addr_dump(self, index: int, operation: str) -> list[AddrRecord]:
        try:
            return self._kernel.addr_dump(index)
        except OSError as e:
            raise _failed(operation, e) from e

    def addresses(self, name: str) -> list[IPIface]:
        """Global-scope addresses of both families (not link-local, not host-scope like ::1)."""
        operation = f"list addresses of {name}"
        index = self._link(name, operation).index
        return [a.iface for a in self._addr_dump(index, operation) if a.scope == RT_SCOPE_UNIVERSE]

    def add_address(self, name: str, iface: IPIface, *, nodad: bool = False) -> bool:
        """Add the address; False when exactly this address/prefix is already on the link.

        `nodad` skips IPv6 duplicate address detection so the address is usable at once;
        it does not apply to IPv4. The kernel keys IPv6 addresses by address alone, so the
        same address with another prefix length is a conflict (NetlinkFailed, EEXIST).
        """
        operation = f"add address {iface} to {name}"
        index = self._link(name, operation).index
        try:
            self._kernel.addr_add(index, iface, nodad=nodad and iface.version == 6)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise _failed(operation, e) from e
            present = [a.iface for a in self._addr_dump(index, operation)]
            if iface in present:
                return False
            clashing = ", ".join(str(p) for p in present if p.ip == iface.ip) or "a clashing address"
            raise _failed(operation, e, detail=f"{name} already has {clashing}") from e
        return True

    def del_address(self, name: str, iface: IPIface) -> bool:
        """Delete the address; False when it is not there (or the link itself is gone).

        The kernel matches address and prefix length. Deleting an IPv4 primary address also
        deletes the secondary addresses of its subnet unless promote_secondaries is set.
        """
        operation = f"delete address {iface} from {name}"
        try:
            index = self._kernel.link_get(name).index
            self._kernel.addr_del(index, iface)
        except OSError as e:
            if e.errno in (errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENODEV):
                return False
            raise _failed(operation, e) from e
        return True

    # Routes ----------------------------------------------------------------------------------

    def route(self, dst: IPNet) -> RouteInfo | None:
        """The active unicast route of the main table to exactly `dst` (any origin), or None."""
        session = _Session(self._kernel)
        operation = f"look up route to {dst}"
        found = session.routes_to(dst, operation)
        return session.info(found[0], operation) if found else None

    def active_routes(self, dsts: Iterable[IPNet]) -> dict[IPNet, RouteInfo | None]:
        """route() for each destination, from one dump of the routing table (not one per destination)."""
        session = _Session(self._kernel)
        found: dict[IPNet, RouteInfo | None] = {}
        for dst in dsts:
            operation = f"look up route to {dst}"
            records = session.routes_to(dst, operation)
            found[dst] = session.info(records[0], operation) if records else None
        return found

    def route_table(self) -> dict[IPNet, RouteInfo]:
        """The active unicast route of the main table to every destination, both families, from one dump."""
        operation = "list routes"
        session = _Session(self._kernel)
        try:
            records = self._kernel.route_dump(None)
        except OSError as e:
            raise _failed(operation, e) from e
        best: dict[IPNet, RouteRecord] = {}
        for r in records:
            if r.table == MAIN_TABLE and r.type == RTN_UNICAST and (r.dst not in best or r.priority < best[r.dst].priority):
                best[r.dst] = r
        return {dst: session.info(r, operation) for dst, r in best.items()}

    def routes(self, family: int | None = None) -> list[RouteInfo]:
        """Configured unicast routes of the main table: protocol static or boot only.

        Left out: the kernel's own routes (connected subnets, link-local, multicast), routes
        from daemons (DHCP, router advertisements, BGP...) and other tables. `family` is
        socket.AF_INET or socket.AF_INET6; None means both.
        """
        operation = "list routes"
        session = _Session(self._kernel)
        return [
            session.info(r, operation)
            for r in self._unicast_routes(family, operation)
            if r.proto in CONFIGURED_PROTOS
        ]

    def _unicast_routes(self, family: int | None, operation: str) -> list[RouteRecord]:
        """Unicast routes of the main table, of `family` (None: both), from one dump."""
        try:
            records = self._kernel.route_dump(family)
        except OSError as e:
            raise _failed(operation, e) from e
        return [r for r in records if r.table == MAIN_TABLE and r.type == RTN_UNICAST]

    def default_route_dev(self, family: int) -> str | None:
        """Device of the active default route of the main table for `family`, or None."""
        operation = "look up the default route"
        defaults = [r for r in self._unicast_routes(family, operation) if r.dst.prefixlen == 0 and r.oif is not None]
        if not defaults:
            return None
        return _Session(self._kernel).name(min(defaults, key=lambda r: r.priority).oif, operation)

    def add_route(self, dst: IPNet, gateway: IPAddr | None, *, dev: str | None = None) -> bool:
        """Add a route to the main table; False when an identical one is there.

        `gateway` None makes an on-link route through `dev`. A route to `dst` with another
        gateway or device raises NetlinkFailed with EEXIST naming it. A gateway that is not
        on-link raises ENETUNREACH (IPv4) or EHOSTUNREACH (IPv6), as the kernel answers.
        """
        _check_route(dst, gateway, dev)
        return self._add_route(RouteInfo(dst, gateway, dev), _Session(self._kernel))

    def del_route(self, dst: IPNet, gateway: IPAddr | None, *, dev: str | None = None) -> bool:
        """Delete the route matching dst (and gateway and dev when given); False when absent.

        With neither gateway nor dev, the kernel deletes the active route to `dst`, whatever
        it is: pass the gateway you added.
        """
        return self._del_route(RouteInfo(dst, gateway, dev), _Session(self._kernel))

    def add_routes(self, routes: Iterable[RouteInfo]) -> list[bool]:
        """add_route for each, in order, sharing lookups; one result per route.

        Stops at the first failure; routes added before it stay (del_routes undoes them,
        and treats those never added as already gone).
        """
        routes = list(routes)
        for r in routes:
            _check_route(r.dst, r.gateway, r.dev)
        session = _Session(self._kernel)
        return [self._add_route(r, session) for r in routes]

    def del_routes(self, routes: Iterable[RouteInfo]) -> list[bool]:
        """del_route for each, in order, sharing lookups; one result per route."""
        session = _Session(self._kernel)
        return [self._del_route(r, session) for r in routes]

    def _add_route(self, route: RouteInfo, session: _Session) -> bool:
        operation = f"add route {route}"
        oif = session.index(route.dev, operation) if route.dev is not None else None
        try:
            self._kernel.route_add(route.dst, route.gateway, oif)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise _failed(operation, e) from e
            existing = session.routes_to(route.dst, operation)
            if not any(self._same(r, route, oif) for r in existing):
                # The snapshot may predate routes this batch added itself: look once more.
                existing = session.routes_to(route.dst, operation, refresh=True)
            if any(self._same(r, route, oif) for r in existing):
                return False
            there = "; ".join(str(session.info(r, operation)) for r in existing)
            detail = f"the main table already has {there}" if there else "a route exists"
            raise _failed(operation, e, detail=detail) from e
        return True

    @staticmethod
    def _same(record: RouteRecord, route: RouteInfo, oif: int | None) -> bool:
        return record.gateway == route.gateway and (oif is None or record.oif == oif)

    def _del_route(self, route: RouteInfo, session: _Session) -> bool:
        operation = f"delete route {route}"
        try:
            oif = session.lookup(route.dev) if route.dev is not None else None
            self._kernel.route_del(route.dst, route.gateway, oif)
        except OSError as e:
            # ENODEV: the device is gone, and the kernel removed its routes with it.
            if e.errno in (errno.ESRCH, errno.ENODEV):
                return False
            raise _failed(operation, e) from e
        return True


class Pyroute2Kernel:
    """The real kernel through one pyroute2 IPRoute socket, opened at the first request."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None

    def _socket(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            # groups=0: this socket only makes requests. The default subscribes to
            # multicast events, which would pile up unread on a long-lived socket.
            kwargs: dict[str, Any] = {"groups": 0}
            if self.netns is not None:
                # flags=0: the default (O_CREAT) would silently create a missing namespace.
                kwargs.update(netns=self.netns, flags=0)
            try:
                self._ipr = IPRoute(**kwargs)
            except OSError as e:
                where = f"network namespace {self.netns}" if self.netns else "this host"
                hint = "no such namespace" if e.errno == errno.ENOENT and self.netns else ""
                raise NetlinkFailed(f"open a netlink socket in {where}", e.errno or errno.EIO, detail=hint) from e
        return self._ipr

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from pyroute2.netlink.exceptions import NetlinkError

        ipr = self._socket()
        try:
            return getattr(ipr, method)(*args, **kwargs)
        except NetlinkError as e:
            raise OSError(e.code, os.strerror(e.code)) from e

    def close(self) -> None:
        if self._ipr is not None:
            ipr, self._ipr = self._ipr, None
            ipr.close()

    @staticmethod
    def _link_record(msg: Any) -> LinkRecord:
        return LinkRecord(
            index=msg["index"],
            name=msg.get("ifname"),
            mtu=msg.get("mtu"),
            up=bool(msg["flags"] & IFF_UP),
        )

    def link_get(self, name: str) -> LinkRecord:
        # Not link_lookup(): it answers [] for every error, ENODEV or not.
        return self._link_record(self._call("link", "get", ifname=name)[0])

    def link_dump(self) -> list[LinkRecord]:
        return [self._link_record(m) for m in self._call("link", "dump")]

    def link_set_mtu(self, index: int, mtu: int) -> None:
        self._call("link", "set", index=index, mtu=mtu)

    def link_set_up(self, index: int) -> None:
        self._call("link", "set", index=index, state="up")

    def link_set_down(self, index: int) -> None:
        self._call("link", "set", index=index, state="down")

    def link_del(self, index: int) -> None:
        self._call("link", "del", index=index)

    def addr_dump(self, index: int) -> list[AddrRecord]:
        records = []
        for msg in self._call("addr", "dump", index=index):
            if msg["family"] not in (socket.AF_INET, socket.AF_INET6):
                continue
            # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point
            # IPv4 links. IPv6 sends only IFA_ADDRESS unless there is a peer.
            local = msg.get("local") or msg.get("address")
            iface = ip_interface((local, msg["prefixlen"]))
            records.append(AddrRecord(msg["index"], iface, msg["scope"]))
        return records

    def addr_add(self, index: int, iface: IPIface, *, nodad: bool) -> None:
        kwargs: dict[str, Any] = {
            "index": index,
            "address": str(iface.ip),
            "prefixlen": iface.network.prefixlen,
        }
        if iface.version == 4 and iface.network.prefixlen < 31:
            # As `ip addr add ... brd +` and vishvananda/netlink (lazyjack 1.x) do.
            kwargs["broadcast"] = str(iface.network.broadcast_address)
        if nodad:
            kwargs["flags"] = IFA_F_NODAD
        self._call("addr", "add", **kwargs)

    def addr_del(self, index: int, iface: IPIface) -> None:
        self._call("addr", "del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)

    def route_dump(self, family: int | None) -> list[RouteRecord]:
        kwargs = {} if family is None else {"family": family}
        records = []
        for msg in self._call("route", "dump", **kwargs):
            fam = msg["family"]
            if fam not in (socket.AF_INET, socket.AF_INET6):
                continue
            dst = msg.get("dst")
            base = ip_address(dst) if dst else _UNSPECIFIED[fam]
            gateway, oif = msg.get("gateway"), msg.get("oif")
            hops = msg.get("multipath")
            if gateway is None and oif is None and hops:
                gateway, oif = hops[0].get("gateway"), hops[0].get("oif")
            records.append(
                RouteRecord(
                    dst=ip_network((base, msg["dst_len"]), strict=False),
                    gateway=ip_address(gateway) if gateway else None,
                    oif=oif,
                    # RTA_TABLE holds ids above 255, where the header says RT_TABLE_COMPAT.
                    table=msg.get_attr("RTA_TABLE") or msg["table"],
                    proto=msg["proto"],
                    type=msg["type"],
                    priority=msg.get("priority") or 0,
                )
            )
        return records

    @staticmethod
    def _route_args(dst: IPNet, gateway: IPAddr | None, oif: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "family": _family(dst.version),
            "dst": str(dst),
            "table": MAIN_TABLE,
        }
        if gateway is not None:
            kwargs["gateway"] = str(gateway)
        if oif is not None:
            kwargs["oif"] = oif
        return kwargs

    def route_add(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None:
        kwargs = self._route_args(dst, gateway, oif)
        # Explicit rather than pyroute2's defaults: routes() selects on the protocol, and
        # an on-link IPv4 route has link scope, as `ip route add ... dev X` gives it.
        on_link_v4 = gateway is None and dst.version == 4
        kwargs.update(
            proto=RTPROT_STATIC,
            type=RTN_UNICAST,
            scope=RT_SCOPE_LINK if on_link_v4 else RT_SCOPE_UNIVERSE,
        )
        self._call("route", "add", **kwargs)

    def route_del(self, dst: IPNet, gateway: IPAddr | None, oif: int | None) -> None:
        # RT_SCOPE_NOWHERE means "any scope" to the kernel. pyroute2 would send scope 0,
        # with which an IPv4 link-scope route never matches (ESRCH).
        self._call("route", "del", scope=RT_SCOPE_NOWHERE, **self._route_args(dst, gateway, oif))


_UNSPECIFIED: dict[int, IPAddr] = {
    socket.AF_INET: IPv4Address(0),
    socket.AF_INET6: IPv6Address(0),
}
