"""`lab reboot NODE`: what a reboot does to a node's kernel state, then what its boot runs, read from its own files.

Power off: the node's test pod, its processes, its DNS64/NAT64 servers and support namespace go
(a reboot loses every process and namespace); the links a reboot would not bring back (the CNI
bridge, the support veth) are deleted; the others ("the hardware": the links the node had before
prepare) lose their addresses and routes and go down; the sysctls lazyjack and the lab set go back
to the kernel's defaults (read from a fresh namespace). Boot: the lab's own network set-up (what a
distribution's network config would do: links up, the uplink's address and route), then every
file in the node's /etc/sysctl.d, then the ExecStart of every unit enabled in its
multi-user.target.wants, as systemd would run them. Nothing of lazyjack's is hard-coded here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from lazyjack.host.netns import netns_exists, support_netns
from lazyjack.host.process import stop_pids
from lazyjack.lab import LabError, Report, Tools, internet, probes, topology
from lazyjack.lab.orchestration import lazyjack_env
from lazyjack.lab.progress import Progress
from lazyjack.lab.state import UP, LabState, NodeState
from lazyjack.render.boot import exec_start

SYSCTL_DIR = "etc/sysctl.d"
WANTS_DIR = "etc/systemd/system/multi-user.target.wants"
#: What the lab sets in every namespace it makes (topology.add_netns): the "distribution's" sysctls.
LAB_SYSCTLS = ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
#: Always reset, with the settings of the node's sysctl.d files.
FORWARDING = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
#: How long a unit of the boot may run (restore starts the DNS64/NAT64 servers).
UNIT_TIMEOUT = 300.0


def run_unit(node: NodeState, unit: str, argv: list[str]) -> tuple[bool, float, Path]:
    """Run a unit's ExecStart in the node's namespace, as systemd would at boot; its output goes to the
    node's next log file. Returns (succeeded, seconds, log)."""
    node.logs.mkdir(parents=True, exist_ok=True)
    log = node.logs / f"{len(list(node.logs.iterdir())) + 1:02d}-boot-{unit.removesuffix('.service')}.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        try:
            code = subprocess.run([*topology.nsenter(node.netns), *argv], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, env={**os.environ, **lazyjack_env()},
                                  timeout=UNIT_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            code = None
    return code == 0, time.monotonic() - start, log


def sysctl_files(root: Path) -> list[tuple[str, str]]:
    """The settings of the node's sysctl.d files, files in name order as systemd-sysctl reads them."""
    directory = root / SYSCTL_DIR
    settings: list[tuple[str, str]] = []
    for path in sorted(directory.glob("*.conf")) if directory.is_dir() else []:
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            name, sep, value = line.lstrip("-").partition("=")
            if not sep:
                raise LabError(f"{path}: cannot read the line {raw!r} (expected NAME = VALUE)")
            settings.append((name.strip(), value.strip()))
    return settings


def enabled_units(root: Path) -> list[tuple[str, list[str]]]:
    """(unit name, ExecStart argv) of every unit enabled in the node's multi-user.target.wants, by name."""
    directory = root / WANTS_DIR
    units: list[tuple[str, list[str]]] = []
    for link in sorted(directory.iterdir()) if directory.is_dir() else []:
        target = Path(link.readlink()) if link.is_symlink() else link
        unit = root / target.relative_to("/") if target.is_absolute() else link.parent / target
        try:
            units.append((link.name, exec_start(unit.read_text())))
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read the unit {link.name} of the node ({unit}): {exc}") from None
    return units


def _links(tools: Tools, netns: str) -> list[str]:
    return [entry["ifname"] for entry in json.loads(topology.ip(tools.proc, netns, "-j", "link", "show"))]


def _kernel_defaults(tools: Tools, names: list[str]) -> dict[str, str]:
    """The values a freshly booted kernel gives `names`: read in a namespace made for it."""
    scratch = f"ljboot-{uuid.uuid4().hex[:10]}"
    tools.proc.run(["ip", "netns", "add", scratch], timeout=topology.IP_TIMEOUT)
    try:
        found = {}
        for name in names:
            path = "/proc/sys/" + name.replace(".", "/")
            found[name] = tools.proc.run([*topology.nsenter(scratch), "cat", path], timeout=topology.IP_TIMEOUT,
                                         check=False).stdout.strip()
        return {k: v for k, v in found.items() if v}
    finally:
        topology.delete_netns(tools.proc, scratch)


def power_off(tools: Tools, state: LabState, node: NodeState, progress: Progress) -> None:
    """What a reboot takes away from the node."""
    with progress.step(f"Power off {node.name}") as notes:
        if node.pod_netns:
            probes.remove_pod(tools, node)
            state.save()
            notes.append("test pod gone")
        stopped = topology.delete_netns(tools.proc, support_netns(node.root.resolve()))
        inside = topology.processes_in(node.netns)
        stop_pids(inside, grace=topology.STOP_GRACE, poll=topology.POLL)
        notes.append(f"{len(stopped) + len(inside)} process(es) stopped")
        before = json.loads(node.snapshot.read_text()) if node.snapshot.exists() else {}
        hardware = before.get("links", [node.interface])
        deleted = []
        for link in _links(tools, node.netns):
            if link == "lo":
                continue
            if link not in hardware:
                topology.ip(tools.proc, node.netns, "link", "del", link, check=False)
                deleted.append(link)
                continue
            topology.ip(tools.proc, node.netns, "addr", "flush", "dev", link)
            topology.ip(tools.proc, node.netns, "link", "set", link, "down")
        if "mtu" in before:  # a NIC comes up with its own MTU again
            topology.ip(tools.proc, node.netns, "link", "set", node.interface, "mtu", str(before["mtu"]))
        for family in ("-4", "-6"):
            topology.ip(tools.proc, node.netns, family, "route", "flush", "table", "main")
        notes.append(f"links down without addresses or routes{'; deleted ' + ', '.join(deleted) if deleted else ''}")
        names = list(dict.fromkeys([*FORWARDING, *(n for n, _ in sysctl_files(node.root)),
                                    *(s.split("=")[0] for s in LAB_SYSCTLS)]))
        defaults = _kernel_defaults(tools, names)
        topology.sysctl(tools.proc, node.netns, *(f"{k}={v}" for k, v in defaults.items()))
        notes.append(f"{len(defaults)} sysctl(s) at the kernel's defaults")


def boot(tools: Tools, state: LabState, node: NodeState, progress: Progress) -> list[bool]:
    """What the node's boot runs: the lab's network set-up, sysctl.d, then the enabled units' ExecStart."""
    with progress.step(f"Boot {node.name}: network set-up and /etc/sysctl.d") as notes:
        topology.sysctl(tools.proc, node.netns, *LAB_SYSCTLS)
        before = json.loads(node.snapshot.read_text()) if node.snapshot.exists() else {"up": True}
        if before.get("up"):
            topology.ip(tools.proc, node.netns, "link", "set", node.interface, "up")
        uplinks = internet.InternetPlan.from_state(state.internet).uplinks if state.internet else ()
        for link in uplinks:
            if link.node == node.name:
                internet.node_uplink(tools.proc, link)
                notes.append("uplink configured")
        settings = sysctl_files(node.root)
        if settings:
            topology.sysctl(tools.proc, node.netns, *(f"{k}={v}" for k, v in settings))
        notes.append(f"{len(settings)} sysctl setting(s)")
    results = []
    for unit, argv in enabled_units(node.root):
        ok, seconds, log = run_unit(node, unit, argv)
        progress.report(f" {'✓' if ok else '✗'} Boot {node.name}: {unit} ({seconds:.1f}s)")
        if not ok:
            for line in log.read_text(errors="replace").rstrip().splitlines()[-30:]:
                progress.report(f"     {line}")
        results.append(ok)
    return results


def reboot(tools: Tools, state: LabState, node_name: str, report: Report) -> bool:
    """Reboot one node of a lab that is up; True when every unit its boot ran succeeded."""
    if state.phase != UP:
        raise LabError(f"lab {state.name!r} is {state.phase}; reboot needs a lab that is up")
    node = state.nodes.get(node_name)
    if node is None:
        raise LabError(f"lab {state.name!r} has no node {node_name!r}; its nodes: {', '.join(state.nodes)}")
    if not netns_exists(node.netns):
        raise LabError(f"{node.name}'s namespace {node.netns} is gone; `lazyjack lab down`, then `lab up`")
    progress = Progress(report)
    report(f"Rebooting {node.name} of lab {state.name!r} ...")
    power_off(tools, state, node, progress)
    results = boot(tools, state, node, progress)
    ok = all(results)
    report(f"{node.name} is back{'' if ok else ', but a unit of its boot failed (above)'}; "
           f"`lazyjack lab check --name {state.name}` tells whether the cluster works again.")
    return ok
