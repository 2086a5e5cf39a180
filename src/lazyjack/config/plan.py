"""The address plan: every address, subnet and route lazyjack derives from the config.

One function per rule of lazyjack 1.x (docs/ARCHITECTURE.md, "The address plan"), computed with integers
through `ipaddress`. Node IDs are hex in IPv6 and decimal in IPv4 because they are
added to the network as integers, never pasted into strings.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network, ip_network
from typing import TYPE_CHECKING, Literal, NamedTuple

from lazyjack.addresses import IPAddr, IPIface, IPNet, PlanError, embed_ipv4
from lazyjack.config.nodes import NodeSpec

if TYPE_CHECKING:
    from lazyjack.config.model import Config

#: Bits a node's pod subnet adds to the cluster pod network.
NODE_SUBNET_BITS = 8
#: Index of the cluster DNS service address inside the service network.
DNS_SERVICE_INDEX = 10

#: Kubernetes minor version -> the newest kubeadm config API it accepts.
_API_BY_MINOR: tuple[tuple[int, str], ...] = (
    (31, "v1beta4"),
    (22, "v1beta3"),
    (15, "v1beta2"),
    (13, "v1beta1"),
    (12, "v1alpha3"),
    (11, "v1alpha2"),
)
KUBEADM_API_VERSIONS = tuple(v for _, v in reversed(_API_BY_MINOR))
LATEST_KUBEADM_API = "v1beta4"
KUBERNETES_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.+-]+)?$")


def management_address(cidr: IPNet, node_id: int) -> IPIface:
    """The node's address on the management network, with the network's prefix length.

    IPv6: the ID is the last group (`fd00:20::/64`, 10 -> `fd00:20::a/64`).
    IPv4: the ID is the fourth octet after the network's first three
    (`10.192.0.0/16`, 2 -> `10.192.0.2/16`).
    """
    if isinstance(cidr, IPv6Network):
        if node_id > 0xFFFF:
            raise PlanError(f"ID {node_id} does not fit the last group of an IPv6 address (at most 65535)")
        if node_id >= cidr.num_addresses:
            raise PlanError(f"ID {node_id} does not fit in the host part of {cidr}")
        return IPv6Interface((cidr.network_address + node_id, cidr.prefixlen))
    if node_id > 255:
        raise PlanError(f"ID {node_id} does not fit the last octet of an IPv4 address (2-255)")
    address = IPv4Address((int(cidr.network_address) & ~0xFF) | node_id)
    if address not in cidr:
        raise PlanError(f"ID {node_id} gives {address}, which is outside {cidr}")
    if cidr.prefixlen < 31 and address == cidr.broadcast_address:
        raise PlanError(f"ID {node_id} gives {address}, the broadcast address of {cidr}")
    return IPv4Interface((address, cidr.prefixlen))


def pod_subnet(cidr: IPNet, node_id: int) -> IPNet:
    """The node's pod subnet: NODE_SUBNET_BITS longer than the pod network, ID in those bits.

    `fd00:40::/72`, 2 -> `fd00:40:0:0:2::/80`; `fd00:10:20:30::/64`, 2 ->
    `fd00:10:20:30:200::/72`; `10.244.0.0/16`, 2 -> `10.244.2.0/24`.
    """
    length = cidr.prefixlen + NODE_SUBNET_BITS
    if length > cidr.max_prefixlen:
        raise PlanError(f"{cidr} has no room for {NODE_SUBNET_BITS} more bits of node subnet")
    if node_id >= 1 << NODE_SUBNET_BITS:
        raise PlanError(f"ID {node_id} does not fit the {NODE_SUBNET_BITS} bits of a node's pod subnet (2-255)")
    shift = cidr.max_prefixlen - length
    return ip_network((int(cidr.network_address) + (node_id << shift), length))


def pod_gateway(subnet: IPNet) -> IPAddr:
    """The CNI gateway of a node's pod subnet: its first host address."""
    return subnet.network_address + 1


def dns_service_ip(service_cidr: IPNet) -> IPAddr:
    """The cluster DNS service address: the tenth address of the service network."""
    if service_cidr.num_addresses <= DNS_SERVICE_INDEX:
        raise PlanError(f"{service_cidr} is too small to hold the DNS service address (index {DNS_SERVICE_INDEX})")
    return service_cidr.network_address + DNS_SERVICE_INDEX


def support_gateway(support_cidr: IPNet) -> IPAddr:
    """The node's own address on the support network: its first host address."""
    return support_cidr.network_address + 1


#: The node itself, as a client of its own DNS64 server.
LOCALHOST: tuple[IPNet, ...] = (IPv6Network("::1/128"), IPv4Network("127.0.0.0/8"))


def served_networks(config: Config) -> tuple[IPNet, ...]:
    """Who may use the DNS64 resolver and the NAT64 translator: the cluster's management, pod and support
    networks, and localhost. Everything else, the node's uplink side above all, is refused by the resolver
    and not forwarded to the translator. Every DNS64 and NAT64 server lazyjack runs serves these."""
    nets = [*config.mgmt, *config.pod]
    if config.support_net is not None:
        nets += [config.support_net.cidr, config.support_net.v4cidr]
    return (*nets, *LOCALHOST)


def kubeadm_api_for(kubernetes_version: str) -> str | None:
    """The kubeadm config API version for a Kubernetes version string, or None if too old.

    `latest` means the newest API lazyjack knows.
    """
    if kubernetes_version == "latest":
        return LATEST_KUBEADM_API
    match = KUBERNETES_VERSION_RE.match(kubernetes_version)
    if match is None or int(match.group(1)) != 1:
        return None
    minor = int(match.group(2))
    for first_minor, api in _API_BY_MINOR:
        if minor >= first_minor:
            return api
    return None


def kubernetes_minor(kubernetes_version: str) -> int | None:
    """The minor version number of `vX.Y.Z`, or None for `latest` or a malformed string."""
    match = KUBERNETES_VERSION_RE.match(kubernetes_version)
    return int(match.group(2)) if match else None


class Route(NamedTuple):
    """A static route lazyjack installs on a node (a tuple: a big cluster has N*(N-1) of them)."""

    destination: IPNet
    gateway: IPAddr
    purpose: str
    phase: Literal["prepare", "up"]
    device: str | None = None

    def describe(self) -> str:
        via = f"via {self.gateway}"
        if self.device:
            via += f" dev {self.device}"
        return f"{self.destination} {via}"


@dataclass(frozen=True)
class NodePlan(NodeSpec):
    """A node of the topology and what it gets: its addresses, subnets, nameserver and routes."""

    management: tuple[IPIface, ...] = ()
    pod_subnets: tuple[IPNet, ...] = ()
    nameserver: IPAddr | None = None
    routes: tuple[Route, ...] = ()

    @property
    def pod_gateways(self) -> tuple[IPAddr, ...]:
        return tuple(pod_gateway(s) for s in self.pod_subnets)

    def management_of(self, version: int) -> IPIface | None:
        return next((a for a in self.management if a.version == version), None)


@dataclass(frozen=True)
class Plan:
    """The address plan of a whole cluster."""

    mode: str
    dns_service_ip: IPAddr
    api_advertise_address: IPAddr
    kubeadm_api_version: str | None
    nodes: dict[str, NodePlan] = field(default_factory=dict)
    dns64_forwarder: IPv6Address | None = None

    @property
    def master(self) -> NodePlan:
        return next(n for n in self.nodes.values() if n.is_master)

    @property
    def nat64_node(self) -> NodePlan | None:
        return next((n for n in self.nodes.values() if n.is_nat64), None)

    @property
    def dns64_node(self) -> NodePlan | None:
        return next((n for n in self.nodes.values() if n.is_dns64), None)

    def cluster_nodes(self) -> list[NodePlan]:
        """Master and minions, sorted by name (the order of /etc/hosts lines)."""
        return sorted((n for n in self.nodes.values() if n.is_cluster_node), key=lambda n: n.name)

    def to_json(self) -> dict[str, object]:
        """The plan as `lazyjack validate --output json` prints it."""
        text: dict[object, str] = {}  # the same subnets and gateways recur in every node's routes

        def s(value: object) -> str:
            found = text.get(value)
            if found is None:
                found = text[value] = str(value)
            return found

        nodes: dict[str, object] = {}
        for node in self.nodes.values():
            entry: dict[str, object] = {
                "id": node.id,
                "roles": list(node.roles),
                "interface": node.interface,
                "management_addresses": [str(a) for a in node.management],
            }
            if node.is_cluster_node:
                entry["pod_subnets"] = [str(n) for n in node.pod_subnets]
                entry["pod_gateways"] = [str(g) for g in node.pod_gateways]
                entry["nameserver"] = str(node.nameserver)
            entry["routes"] = [{"destination": s(r.destination), "gateway": s(r.gateway)} for r in node.routes]
            nodes[node.name] = entry
        return {
            "mode": self.mode,
            "dns_service_ip": str(self.dns_service_ip),
            "api_advertise_address": str(self.api_advertise_address),
            "kubeadm_api_version": (f"kubeadm.k8s.io/{self.kubeadm_api_version}" if self.kubeadm_api_version else None),
            "nodes": nodes,
        }


def _pod_targets(others: list[NodePlan]) -> list[tuple[str, IPNet, IPAddr, str]]:
    """(node name, pod subnet, that node's management IP of the subnet's family, purpose) of every cluster node."""
    targets = []
    for other in others:
        for subnet in other.pod_subnets:
            gateway = other.management_of(subnet.version)
            if gateway is not None:
                targets.append((other.name, subnet, gateway.ip, f"pod subnet of {other.name}"))
    return targets


def _pod_routes(node: NodePlan, targets: list[tuple[str, IPNet, IPAddr, str]]) -> list[Route]:
    """Routes to every other cluster node's pod subnet(s), via its management IP of that family."""
    dev = node.interface
    return [Route(subnet, gw, purpose, "up", dev) for name, subnet, gw, purpose in targets if name != node.name]


def _egress_routes(config: Config, node: NodePlan, dns64_node: NodePlan | None,
                   nat64_node: NodePlan | None) -> list[Route]:
    """IPv6 mode: the routes to the DNS64 prefix (the NAT64 gateway) and to the DNS64 server.

    Routes without a device lead to this node's own servers on the support network; the others
    leave through the management interface.
    """
    egress = config.egress
    if egress is None:
        return []
    routes: list[Route] = []
    dev, prefix = node.interface, egress.prefix
    if node.is_nat64 and egress.nat64 is not None:
        nat64 = egress.nat64
        routes += [
            Route(prefix, nat64.ip, "DNS64 prefix to NAT64", "prepare"),
            Route(nat64.v4_cidr, nat64.v4_ip, "NAT64 pool", "prepare"),
        ]
    elif node.is_cluster_node or node.is_dns64:
        if nat64_node is not None:
            via = nat64_node.management_of(6)
            if via is not None:
                routes.append(Route(prefix, via.ip, f"DNS64 prefix via {nat64_node.name}", "prepare", dev))
        elif egress.site_gateway is not None:
            routes.append(Route(prefix, egress.site_gateway, "DNS64 prefix via the site's NAT64", "prepare", dev))
    resolver = dns64_node.management_of(6) if dns64_node is not None and dns64_node is not node else None
    if resolver is not None and dns64_node is not None and egress.dns64 is not None:
        if node.is_nat64:
            # The NAT64 node holds the support network too: the DNS64 server's own address, more specific,
            # leads to its node, so that translated replies and this node's own queries reach it.
            server = ip_network(egress.dns64.ip)
            routes.append(Route(server, resolver.ip, f"DNS64 server on {dns64_node.name}", "prepare", dev))
        elif node.is_cluster_node and egress.support is not None:
            routes.append(Route(egress.support.cidr, resolver.ip, f"support network via {dns64_node.name}",
                                "prepare", dev))
    elif egress.site_dns64 is not None and egress.site_dns64.via is not None and node.is_cluster_node:
        server = ip_network(egress.site_dns64.server)
        routes.append(Route(server, egress.site_dns64.via, "the site's DNS64 server", "prepare", dev))
    return routes


def build_plan(config: Config, *, routes_of: str | None = None) -> Plan:
    """Derive the address plan of a validated config.

    Routes grow with the square of the node count; `routes_of` names the only node whose
    routes are computed (a node command needs no other's).
    """
    service_family = config.service[0].version
    bare: list[NodePlan] = []
    for spec in config.nodes.values():
        management = tuple(management_address(c, spec.id) for c in config.mgmt)
        cluster = spec.is_cluster_node
        subnets = tuple(pod_subnet(c, spec.id) for c in config.pod) if cluster else ()
        nameserver: IPAddr | None = None
        if cluster:
            if config.egress is not None:
                nameserver = config.egress.resolver
            else:
                own = next(a for a in management if a.version == service_family)
                nameserver = own.ip
        bare.append(NodePlan(name=spec.name, interface=spec.interface, roles=spec.roles, id=spec.id,
                             management=management, pod_subnets=subnets, nameserver=nameserver))
    targets = _pod_targets([n for n in bare if n.is_cluster_node])
    nat64_node = next((n for n in bare if n.is_nat64), None)
    dns64_node = next((n for n in bare if n.is_dns64), None)
    nodes: dict[str, NodePlan] = {}
    for node in bare:
        if routes_of is not None and node.name != routes_of:
            nodes[node.name] = node  # only the acting node's routes are needed
            continue
        routes = _egress_routes(config, node, dns64_node, nat64_node)
        if node.is_cluster_node:
            routes += _pod_routes(node, targets)
        nodes[node.name] = dataclasses.replace(node, routes=tuple(routes))
    master = next(n for n in nodes.values() if n.is_master)
    advertise = master.management_of(service_family)
    assert advertise is not None  # validation guarantees a management CIDR per service family
    egress = config.egress
    forwarder = None
    if egress is not None and egress.dns64 is not None:
        forwarder = embed_ipv4(egress.prefix, egress.dns64.remote_server)
    version = config.general.kubernetes_version
    return Plan(
        mode=config.mode,
        dns_service_ip=dns_service_ip(config.service[0]),
        api_advertise_address=advertise.ip,
        kubeadm_api_version=kubeadm_api_for(version) if version else None,
        nodes=nodes,
        dns64_forwarder=forwarder,
    )
