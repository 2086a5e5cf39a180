"""The lab commands as the CLI calls them: up, check and down (each a short flow over the lab's parts,
shown as status lines ending ✓ or ✗), status and exec.

Every function reports through a callback and returns; the CLI prints. `up` records what it is
about to make in the state file before making it, so `down` can remove a lab whatever became of it.
One lab command runs at a time on a machine (`lab_lock`).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from lazyjack.config.model import Config
from lazyjack.config.plan import build_plan
from lazyjack.errors import HostError, describe_failure
from lazyjack.host.process import describe_stuck, stop_pids
from lazyjack.lab import LabError, Report, Tools, checks, cni, orchestration, probes, snapshot, status, topology
from lazyjack.lab.build import build
from lazyjack.lab.checks import Check
from lazyjack.lab.preflight import preflight, require_root
from lazyjack.lab.progress import Progress
from lazyjack.lab.shell import exec_argv
from lazyjack.lab.state import (
    DELETING,
    EXAMPLE,
    FAILED,
    INTERRUPTED,
    STATE_BASE,
    UP,
    LabState,
    lab_dir,
    lab_lock,
    lab_name_for,
    load_lab,
)
from lazyjack.lab.status import lab_status

__all__ = ["exec_argv", "lab_check", "lab_down", "lab_reboot", "lab_status", "lab_up"]


def _load_config(path: Path, *, require_token: bool = False) -> Config:
    from lazyjack.config import load_config

    return load_config(path, require_token=require_token)


# --- lab up -----------------------------------------------------------------------------


def lab_up(tools: Tools, *, config_path: Path | None, name: str | None, report: Report,
           skip_phases: list[str] | None = None, verbose: bool = False, ssh: bool = False,
           base: Path = STATE_BASE) -> LabState:
    """Build the lab of a config and bring it up with the real lazyjack commands (over SSH with `ssh`)."""
    require_root("up")
    with lab_lock(base, wait=report):
        return _lab_up(tools, config_path=config_path, name=name, report=report, skip_phases=skip_phases,
                       verbose=verbose, ssh=ssh, base=base)


def _lab_up(tools: Tools, *, config_path: Path | None, name: str | None, report: Report,
            skip_phases: list[str] | None, verbose: bool, ssh: bool, base: Path) -> LabState:
    source = (config_path or EXAMPLE).resolve()
    config = _load_config(source)
    plan = build_plan(config)
    name = name or lab_name_for(source)
    directory = lab_dir(name, base=base)
    auto_skip = skip_phases is None
    # Always, unless asked otherwise: the namespaces isolate the network, not /etc/kubernetes or
    # the kubelet service, so a real kubeadm would act on this machine itself, once per node.
    skip = list(orchestration.OPTIONAL_PHASES) if auto_skip else list(skip_phases or [])
    problems = preflight(config, name, directory, skip, ssh=ssh)
    if problems:
        raise LabError("lab up stopped before making anything:\n" + "\n".join(f"  - {p}" for p in problems))
    progress = Progress(report)
    order = orchestration.node_order(plan)
    report(f"Creating lab {name!r} from {source} ({config.mode}, plugin {config.plugin}, {len(order)} nodes) ...")
    directory.mkdir(parents=True, mode=0o700)
    state = LabState(name=name, directory=str(directory), source_config=str(source), mode=config.mode,
                     skip_phases=skip, ssh=ssh)
    state.save()
    started = time.monotonic()
    try:
        build(tools, state, config, plan, order, progress)
        orchestration.bring_up(tools, state, config, plan, order, progress, auto_skip=auto_skip, verbose=verbose)
    except KeyboardInterrupt:
        state.phase, state.detail = INTERRUPTED, "interrupted during lab up"
        state.save()
        report(f"lab up interrupted: the lab is left as it is; remove it with `lazyjack lab down --name {name}`")
        raise
    except BaseException as exc:
        what = describe_failure(exc)
        state.phase, state.detail = FAILED, what.splitlines()[0] if what else type(exc).__name__
        state.save()
        if isinstance(exc, Exception):
            raise LabError(f"lab up failed: {what}\nThe lab is left as it is for a look (`lazyjack lab status`, "
                           f"`lazyjack lab exec NODE -- CMD`); remove it with `lazyjack lab down --name {name}`") from exc
        raise
    state.phase, state.detail = UP, ""
    state.save()
    for line in status.summary(state, config, plan, order, time.monotonic() - started):
        report(line)
    return state


# --- lab check --------------------------------------------------------------------------


def lab_check(tools: Tools, *, name: str, report: Report, base: Path = STATE_BASE) -> list[Check]:
    """Test pods on every cluster node, then reachability, DNS64 and NAT64 checks; returns them all."""
    require_root("check")
    with lab_lock(base, wait=report):
        return _lab_check(tools, name=name, report=report, base=base)


def _lab_check(tools: Tools, *, name: str, report: Report, base: Path) -> list[Check]:
    state = load_lab(name, base=base)
    if state.phase != UP:
        raise LabError(f"lab {name!r} is {state.phase}{': ' + state.detail if state.detail else ''}; "
                       f"check needs a lab that is up (lazyjack lab down --name {name}, then lab up)")
    master = next(n for n in state.nodes.values() if n.is_master)
    config = _load_config(master.config)
    plan = build_plan(config)
    progress = Progress(report)
    pods: dict[str, list[str]] = {}
    broken: list[Check] = []
    for node in state.nodes.values():
        if node.is_cluster_node:
            pod = topology.pod_netns(node.name)
            try:
                with progress.step(f"Test pod on {node.name} ({pod})") as notes:
                    result = probes.ensure_pod(tools, state, node)
                    pods[node.name] = cni.pod_addresses(result)
                    notes.append(" ".join(pods[node.name]) or "no address")
            except LabError as exc:
                # The other checks still say something: run them, and count this one as failed.
                report(f"     {exc}")
                broken.append(Check("test pod", node.name, pod, False, str(exc)))
    with progress.step("Running the checks") as notes:
        found = broken + checks.run_all(probes.probes(tools.proc, state, config, plan, pods))
        failed = sum(not c.ok for c in found)
        notes.append(f"{len(found) - failed} of {len(found)} passed")
    return found


# --- lab reboot -------------------------------------------------------------------------


def lab_reboot(tools: Tools, *, name: str, node: str, report: Report, base: Path = STATE_BASE) -> bool:
    """Simulate a reboot of one node: power off (processes, addresses, routes, sysctls), then its boot."""
    from lazyjack.lab.reboot import reboot

    require_root("reboot")
    with lab_lock(base, wait=report):
        return reboot(tools, load_lab(name, base=base), node, report)


# --- lab down ---------------------------------------------------------------------------


def lab_down(tools: Tools, *, name: str, report: Report, verbose: bool = False, base: Path = STATE_BASE) -> bool:
    """Undo a lab, also a half-made one; True if every node came back to its snapshot and nothing failed.

    Whatever fails, every namespace, process and file of the lab is removed at the end.
    """
    require_root("down")
    with lab_lock(base, wait=report):
        return _lab_down(tools, name=name, report=report, verbose=verbose, base=base)


def _lab_down(tools: Tools, *, name: str, report: Report, verbose: bool, base: Path) -> bool:
    directory = lab_dir(name, base=base)
    if not directory.is_dir():
        report(f"There is no lab named {name!r}: nothing to remove.")
        return True
    state = LabState.load(directory)
    progress = Progress(report)
    report(f"Deleting lab {name!r} ({state.phase}) ...")
    state.phase = DELETING
    state.save()
    ok = True
    for node in state.nodes.values():
        if node.pod_netns:
            try:
                with progress.step(f"Deleting the test pod of {node.name} (CNI DEL)"):
                    probes.remove_pod(tools, node)
                    state.save()
            except Exception as exc:  # whatever it was, the rest of the lab must still go
                report(f"     {describe_failure(exc)}")
                ok = False
    ok = orchestration.undo_nodes(state, report, verbose=verbose) and ok
    ok = snapshot.back_as_before(tools.proc, state, report) and ok
    with progress.step("Removing the namespaces, processes and files of the lab") as notes:
        stopped = 0
        # Each on its own: one that does not go (a process stuck in the kernel) must not keep the rest.
        for daemon in reversed(state.daemons):
            try:
                stopped += tools.daemons.stop(Path(daemon.pid_file), program=daemon.program)
            except HostError as exc:
                report(f"     {exc}")
                ok = False
        for ns in reversed(state.namespaces):
            try:
                stopped += len(topology.delete_netns(tools.proc, ns))
            except HostError as exc:
                report(f"     {exc}")
                ok = False
        strays = topology.processes_using(directory)
        if strays:
            stuck = stop_pids(strays, grace=topology.STOP_GRACE)
            report(f"     stopped {len(strays)} process(es) outside the lab's namespaces still using {directory}: "
                   + ", ".join(f"{pid}" for pid in strays)
                   + (f"; these did not stop: {describe_stuck(stuck)}" if stuck else ""))
            ok = False
        notes.append(f"{len(state.namespaces)} namespace(s), {stopped + len(strays)} process(es)")
        shutil.rmtree(directory)
    report(f"Lab {name!r} is gone{'' if ok else ', with the problems above'}.")
    return ok
