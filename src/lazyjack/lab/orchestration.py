"""Which lazyjack command runs on which lab nodes, in which order: the one place the lab decides it, and runs them.

`lab up` does what a person does on real hosts: init on the master, its config (holding the
token init wrote) handed to the other nodes, prepare on the DNS64/NAT64 node before the rest,
up on the master before the minions. `lab down` undoes it: down on the minions, then on the
master; clean on every node, the DNS64/NAT64 node last. The nodes of a group run at once
(`lazyjack.lab.nodes.run_on`); a group starts once every run of the one before has ended.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.netns import netns_exists
from lazyjack.lab import LabError, Report, Tools, sandbox, snapshot
from lazyjack.lab.nodes import NodeRunResult, run_on
from lazyjack.lab.progress import Progress
from lazyjack.lab.state import LabState

#: The phases of `up` the lab skips unless told otherwise, with the program each needs.
OPTIONAL_PHASES = {"kubelet": "kubelet", "kubeadm": "kubeadm"}
#: Lines of a failed run's output shown (all of it is in the node's log).
LOG_TAIL = 30


@dataclass(frozen=True)
class Group:
    """One lazyjack command, run on some nodes at once."""

    command: str
    nodes: list[str]
    args: tuple[str, ...] = ()


def node_order(plan: Plan) -> list[str]:
    """Nodes by ID: the topology's natural order."""
    return [n.name for n in sorted(plan.nodes.values(), key=lambda n: n.id)]


def _skip_args(skip: list[str]) -> tuple[str, ...]:
    return ("--skip-phases", ",".join(skip)) if skip else ()


def prepare_and_up(plan: Plan, order: list[str], skip: list[str]) -> list[Group]:
    """After init: prepare (the DNS64/NAT64 node first), then up (the master first)."""
    nat64 = plan.nat64_node
    first = [nat64.name] if nat64 is not None else []
    master = plan.master.name
    minions = [n for n in order if n != master and plan.nodes[n].is_cluster_node]
    return [
        Group("prepare", first),
        Group("prepare", [n for n in order if n not in first]),
        Group("up", [master], _skip_args(skip)),
        Group("up", minions, _skip_args(skip)),
    ]


def down_and_clean(state: LabState) -> list[Group]:
    """down (minions, then the master), then clean (the DNS64/NAT64 node last), where they ran."""
    present = [n for n in state.nodes.values() if netns_exists(n.netns)]
    ups = [n for n in present if "up" in n.ran]
    preps = [n for n in present if "prepare" in n.ran]
    return [
        Group("down", [n.name for n in ups if not n.is_master], _skip_args(state.skip_phases)),
        Group("down", [n.name for n in ups if n.is_master], _skip_args(state.skip_phases)),
        Group("clean", [n.name for n in preps if not n.is_nat64]),
        Group("clean", [n.name for n in preps if n.is_nat64]),
    ]


def run(state: LabState, group: Group, report: Report, *, verbose: bool) -> list[NodeRunResult]:
    """Run a group, recorded in the state first; one status line per node; returns the failed runs."""
    if not group.nodes:
        return []
    nodes = [state.nodes[n] for n in group.nodes]
    for node in nodes:
        node.ran.append(group.command)
    state.save()
    failed = []
    for r in run_on(nodes, group.command, *group.args):
        mark = "✓" if r.ok else "✗"
        how = "" if r.ok else (" (timed out)" if r.returncode is None else f" (exit {r.returncode})")
        report(f" {mark} {r.command} on {r.node}{how} ({r.seconds:.1f}s)")
        if verbose or not r.ok:
            lines = r.output().rstrip().splitlines()
            for line in lines if verbose else lines[-LOG_TAIL:]:
                report(f"     {line}")
        if not r.ok:
            failed.append(r)
    return failed


def require(failed: list[NodeRunResult]) -> None:
    """Stop the lab command when a run failed, naming the runs and their logs."""
    if failed:
        which = ", ".join(f"{r.command} on {r.node}" for r in failed)
        logs = ", ".join(str(r.log) for r in failed)
        raise LabError(f"{which} failed; the output is above and in {logs}")


def bring_up(tools: Tools, state: LabState, config: Config, plan: Plan, order: list[str], progress: Progress, *,
             auto_skip: bool, verbose: bool) -> None:
    """init, config hand-out, snapshot, prepare, up: in the order a person would follow on real hosts."""
    report = progress.report
    master = plan.master.name
    skip = state.skip_phases
    if skip:
        installed = [p for p in skip if shutil.which(OPTIONAL_PHASES.get(p, p)) is not None]
        if not auto_skip:
            why = "asked for"
        elif installed:
            why = "skipped: a lab's namespaces do not isolate /etc/kubernetes or the kubelet service"
        else:
            why = "not installed"
        progress.skip("Kubernetes", f"{' and '.join(skip)} {why}: up runs with --skip-phases {','.join(skip)}")
    if config.general.insecure:
        progress.skip(f"init on {master}", "not needed (general.insecure: true)")
    else:
        require(run(state, Group("init", [master]), report, verbose=verbose))
    others = [n for n in order if n != master]
    with progress.step(f"Handing {master}'s config to {', '.join(others) or 'no other node'}"):
        sandbox.hand_out(state.nodes[master].config, [state.nodes[n].config for n in others])
    with progress.step("Taking a snapshot of every node (compared at lab down)"):
        for node_name in order:
            snapshot.keep(tools.proc, state.nodes[node_name])
    for group in prepare_and_up(plan, order, skip):
        require(run(state, group, report, verbose=verbose))


def undo_nodes(state: LabState, report: Report, *, verbose: bool) -> bool:
    """down and clean on every node where up and prepare ran; True if every run succeeded."""
    ok = True
    for group in down_and_clean(state):
        ok = not run(state, group, report, verbose=verbose) and ok
    return ok
