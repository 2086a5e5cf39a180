"""lab up, check, down, status and exec: the ordered actions, each shown as a status line ending ✓ or ✗.

Every function reports through a callback and returns; the CLI prints. `up` records what it is
about to make in the state file before making it, so `down` can remove a lab whatever became of it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from pathlib import Path

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan, build_plan, embed_ipv4
from lazyjack.errors import describe_failure
from lazyjack.host.daemon import Daemons, DaemonsAPI
from lazyjack.host.process import Runner, RunnerAPI
from lazyjack.lab import LabError, Report, checks, cni, internet, snapshot, topology
from lazyjack.lab.checks import Check, Probe
from lazyjack.lab.nodes import NodeRunResult, run_on
from lazyjack.lab.state import (
    CREATING,
    DELETING,
    FAILED,
    INTERRUPTED,
    STATE_BASE,
    UP,
    Daemon,
    LabState,
    NodeState,
    lab_dir,
    lab_lock,
    lab_name_for,
    lab_names,
)
from lazyjack.steps.support import support_netns

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ipv6.yaml"
#: The phases of `up` the lab skips when their program is not installed (here: always).
OPTIONAL_PHASES = {"kubelet": "kubelet", "kubeadm": "kubeadm"}
UPLINK, UPLINK_OTHER = "eth0", "uplink0"
BASE_MTU = 1500
HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "# lazyjack lab: the node's resolver before prepare\nsearch lab.example\nnameserver {server}\n"
DEFAULT_UPSTREAM = "203.0.113.53"
LOG_TAIL = 30


@dataclass
class Tools:
    """The lab's side effects: programs and daemons."""

    proc: RunnerAPI = field(default_factory=Runner)
    daemons: DaemonsAPI = field(default_factory=Daemons)


class Progress:
    """kind-style status lines: ` ✓ title (1.2s)` or ` ✗ title`, notes, and skips."""

    def __init__(self, report: Report) -> None:
        self.report = report

    @contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        """Yields a list: what the action appends is shown after the title."""
        start = time.monotonic()
        notes: list[str] = []
        try:
            yield notes
        except BaseException:
            self.report(f" ✗ {title}")
            raise
        note = f": {'; '.join(notes)}" if notes else ""
        self.report(f" ✓ {title}{note} ({time.monotonic() - start:.1f}s)")

    def skip(self, title: str, why: str) -> None:
        self.report(f" · {title}: {why}")


# --- finding labs and configs -----------------------------------------------------------


def resolve_lab(name: str | None, config: Path | None, *, base: Path = STATE_BASE) -> str:
    """The lab meant: by --name, else by the config's name, else the only lab there is."""
    if name:
        return name
    if config is not None:
        return lab_name_for(config)
    labs = lab_names(base=base)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        return lab_name_for(EXAMPLE)
    raise LabError(f"there are {len(labs)} labs ({', '.join(labs)}); say which with --name NAME")


def _require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"lazyjack lab {command} makes and removes network namespaces: run it as root")


def _load(name: str, *, base: Path) -> LabState:
    directory = lab_dir(name, base=base)
    if not directory.is_dir():
        known = ", ".join(lab_names(base=base)) or "none"
        raise LabError(f"there is no lab named {name!r} (labs: {known}); make one with `lazyjack lab up`")
    return LabState.load(directory)


def _load_config(path: Path, *, require_token: bool = False) -> Config:
    from lazyjack.config import load_config

    return load_config(path, require_token=require_token)


# --- lab up -----------------------------------------------------------------------------


def _order(plan: Plan) -> list[str]:
    """Nodes by ID: the topology's natural order."""
    return [n.name for n in sorted(plan.nodes.values(), key=lambda n: n.id)]


def _namespaces_of(config: Config, name: str) -> list[str]:
    names = [topology.switch_netns(name)]
    for node in config.nodes:
        names += [topology.node_netns(node), topology.pod_netns(node)]
    if config.mode == "ipv6":
        names.append(topology.internet_netns(name))
    return names


def _preflight(config: Config, name: str, directory: Path, skip: list[str]) -> list[str]:
    problems = []
    programs = ["ip", "nsenter", "sysctl", "ping", "iptables", "iptables-save"]
    if 6 in config.families:
        programs += ["ip6tables", "ip6tables-save"]
    if config.mode == "ipv6":
        programs += ["named", "tayga", "dig", "curl"]
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        problems.append(f"not installed: {', '.join(missing)} (apt-get install iproute2 util-linux procps "
                        "iputils-ping iptables bind9 bind9-dnsutils tayga curl)")
    if directory.exists():
        problems.append(f"lab {name!r} exists ({directory}); remove it with `lazyjack lab down --name {name}`, "
                        "or give this one another --name")
    wanted = _namespaces_of(config, name)
    if len(set(wanted)) != len(wanted):
        problems.append(f"the node names give clashing namespace names: {', '.join(sorted(wanted))}")
    present = [ns for ns in wanted if topology.netns_exists(ns)]
    if present:
        owners = [lab for lab in lab_names(base=directory.parent)
                  if set(present) & set(LabState.load(directory.parent / lab).namespaces)]
        whose = f" (lab {', '.join(owners)}: `lazyjack lab down --name {owners[0]}`)" if owners else ""
        problems.append(f"network namespace(s) {', '.join(present)} exist already{whose}")
    unknown = sorted(set(skip) - {"cni", "routes", "kubelet", "kubeadm"})
    if unknown:
        problems.append(f"--skip-phases: unknown phase(s) {', '.join(unknown)}; known: cni, routes, kubelet, kubeadm")
    if "cni" in skip:
        problems.append("--skip-phases cni: the lab's test pods need the CNI config `up` writes")
    return problems


def _lab_config(config: Config, source: Path, target: Path) -> str:
    """Copy the config for the lab; in IPv6 mode an unset DNS64/NAT64 runtime becomes native."""
    shutil.copyfile(source, target)
    if config.mode == "ipv6" and "dns64_nat64_runtime" not in config.general.model_fields_set:
        from lazyjack.commands.init import update_config_file

        update_config_file(target, {"dns64-nat64-runtime": "native"})
        return "general.dns64-nat64-runtime: native (unset in the config)"
    return f"general.dns64-nat64-runtime: {config.general.dns64_nat64_runtime}" if config.mode == "ipv6" else ""


def _seed_sandbox(root: Path, node: str, upstream: str) -> None:
    for sub, mode in (("etc", 0o755), ("tmp", 0o1777), ("var/lib", 0o755)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).chmod(mode)
    (root / "etc" / "hosts").write_text(HOSTS.format(name=node))
    (root / "etc" / "resolv.conf").write_text(RESOLV.format(server=upstream))


def _check_runs(results: list[NodeRunResult], report: Report, *, verbose: bool) -> list[NodeRunResult]:
    """One status line per node run, in the given order; returns the failed ones."""
    failed = []
    for r in results:
        mark = "✓" if r.ok else "✗"
        how = "" if r.ok else (" (timed out)" if r.returncode is None else f" (exit {r.returncode})")
        report(f" {mark} {r.command} on {r.node}{how} ({r.seconds:.1f}s)")
        if verbose or not r.ok:
            lines = r.output().rstrip().splitlines()
            shown = lines if verbose else lines[-LOG_TAIL:]
            for line in shown:
                report(f"     {line}")
        if not r.ok:
            failed.append(r)
    return failed


def _run_group(state: LabState, names: list[str], command: str, extra: list[str], report: Report, *,
               verbose: bool) -> list[NodeRunResult]:
    if not names:
        return []
    nodes = [state.nodes[n] for n in names]
    for node in nodes:
        node.ran.append(command)
    state.save()
    return _check_runs(run_on(nodes, command, *extra), report, verbose=verbose)


def _require(failed: list[NodeRunResult]) -> None:
    if failed:
        which = ", ".join(f"{r.command} on {r.node}" for r in failed)
        logs = ", ".join(str(r.log) for r in failed)
        raise LabError(f"{which} failed; the output is above and in {logs}")


def lab_up(tools: Tools, *, config_path: Path | None, name: str | None, report: Report,
           skip_phases: list[str] | None = None, verbose: bool = False, base: Path = STATE_BASE) -> LabState:
    """Build the lab of a config and bring it up with the real lazyjack commands."""
    _require_root("up")
    with lab_lock(base, wait=report):
        return _lab_up(tools, config_path=config_path, name=name, report=report, skip_phases=skip_phases,
                       verbose=verbose, base=base)


def _lab_up(tools: Tools, *, config_path: Path | None, name: str | None, report: Report,
            skip_phases: list[str] | None, verbose: bool, base: Path) -> LabState:
    source = (config_path or EXAMPLE).resolve()
    config = _load_config(source)
    plan = build_plan(config)
    name = name or lab_name_for(source)
    directory = lab_dir(name, base=base)
    auto_skip = skip_phases is None
    # Always, unless asked otherwise: the namespaces isolate the network, not /etc/kubernetes or
    # the kubelet service, so a real kubeadm would act on this machine itself, once per node.
    skip = list(OPTIONAL_PHASES) if auto_skip else list(skip_phases or [])
    problems = _preflight(config, name, directory, skip)
    if problems:
        raise LabError("lab up stopped before making anything:\n" + "\n".join(f"  - {p}" for p in problems))
    progress = Progress(report)
    order = _order(plan)
    report(f"Creating lab {name!r} from {source} ({config.mode}, plugin {config.plugin}, {len(order)} nodes) ...")
    directory.mkdir(parents=True, mode=0o700)
    state = LabState(name=name, directory=str(directory), source_config=str(source), mode=config.mode,
                     skip_phases=skip)
    state.save()
    started = time.monotonic()
    try:
        _build(tools, state, config, plan, order, progress)
        _bring_up(tools, state, config, plan, order, progress, auto_skip=auto_skip, verbose=verbose)
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
    for line in _summary(state, config, plan, order, time.monotonic() - started):
        report(line)
    return state


def _build(tools: Tools, state: LabState, config: Config, plan: Plan, order: list[str], progress: Progress) -> None:
    """The lab's namespaces, links, sandboxes and simulated internet."""
    proc = tools.proc
    directory = Path(state.directory)
    with progress.step("Writing the lab's copy of the config") as notes:
        note = _lab_config(config, Path(state.source_config), state.lab_config)
        notes += [note] if note else []
    switch = topology.switch_netns(state.name)
    with progress.step(f"Creating the management switch ({switch})"):
        _new_netns(proc, state, switch, switch=True)
    mtu = max(BASE_MTU, config.mtu)
    nat64 = plan.nat64_node
    inet: internet.InternetPlan | None = None
    if config.mode == "ipv6" and nat64 is not None:
        inet = internet.plan_internet(
            config, netns=topology.internet_netns(state.name), node=nat64.name,
            node_netns=topology.node_netns(nat64.name),
            uplink=topology.free_name(nat64.interface, UPLINK, UPLINK_OTHER))
        state.internet = inet.to_state()
    upstream = str(inet.dns) if inet else DEFAULT_UPSTREAM
    for index, node_name in enumerate(order):
        node = plan.nodes[node_name]
        ns = topology.node_netns(node_name)
        with progress.step(f"Creating node {node_name} ({ns}, {node.interface})"):
            state.nodes[node_name] = entry = NodeState(
                name=node_name, netns=ns, interface=node.interface, roles=list(node.roles),
                directory=str(directory / "nodes" / node_name))
            _new_netns(proc, state, ns)
            if node.is_nat64:
                # lazyjack makes it at prepare; recorded so that down removes it whatever happened.
                state.add_namespace(support_netns(entry.root.resolve()))
            topology.plug_node(proc, switch=switch, port=f"p{index}", netns=ns, interface=node.interface, mtu=mtu)
            _seed_sandbox(entry.root, node_name, upstream)
            shutil.copyfile(state.lab_config, entry.config)
    if inet is not None:
        title = (f"Starting the simulated internet ({inet.netns}: DNS {inet.dns}, "
                 f"{internet.WWW} A {inet.www}, HTTP)")
        with progress.step(title):
            _new_netns(proc, state, inet.netns)
            internet.build_links(proc, inet)
            servers = directory / "internet"
            dns_pid = internet.start_dns(tools.daemons, inet, servers / "dns")
            state.daemons.append(Daemon("dns", "named", str(dns_pid)))
            state.save()
            web_pid = internet.start_web(tools.daemons, inet, servers / "web")
            state.daemons.append(Daemon("web", "http.server", str(web_pid)))
            state.save()
        progress.skip(f"Uplink of {inet.node}",
                      f"{inet.uplink} {internet.LINK_NODE}, default IPv4 route via {internet.LINK_INSIDE.ip}")


def _bring_up(tools: Tools, state: LabState, config: Config, plan: Plan, order: list[str], progress: Progress, *,
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
        _require(_run_group(state, [master], "init", [], report, verbose=verbose))
    others = [n for n in order if n != master]
    with progress.step(f"Handing {master}'s config to {', '.join(others) or 'no other node'}"):
        for node in others:
            shutil.copyfile(state.nodes[master].config, state.nodes[node].config)
    with progress.step("Taking a snapshot of every node (compared at lab down)"):
        for node_name in order:
            entry = state.nodes[node_name]
            taken = _snapshot(tools.proc, entry)
            entry.snapshot.write_text(json.dumps(taken, indent=1, sort_keys=True))
    nat64 = plan.nat64_node
    first = [nat64.name] if nat64 is not None else []
    _require(_run_group(state, first, "prepare", [], report, verbose=verbose))
    _require(_run_group(state, [n for n in order if n not in first], "prepare", [], report, verbose=verbose))
    extra = ["--skip-phases", ",".join(skip)] if skip else []
    minions = [n for n in order if n != master and plan.nodes[n].is_cluster_node]
    _require(_run_group(state, [master], "up", extra, report, verbose=verbose))
    _require(_run_group(state, minions, "up", extra, report, verbose=verbose))


def _new_netns(proc: RunnerAPI, state: LabState, name: str, *, switch: bool = False) -> None:
    """Create a namespace for the lab, recorded first; one that exists already is never taken over."""
    if topology.netns_exists(name):
        raise LabError(f"network namespace {name} exists already and is not this lab's; it is left alone")
    state.add_namespace(name)
    if switch:
        topology.add_switch(proc, name)
    else:
        topology.add_netns(proc, name)


def _snapshot(proc: RunnerAPI, node: NodeState) -> snapshot.Snapshot:
    extra = [support_netns(node.root.resolve())] if node.is_nat64 else []
    return snapshot.take(proc, netns=node.netns, interface=node.interface, root=node.root, extra_netns=extra)


def _summary(state: LabState, config: Config, plan: Plan, order: list[str], seconds: float) -> list[str]:
    lines = [f"Lab {state.name!r} is up ({seconds:.1f}s): {config.mode}, {len(order)} nodes."]
    rows = [("NODE", "NAMESPACE", "ROLES", "MANAGEMENT", "PODS")]
    for name in order:
        node = plan.nodes[name]
        rows.append((name, topology.node_netns(name), " ".join(node.roles),
                     " ".join(str(a) for a in node.management), " ".join(str(s) for s in node.pod_subnets) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    if state.internet:
        inet = internet.InternetPlan.from_state(state.internet)
        lines.append(f"  internet: {inet.netns}, DNS {inet.dns}, {internet.WWW} A {inet.www} (HTTP), "
                     f"linked to {inet.node} ({inet.uplink})")
    if state.skip_phases:
        lines.append(f"  Kubernetes itself is not started (skipped phases: {', '.join(state.skip_phases)}).")
    lines.append(f"Next: lazyjack lab check --name {state.name}; lazyjack lab exec {order[0]} -- ip addr; "
                 f"lazyjack lab down --name {state.name}")
    return lines


# --- lab check --------------------------------------------------------------------------


def lab_check(tools: Tools, *, name: str, report: Report, base: Path = STATE_BASE) -> list[Check]:
    """Test pods on every cluster node, then reachability, DNS64 and NAT64 checks; returns them all."""
    _require_root("check")
    with lab_lock(base, wait=report):
        return _lab_check(tools, name=name, report=report, base=base)


def _lab_check(tools: Tools, *, name: str, report: Report, base: Path) -> list[Check]:
    state = _load(name, base=base)
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
                    result = _ensure_pod(tools, state, node)
                    pods[node.name] = cni.pod_addresses(result)
                    notes.append(" ".join(pods[node.name]) or "no address")
            except LabError as exc:
                # The other checks still say something: run them, and count this one as failed.
                report(f"     {exc}")
                broken.append(Check("test pod", node.name, pod, False, str(exc)))
    with progress.step("Running the checks") as notes:
        found = broken + checks.run_all(_probes(tools.proc, state, config, plan, pods))
        failed = sum(not c.ok for c in found)
        notes.append(f"{len(found) - failed} of {len(found)} passed")
    return found


def _ensure_pod(tools: Tools, state: LabState, node: NodeState) -> cni.Result:
    pod = topology.pod_netns(node.name)
    if node.pod_netns and node.pod_result and topology.netns_exists(pod):
        return node.pod_result
    _remove_pod(tools, node)
    node.pod_netns = pod
    _new_netns(tools.proc, state, pod)
    node.pod_result = cni.add(tools.proc, root=node.root, node_ns=node.netns, pod_ns=pod, container=pod,
                              data_dir=node.cni_data)
    state.save()
    return node.pod_result


def _remove_pod(tools: Tools, node: NodeState) -> None:
    """CNI DEL (when ADD may have happened) and the pod's namespace; raises LabError if DEL fails."""
    pod = topology.pod_netns(node.name)
    try:
        if node.pod_netns and topology.netns_exists(node.netns):
            cni.delete(tools.proc, root=node.root, node_ns=node.netns, pod_ns=pod, container=pod,
                       data_dir=node.cni_data, result=node.pod_result)
    finally:
        topology.delete_netns(tools.proc, pod)
        node.pod_netns, node.pod_result = None, None
        shutil.rmtree(node.cni_data, ignore_errors=True)


def _probes(proc: RunnerAPI, state: LabState, config: Config, plan: Plan, pods: dict[str, list[str]]) -> list[Probe]:
    probes: list[Probe] = []
    names = [n for n in _order(plan) if n in state.nodes]

    def ping(kind: str, src: str, ns: str, dst: str, address: str) -> Probe:
        return lambda: checks.ping(proc, kind=kind, source=src, netns=ns, target=dst, address=address)

    for src in names:
        for dst in names:
            if src != dst:
                for address in plan.nodes[dst].management:
                    probes.append(ping("node ping", src, topology.node_netns(src), dst, str(address.ip)))
    families = [net.version for net in config.pod]
    for src in pods:
        for dst in pods:
            if src == dst:
                continue
            for version in families:
                pod_ip = next((a for a in pods[dst] if (":" in a) == (version == 6)), None)
                label = f"pod ping IPv{version}"
                if pod_ip is None:
                    probes.append(_failed(label, f"{src}-pod", f"{dst}-pod", f"{dst}'s pod has no IPv{version} address"))
                else:
                    probes.append(ping(label, f"{src}-pod", topology.pod_netns(src), f"{dst}-pod", pod_ip))
    if config.mode == "ipv6" and state.internet and config.dns64 is not None:
        inet = internet.InternetPlan.from_state(state.internet)
        prefix = config.dns64.cidr
        assert isinstance(prefix, IPv6Network)
        expected = embed_ipv4(prefix, inet.www)
        for node_name in pods:
            node = state.nodes[node_name]
            nameserver = _first_nameserver(node.root / "etc" / "resolv.conf") or str(config.dns64.ip)

            def dns(node: NodeState = node, server: str = nameserver) -> Check:
                return checks.dns64(proc, source=node.name, netns=node.netns, nameserver=server, name=internet.WWW,
                                    expected=expected, prefix=prefix)

            def fetch(node: NodeState = node) -> Check:
                return checks.nat64(proc, source=node.name, netns=node.netns, name=internet.WWW, address=expected,
                                    page=internet.PAGE)

            probes += [dns, fetch]
    return probes


def _failed(kind: str, src: str, dst: str, why: str) -> Probe:
    return lambda: Check(kind, src, dst, False, why)


def _first_nameserver(path: Path) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            return words[1]
    return None


# --- lab down ---------------------------------------------------------------------------


def lab_down(tools: Tools, *, name: str, report: Report, verbose: bool = False, base: Path = STATE_BASE) -> bool:
    """Undo a lab, also a half-made one; True if every node came back to its snapshot and nothing failed.

    Whatever fails, every namespace, process and file of the lab is removed at the end.
    """
    _require_root("down")
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
                    _remove_pod(tools, node)
                    state.save()
            except Exception as exc:  # whatever it was, the rest of the lab must still go
                report(f"     {describe_failure(exc)}")
                ok = False
    ok = _undo_nodes(state, report, verbose=verbose) and ok
    ok = _compare_snapshots(tools.proc, state, report) and ok
    with progress.step("Removing the namespaces, processes and files of the lab") as notes:
        stopped = 0
        for daemon in reversed(state.daemons):
            stopped += tools.daemons.stop(Path(daemon.pid_file), program=daemon.program)
        for ns in reversed(state.namespaces):
            stopped += len(topology.delete_netns(tools.proc, ns))
        strays = topology.processes_using(directory)
        if strays:
            topology.stop_processes(strays)
            report(f"     stopped {len(strays)} process(es) outside the lab's namespaces still using {directory}: "
                   + ", ".join(f"{pid}" for pid in strays))
            ok = False
        notes.append(f"{len(state.namespaces)} namespace(s), {stopped + len(strays)} process(es)")
        shutil.rmtree(directory)
    report(f"Lab {name!r} is gone{'' if ok else ', with the problems above'}.")
    return ok


def _undo_nodes(state: LabState, report: Report, *, verbose: bool) -> bool:
    """down (minions, then the master), then clean (the DNS64/NAT64 node last), where they ran."""
    present = [n for n in state.nodes.values() if topology.netns_exists(n.netns)]
    extra = ["--skip-phases", ",".join(state.skip_phases)] if state.skip_phases else []
    ups = [n for n in present if "up" in n.ran]
    preps = [n for n in present if "prepare" in n.ran]
    groups = [
        ([n.name for n in ups if not n.is_master], "down", extra),
        ([n.name for n in ups if n.is_master], "down", extra),
        ([n.name for n in preps if not n.is_nat64], "clean", []),
        ([n.name for n in preps if n.is_nat64], "clean", []),
    ]
    ok = True
    for names, command, args in groups:
        ok = not _run_group(state, names, command, args, report, verbose=verbose) and ok
    return ok


def _compare_snapshots(proc: RunnerAPI, state: LabState, report: Report) -> bool:
    ok = True
    for node in state.nodes.values():
        if not node.snapshot.exists() or not topology.netns_exists(node.netns):
            continue
        before = json.loads(node.snapshot.read_text())
        after = _snapshot(proc, node)
        diff = snapshot.differences(before, after)
        if diff:
            ok = False
            report(f" ✗ {node.name} is not back to its state before prepare:")
            for line in diff:
                report(f"     {line}")
        else:
            report(f" ✓ {node.name} is back to its state before prepare")
    return ok


# --- lab status and exec ----------------------------------------------------------------


def lab_status(tools: Tools, *, name: str | None, base: Path = STATE_BASE) -> list[str]:
    """Each lab (or the one named): its phase, nodes, namespaces, pods and servers."""
    names = [name] if name else lab_names(base=base)
    if not names:
        return ["No labs. Make one with `lazyjack lab up [--config FILE]`."]
    lines: list[str] = []
    for lab in names:
        state = _load(lab, base=base)
        detail = f" ({state.detail})" if state.detail else ""
        lines.append(f"lab {lab}: {state.phase}{detail}; {state.mode}; config {state.source_config}; "
                     f"created {state.created}; state {state.directory}")
        rows = [("NODE", "NAMESPACE", "ROLES", "RAN", "TEST POD")]
        for node in state.nodes.values():
            mark = "" if topology.netns_exists(node.netns) else " (missing)"
            pod = node.pod_netns if node.pod_netns and topology.netns_exists(node.pod_netns) else "-"
            if pod != "-" and node.pod_result:
                pod += " " + " ".join(cni.pod_addresses(node.pod_result))
            rows.append((node.name, node.netns + mark, " ".join(node.roles), ",".join(node.ran) or "-", pod))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        for daemon in state.daemons:
            pid = tools.daemons.running(Path(daemon.pid_file), program=daemon.program)
            lines.append(f"  internet {daemon.name} ({daemon.program}): "
                         + (f"running, pid {pid}" if pid else "not running"))
        if state.phase == CREATING:
            lines.append("  (lab up is running, or was killed: `lazyjack lab down` removes what it made)")
    return lines


def exec_argv(*, name: str | None, target: str, argv: list[str], base: Path = STATE_BASE) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment that run `argv` in the namespace of `target`: a node, NODE-pod, internet or switch."""
    labs = [name] if name else lab_names(base=base)
    for lab in labs:
        state = _load(lab, base=base)
        spaces = {n.name: n for n in state.nodes.values()}
        netns = None
        env = {"LAZYJACK_LAB": lab}
        if target in spaces:
            node = spaces[target]
            netns = node.netns
            env |= {"LAZYJACK_LAB_ROOT": str(node.root), "LAZYJACK_LAB_CONFIG": str(node.config)}
        elif target.endswith("-pod") and target[:-4] in spaces:
            netns = topology.pod_netns(target[:-4])
        elif target == "internet" and state.internet:
            netns = state.internet["netns"]
        elif target == "switch":
            netns = topology.switch_netns(lab)
        if netns is None:
            continue
        if not topology.netns_exists(netns):
            raise LabError(f"{target}'s namespace {netns} does not exist (lab {lab} is {state.phase})")
        command = argv or [os.environ.get("SHELL", "/bin/sh")]
        return [*topology.nsenter(netns), *command], env
    where = f"lab {name!r}" if name else f"any lab ({', '.join(labs) or 'there are none'})"
    raise LabError(f"{target!r} is not a node of {where}; give a node name, NODE-pod, internet or switch")
