"""Network steps: management addresses, MTU, link state, sysctls, routes and links, through netlink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_interface, ip_network

from lazyjack.config.plan import IPIface, Route
from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Outcome, Record, Step


@dataclass
class ManagementAddress(Step):
    """An address on the management interface."""

    kind = "address"
    interface: str
    address: IPIface

    @property
    def title(self) -> str:
        return f"address {self.address} on {self.interface}"

    def plan(self, ctx: Context) -> Outcome:
        if self.address in ctx.host.net.addresses(self.interface):
            return Outcome.noop(f"{self.address} already on {self.interface}")
        return Outcome.change(f"add {self.address} to {self.interface}")

    def apply(self, ctx: Context) -> Record:
        ctx.host.net.add_address(self.interface, self.address)
        return {"interface": self.interface, "address": str(self.address), "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        address = ip_interface(record["address"])
        if not ctx.host.net.link_exists(record["interface"]):
            return Outcome.noop(f"{record['interface']} is gone")
        if ctx.host.net.del_address(record["interface"], address):
            return Outcome.change(f"removed {address} from {record['interface']}")
        return Outcome.noop(f"{address} is not on {record['interface']}")

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {"interface": self.interface, "address": str(self.address)})

    def plan_remove(self, ctx: Context) -> Outcome:
        if ctx.host.net.link_exists(self.interface) and self.address in ctx.host.net.addresses(self.interface):
            return Outcome.change(f"remove {self.address} from {self.interface}")
        return Outcome.noop(f"{self.address} is not on {self.interface}")


@dataclass
class LinkUp(Step):
    """The management interface is up."""

    kind = "link-up"
    interface: str

    @property
    def title(self) -> str:
        return f"{self.interface} up"

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.net.is_up(self.interface):
            return Outcome.noop(f"{self.interface} is already up")
        return Outcome.change(f"set {self.interface} up")

    def apply(self, ctx: Context) -> Record:
        ctx.host.net.link_up(self.interface)
        return {"interface": self.interface, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        name = record["interface"]
        if not ctx.host.net.link_exists(name) or not ctx.host.net.is_up(name):
            return Outcome.noop(f"{name} is already down or gone")
        ctx.host.net.link_down(name)
        return Outcome.change(f"set {name} down again")


@dataclass
class LinkMtu(Step):
    """The MTU of the management interface (pod_net.mtu)."""

    kind = "mtu"
    interface: str
    mtu: int

    @property
    def title(self) -> str:
        return f"MTU of {self.interface}"

    def plan(self, ctx: Context) -> Outcome:
        current = ctx.host.net.get_mtu(self.interface)
        if current == self.mtu:
            return Outcome.noop(f"already {self.mtu}")
        return Outcome.change(f"{current} -> {self.mtu}")

    def apply(self, ctx: Context) -> Record:
        original = ctx.host.net.get_mtu(self.interface)
        ctx.host.net.set_mtu(self.interface, self.mtu)
        return {"interface": self.interface, "original": original, "mtu": self.mtu, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        name, original = record["interface"], int(record["original"])
        if not ctx.host.net.link_exists(name):
            return Outcome.noop(f"{name} is gone")
        current = ctx.host.net.get_mtu(name)
        if current == original:
            return Outcome.noop(f"already {original}")
        ctx.host.net.set_mtu(name, original)
        return Outcome.change(f"{current} -> {original} (restored)")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"restore MTU {record['original']} on {record['interface']}")

    def plan_remove(self, ctx: Context) -> Outcome:
        return Outcome.noop("the original MTU is unknown without a journal; left as it is")


@dataclass
class Sysctl(Step):
    """A kernel setting under /proc/sys (forwarding)."""

    kind = "sysctl"
    name: str
    value: str

    @property
    def title(self) -> str:
        return f"sysctl {self.name}"

    def plan(self, ctx: Context) -> Outcome:
        current = ctx.host.sysctl.get(self.name)
        if current == self.value:
            return Outcome.noop(f"already {self.value}")
        return Outcome.change(f"{current} -> {self.value}")

    def apply(self, ctx: Context) -> Record:
        original = ctx.host.sysctl.get(self.name)
        ctx.host.sysctl.set(self.name, self.value)
        return {"name": self.name, "original": original, "value": self.value, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        name, original = record["name"], record["original"]
        current = ctx.host.sysctl.get(name)
        if current == original:
            return Outcome.noop(f"already {original}")
        ctx.host.sysctl.set(name, original)
        return Outcome.change(f"{current} -> {original} (restored)")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"restore {record['name']} = {record['original']}")

    def plan_remove(self, ctx: Context) -> Outcome:
        return Outcome.noop("the original value is unknown without a journal; left as it is")


def _route_record(route: Route) -> dict[str, str | None]:
    return {"destination": str(route.destination), "gateway": str(route.gateway), "device": route.device}


@dataclass
class Routes(Step):
    """A set of static routes, installed and removed through one netlink socket."""

    kind = "routes"
    label: str
    routes: Sequence[Route]

    @property
    def title(self) -> str:
        return f"routes to {self.label}"

    def _missing(self, ctx: Context) -> list[Route]:
        missing: list[Route] = []
        # One dump of the table for the whole set: a dump per route made `up` quadratic in the node count.
        active = ctx.host.net.active_routes(r.destination for r in self.routes)
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

    def apply(self, ctx: Context) -> Record:
        missing = self._missing(ctx)
        added: list[Route] = []
        try:
            for route in missing:
                ctx.host.net.add_route(route.destination, route.gateway, dev=route.device)
                added.append(route)
        except BaseException:
            # Leave no partial set behind (also when interrupted): this step's record would not cover them.
            for route in reversed(added):
                ctx.host.net.del_route(route.destination, route.gateway)
            raise
        return {"routes": [_route_record(r) for r in added], "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        removed = 0
        for item in record["routes"]:
            if ctx.host.net.del_route(ip_network(item["destination"]), ip_address(item["gateway"])):
                removed += 1
        if removed == 0:
            return Outcome.noop("already absent")
        return Outcome.change(f"removed {removed} route(s)")

    @classmethod
    def merge(cls, old: Record, new: Record) -> Record:
        """A later run may add routes (a node joined the config): undo must cover both runs'."""
        routes = list(old["routes"]) + [r for r in new["routes"] if r not in old["routes"]]
        return {**old, "routes": routes}

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"remove {len(record['routes'])} route(s)")

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {"routes": [_route_record(r) for r in self.routes]})

    def plan_remove(self, ctx: Context) -> Outcome:
        active = ctx.host.net.active_routes(r.destination for r in self.routes)
        present = [r for r in self.routes if (e := active[r.destination]) and e.gateway == r.gateway]
        if not present:
            return Outcome.noop("already absent")
        return Outcome.change(f"remove {len(present)} route(s)")


@dataclass
class DeleteLink(Step):
    """A link that must go (the CNI bridge `br0` at down); not journaled, nothing to restore."""

    kind = "delete-link"
    name: str

    @property
    def title(self) -> str:
        return f"link {self.name}"

    def plan(self, ctx: Context) -> Outcome:
        if not ctx.host.net.link_exists(self.name):
            return Outcome.noop(f"{self.name} does not exist")
        return Outcome.change(f"delete {self.name}")

    def apply(self, ctx: Context) -> Record:
        ctx.host.net.delete_link(self.name)
        return {"name": self.name, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        return Outcome.noop(f"{record['name']} is re-created by the CNI plugin when pods start")


__all__ = ["DeleteLink", "LinkMtu", "LinkUp", "ManagementAddress", "Routes", "Sysctl"]
