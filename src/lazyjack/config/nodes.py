"""A node of the topology: its name, interface, roles (opmodes) and ID, and the one place the role checks are written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROLES = ("master", "minion", "dns64", "nat64")


class Roles:
    """The role checks of a node (topology entry, plan, lab node), from its `roles`."""

    roles: Sequence[str]

    @property
    def is_master(self) -> bool:
        return "master" in self.roles

    @property
    def is_cluster_node(self) -> bool:
        """A master or a minion: a node Kubernetes runs on (a node may be only `dns64 nat64`)."""
        return "master" in self.roles or "minion" in self.roles

    @property
    def is_nat64(self) -> bool:
        """The NAT64 node (it may be the DNS64 node too)."""
        return "nat64" in self.roles

    @property
    def is_dns64(self) -> bool:
        """The DNS64 node (it may be the NAT64 node too)."""
        return "dns64" in self.roles


@dataclass(frozen=True)
class NodeSpec(Roles):
    """One entry of `topology`."""

    name: str
    interface: str
    roles: tuple[str, ...]
    id: int
    #: Where `lazyjack cluster` reaches the node over SSH (default: its name).
    ssh_host: str | None = None
