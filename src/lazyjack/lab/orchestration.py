"""Which lazyjack command runs on which lab nodes, in which order: `lazyjack cluster`'s orchestrator, run here.

`lab up` is `cluster up` on the lab's nodes, `lab down` is `cluster clean`: the same phases,
pre-flight and per-node results as on real hosts. Only the transport differs: the nodes'
network namespaces (`nsenter`), or, for a lab made with `--ssh`, the sshd in every node
(`lazyjack.lab.sshd`), reached from this machine with the lab's key and pinned known_hosts.
Each node's lazyjack acts on its `--root` sandbox and reads the config the run pushed to it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lazyjack
from lazyjack.cluster.orchestrate import ClusterFailed, ClusterInterrupted, ClusterRun, Endpoint, Options, Outcome
from lazyjack.cluster.phases import Phase
from lazyjack.cluster.report import result_table
from lazyjack.cluster.ssh import SshTransport
from lazyjack.cluster.transport import NamespaceTransport, Transport
from lazyjack.config import load_config
from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.netns import NETNS_DIR, netns_exists
from lazyjack.lab import LabError, Report, Tools, snapshot
from lazyjack.lab.progress import Progress
from lazyjack.lab.state import LabState, NodeState

#: The phases of `up` the lab skips unless told otherwise, with the program each needs.
OPTIONAL_PHASES = {"kubelet": "kubelet", "kubeadm": "kubeadm"}
#: Lines of a node's output shown for --verbose (all of it is in the node's log).
VERBOSE_LINES = 200


def node_order(plan: Plan) -> list[str]:
    """Nodes by ID: the topology's natural order."""
    return [n.name for n in sorted(plan.nodes.values(), key=lambda n: n.id)]


def lazyjack_env() -> dict[str, str]:
    """This very lazyjack first on PYTHONPATH; no invoking user (no kubeconfig to copy in a lab)."""
    package_parent = str(Path(lazyjack.__file__).resolve().parents[1])
    return {"PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH", "")])),
            "SUDO_USER": ""}


def endpoints(state: LabState, nodes: list[NodeState], *, ssh: bool) -> dict[str, Endpoint]:
    """How the cluster run reaches each node: its namespace, or the lab's SSH."""
    transport: Transport
    if ssh:
        transport = SshTransport({n.name: n.name for n in nodes}, user="root", ssh_config=state.ssh_config)
        program: tuple[str, ...] = (str(state.remote_lazyjack),)
    else:
        transport = NamespaceTransport({n.name: str(NETNS_DIR / n.netns) for n in nodes},
                                       env=lazyjack_env())
        program = (sys.executable, "-m", "lazyjack")
    return {n.name: Endpoint(transport, program, str(n.config), ("--root", str(n.root))) for n in nodes}


def run_cluster(state: LabState, action: str, nodes: list[NodeState], report: Report, *, verbose: bool,
                before: Callable[[Phase], None] | None = None, ssh: bool = False) -> Outcome:
    """`cluster ACTION` on the lab's nodes with the lab's config; LabError with the table when it fails."""
    skip = ["--skip-phases", ",".join(state.skip_phases)] if state.skip_phases else []
    runs = Path(state.directory) / "logs"
    log_dir = runs / f"{len(list(runs.iterdir())) + 1 if runs.is_dir() else 1:02d}-{action}"
    log_dir.mkdir(parents=True, mode=0o700)
    opts = Options(action, state.lab_config, log_dir, parallel=max(1, len(nodes)),
                   extra={"up": skip, "down": skip} if skip else {}, require_interfaces=action != "clean")
    config = load_config(state.lab_config, require_token=False)

    def recorded(phase: Phase) -> None:
        if phase.command in ("init", "prepare", "up", "down", "clean"):
            for name in phase.nodes:
                state.nodes[name].ran.append(phase.command)
            state.save()
        if before is not None:
            before(phase)

    run = ClusterRun(config, endpoints(state, nodes, ssh=ssh), opts, report=report, before=recorded)
    try:
        outcome = run.run()
    except ClusterFailed as exc:
        for line in result_table(exc.outcome):
            report(line)
        raise LabError(f"{exc}; the output is above and in {log_dir}") from None
    except ClusterInterrupted as exc:
        # The node commands were stopped and rolled back; the lab goes on as for the signal itself
        # (Ctrl-C or SIGTERM: its exit code says which).
        for line in result_table(exc.outcome):
            report(line)
        raise exc.cause from None
    finally:
        for end in {id(e.transport): e.transport for e in run.endpoints.values()}.values():
            end.close()
    if verbose:
        for name in outcome.nodes:
            report(f"   {name}'s output ({log_dir / f'{name}.log'}):")
            for line in (log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-VERBOSE_LINES:]:
                report(f"     {line}")
    return outcome


def bring_up(tools: Tools, state: LabState, config: Config, plan: Plan, order: list[str], progress: Progress, *,
             auto_skip: bool, verbose: bool) -> None:
    """`cluster up` on every node: init, the config pushed, a snapshot of every node, prepare, up."""
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
        progress.skip(f"init on {plan.master.name}", "not needed (general.insecure: true)")
    taken = False

    def snapshot_before_prepare(phase: Phase) -> None:
        # After init and the config hand-out, which clean does not undo; before anything it does.
        nonlocal taken
        if phase.command == "prepare" and not taken:
            taken = True
            with progress.step("Taking a snapshot of every node (compared at lab down)"):
                for name in order:
                    snapshot.keep(tools.proc, state.nodes[name])

    how = "over SSH" if state.ssh else "in the nodes' namespaces"
    progress.report(f"Running `lazyjack cluster up` {how} ...")
    start = time.monotonic()
    run_cluster(state, "up", [state.nodes[n] for n in order], progress.report, verbose=verbose,
                before=snapshot_before_prepare, ssh=state.ssh)
    progress.report(f" ✓ cluster up on {len(order)} node(s) ({time.monotonic() - start:.1f}s)")


def undo_nodes(state: LabState, report: Report, *, verbose: bool) -> bool:
    """`cluster clean` on the nodes whose namespace exists: down where up, then clean; True if it succeeded."""
    present = [n for n in state.nodes.values() if netns_exists(n.netns)]
    if not present:
        return True
    try:
        run_cluster(state, "clean", present, report, verbose=verbose)
    except LabError as exc:
        report(f"     {exc}")
        return False
    return True
