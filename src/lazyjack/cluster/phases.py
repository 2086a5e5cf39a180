"""The phase plan of a cluster run: which node runs which command, in which order, how many at once.

Pure data from the topology and what pre-flight found, so that the order is tested as data:
kubespray's and k0sctl's order (the DNS64/NAT64 node and the control plane before the workers,
the workers in parallel), and the reverse to take the cluster down.
"""

from __future__ import annotations

from dataclasses import dataclass

from lazyjack.config.nodes import Roles

ACTIONS = ("prepare", "up", "down", "clean")
#: What `cluster status` and pre-flight read from a node's journal.
NOTHING, PREPARED, UP = "nothing", "prepared", "up"
#: Phases that are not node commands: the orchestrator acts on them itself.
PREFLIGHT, PUSH = "pre-flight", "push config"


@dataclass(frozen=True)
class NodeInfo(Roles):
    """What the plan needs to know about a node."""

    name: str
    roles: tuple[str, ...]

    @property
    def is_dns64_nat64(self) -> bool:
        """Serves DNS64 or NAT64 to the others: prepared first, cleaned last."""
        return "dns64" in self.roles or "nat64" in self.roles


@dataclass(frozen=True)
class Phase:
    """One step of the run: `command` on `nodes`, all of them at once (bounded by --parallel)."""

    command: str
    nodes: tuple[str, ...]
    why: str = ""

    @property
    def title(self) -> str:
        return f"{self.command}{f' ({self.why})' if self.why else ''}"


def _phase(command: str, nodes: list[NodeInfo], why: str = "") -> list[Phase]:
    return [Phase(command, tuple(n.name for n in nodes), why)] if nodes else []


def prepare_phases(nodes: list[NodeInfo]) -> list[Phase]:
    """The DNS64/NAT64 node first (the others' resolvers point at it), then the master, then the rest."""
    first = [n for n in nodes if n.is_dns64_nat64]
    master = [n for n in nodes if n.is_master and n not in first]
    rest = [n for n in nodes if n not in first and n not in master]
    return (_phase("prepare", first, "DNS64/NAT64") + _phase("prepare", master, "master")
            + _phase("prepare", rest, "the others"))


def up_phases(nodes: list[NodeInfo]) -> list[Phase]:
    """The master (kubeadm init), then every other cluster node at once (their joins overlap)."""
    master = [n for n in nodes if n.is_master]
    minions = [n for n in nodes if n.is_cluster_node and not n.is_master]
    return _phase("up", master, "master") + _phase("up", minions, "minions")


def down_phases(nodes: list[NodeInfo]) -> list[Phase]:
    """The minions at once, then the master: the reverse of up."""
    minions = [n for n in nodes if n.is_cluster_node and not n.is_master]
    master = [n for n in nodes if n.is_master]
    return _phase("down", minions, "minions") + _phase("down", master, "master")


def clean_phases(nodes: list[NodeInfo]) -> list[Phase]:
    """Every node at once, the DNS64/NAT64 node last (the others use it until they are clean)."""
    last = [n for n in nodes if n.is_dns64_nat64]
    return (_phase("clean", [n for n in nodes if n not in last], "all but DNS64/NAT64")
            + _phase("clean", last, "DNS64/NAT64"))


def plan_run(action: str, nodes: list[NodeInfo], *, needs_init: bool = False,
             applied: dict[str, str] | None = None) -> list[Phase]:
    """The phases of `cluster ACTION` after pre-flight, in order.

    `needs_init`: the config is secure and has no token yet, so `init` runs on the master first
    (it needs the config there: the push that follows hands the updated one to everyone).
    `applied`: each node's state from its journal (nothing/prepared/up); `clean` takes down only
    the nodes that are up.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown cluster action {action!r}; known: {', '.join(ACTIONS)}")
    everyone = list(nodes)
    phases: list[Phase] = []
    if needs_init and action in ("prepare", "up"):
        phases += _phase("init", [n for n in everyone if n.is_master], "token and CA")
    # Every node runs with the same config: also down and clean, whose journal says what to undo.
    phases.append(Phase(PUSH, tuple(n.name for n in everyone)))
    if action in ("prepare", "up"):
        phases += prepare_phases(everyone)
        if action == "up":
            phases += up_phases(everyone)
    elif action == "down":
        phases += down_phases(everyone)
    else:
        states = applied or {}
        phases += down_phases([n for n in everyone if states.get(n.name) == UP])
        phases += clean_phases(everyone)
    return phases
