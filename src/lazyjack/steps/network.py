"""Network steps: management addresses, MTU, link state, sysctls, routes and links, through netlink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_interface, ip_network
from typing import TYPE_CHECKING, Self

from lazyjack.addresses import IPIface, IPNet
from lazyjack.config.plan import Route
from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Outcome, Record, Step
from lazyjack.steps.records import AddressRecord, InterfaceRecord, MtuRecord, NameRecord, RoutesRecord, SysctlRecord
from lazyjack.steps.shapes import Action, Created, Item, ItemDrift, Items, Setting

if TYPE_CHECKING:
    from lazyjack.host.netlink import RouteInfo


@dataclass
class ManagementAddress(Created):
    """An address on the management interface."""

    kind = "address"
    record_model = AddressRecord
    interface: str
    address: IPIface
    there = "{address} already on {interface}"
    make = "add {address} to {interface}"
    unmake = "remove {address} from {interface}"
    absent = "{address} is not on {interface}"

    @property
    def title(self) -> str:
        return f"address {self.address} on {self.interface}"

    def identity(self) -> Record:
        return {"interface": self.interface, "address": str(self.address)}

    @classmethod
    def from_record(cls, record: Record) -> Self:
        return cls(record["interface"], ip_interface(record["address"]))

    def exists(self, ctx: Context) -> bool:
        net = ctx.host.net
        return net.link_exists(self.interface) and self.address in net.addresses(self.interface)

    def create(self, ctx: Context) -> None:
        ctx.host.net.add_address(self.interface, self.address)

    @classmethod
    def delete(cls, ctx: Context, record: Record) -> Outcome:
        address = ip_interface(record["address"])
        if not ctx.host.net.link_exists(record["interface"]):
            return Outcome.noop(f"{record['interface']} is gone")
        if ctx.host.net.del_address(record["interface"], address):
            return Outcome.change(f"removed {address} from {record['interface']}")
        return Outcome.noop(f"{address} is not on {record['interface']}")


@dataclass
class LinkUp(Created):
    """The management interface is up."""

    kind = "link-up"
    record_model = InterfaceRecord
    interface: str
    there = "{interface} is already up"
    make = "set {interface} up"
    absent = "{interface} is down"

    @property
    def title(self) -> str:
        return f"{self.interface} up"

    def identity(self) -> Record:
        return {"interface": self.interface}

    def exists(self, ctx: Context) -> bool:
        net = ctx.host.net
        return net.link_exists(self.interface) and net.is_up(self.interface)

    def create(self, ctx: Context) -> None:
        ctx.host.net.link_up(self.interface)

    @classmethod
    def delete(cls, ctx: Context, record: Record) -> Outcome:
        name = record["interface"]
        if not ctx.host.net.link_exists(name) or not ctx.host.net.is_up(name):
            return Outcome.noop(f"{name} is already down or gone")
        ctx.host.net.link_down(name)
        return Outcome.change(f"set {name} down again")

    # Without a journal nobody knows whether the link was down before lazyjack: it stays up.
    remove = Step.remove
    plan_remove = Step.plan_remove


@dataclass
class LinkMtu(Setting):
    """The MTU of the management interface (pod_net.mtu)."""

    kind = "mtu"
    record_model = MtuRecord
    target_key, value_key, unknown = "interface", "mtu", "MTU"
    restore = "restore MTU {original} on {interface}"
    interface: str
    mtu: int

    @property
    def title(self) -> str:
        return f"MTU of {self.interface}"

    @classmethod
    def read(cls, ctx: Context, target: str) -> int:
        return ctx.host.net.get_mtu(target)

    @classmethod
    def write(cls, ctx: Context, target: str, value: int) -> None:
        ctx.host.net.set_mtu(target, value)

    @classmethod
    def gone(cls, ctx: Context, target: str) -> str | None:
        return None if ctx.host.net.link_exists(target) else f"{target} is gone"

    @classmethod
    def original(cls, record: Record) -> int:
        return int(record["original"])


@dataclass
class Sysctl(Setting):
    """A kernel setting under /proc/sys (forwarding)."""

    kind = "sysctl"
    record_model = SysctlRecord
    target_key, value_key = "name", "value"
    restore = "restore {name} = {original}"
    name: str
    value: str

    @property
    def title(self) -> str:
        return f"sysctl {self.name}"

    @classmethod
    def read(cls, ctx: Context, target: str) -> str:
        return ctx.host.sysctl.get(target)

    @classmethod
    def write(cls, ctx: Context, target: str, value: str) -> None:
        ctx.host.sysctl.set(target, value)


def _route_record(route: Route) -> dict[str, str | None]:
    return {"destination": str(route.destination), "gateway": str(route.gateway), "device": route.device}


@dataclass
class Routes(Items):
    """A set of static routes, installed and removed through one netlink socket."""

    kind = "routes"
    record_model = RoutesRecord
    record_key, noun = "routes", "route"
    label: str
    routes: Sequence[Route]

    @property
    def title(self) -> str:
        return f"routes to {self.label}"

    def _active(self, ctx: Context) -> dict[IPNet, RouteInfo | None]:
        # One dump of the table for the whole set: a dump per route made `up` quadratic in the node count.
        return ctx.host.net.active_routes(r.destination for r in self.routes)

    def _missing(self, ctx: Context) -> list[Route]:
        missing: list[Route] = []
        active = self._active(ctx)
        for route in self.routes:
            existing = active[route.destination]
            if existing is None:
                missing.append(route)
            elif existing.gateway != route.gateway:
                raise HostError(
                    f"a route to {route.destination} via {existing.gateway or existing.dev} already exists; "
                    f"lazyjack needs it via {route.gateway}. Remove it (ip route del {route.destination}) "
                    "or fix the config"
                )
        return missing

    def missing(self, ctx: Context) -> list[Item]:
        return [_route_record(r) for r in self._missing(ctx)]

    def present(self, ctx: Context) -> list[Item]:
        active = self._active(ctx)
        return [_route_record(r) for r in self.routes if (e := active[r.destination]) and e.gateway == r.gateway]

    @classmethod
    def add(cls, ctx: Context, item: Item) -> None:
        ctx.host.net.add_route(ip_network(item["destination"]), ip_address(item["gateway"]), dev=item["device"])

    @classmethod
    def delete(cls, ctx: Context, item: Item) -> bool:
        return ctx.host.net.del_route(ip_network(item["destination"]), ip_address(item["gateway"]))

    def plan(self, ctx: Context) -> Outcome:
        if not self.routes:
            return Outcome.noop("none needed")
        missing = self._missing(ctx)
        if not missing:
            return Outcome.noop(f"all {len(self.routes)} present" if len(self.routes) > 1 else
                                f"{self.routes[0].describe()} already present")
        if len(missing) <= 3:
            return Outcome.change(*(f"add {r.describe()}" for r in missing))
        return Outcome.change(f"add {len(missing)} routes ({missing[0].describe()}, ...)")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"remove {len(record['routes'])} route(s)")

    @classmethod
    def drifts(cls, ctx: Context, items: list[Item]) -> list[ItemDrift]:
        # One dump for every route set a status run checks.
        table = ctx.fact("routes", ctx.host.net.route_table)
        found: list[ItemDrift] = []
        for item in items:
            destination, gateway = ip_network(item["destination"]), ip_address(item["gateway"])
            active = table.get(destination)
            if active is None:
                found.append(ItemDrift(item, f"route {destination} via {gateway} is gone"))
            elif active.gateway != gateway:
                found.append(ItemDrift(item, f"route {destination} goes via {active.gateway or active.dev} "
                                             f"instead of {gateway}", addable=False))
        return found


@dataclass
class DeleteLink(Action):
    """A link that must go (the CNI bridge `br0` at down); not journaled, nothing to restore."""

    kind = "delete-link"
    record_model = NameRecord
    nothing_to_undo = "{name} is re-created by the CNI plugin when pods start"
    name: str

    @property
    def title(self) -> str:
        return f"link {self.name}"

    def done(self, ctx: Context) -> str | None:
        return None if ctx.host.net.link_exists(self.name) else f"{self.name} does not exist"

    def commands(self, ctx: Context) -> list[str]:
        return [f"delete {self.name}"]

    def run(self, ctx: Context) -> Record:
        ctx.host.net.delete_link(self.name)
        return {"name": self.name}


__all__ = ["DeleteLink", "LinkMtu", "LinkUp", "ManagementAddress", "Routes", "Sysctl"]
