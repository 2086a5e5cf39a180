"""What a lab holds, for `lab status` and the summary at the end of `lab up`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.netns import netns_exists
from lazyjack.lab import Tools, cni, internet, topology
from lazyjack.lab.state import CREATING, STATE_BASE, LabState, NodeState, lab_names, load_lab


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]


def summary(state: LabState, config: Config, plan: Plan, order: list[str], seconds: float) -> list[str]:
    """The lines `lab up` ends with: the nodes and their addresses, the internet, what to do next."""
    lines = [f"Lab {state.name!r} is up ({seconds:.1f}s): {config.mode}, {len(order)} nodes."]
    rows = [("NODE", "NAMESPACE", "ROLES", "MANAGEMENT", "PODS")]
    for name in order:
        node = plan.nodes[name]
        rows.append((name, topology.node_netns(name), " ".join(node.roles),
                     " ".join(str(a) for a in node.management), " ".join(str(s) for s in node.pod_subnets) or "-"))
    lines += _table(rows)
    if state.internet:
        inet = internet.InternetPlan.from_state(state.internet)
        lines.append(f"  internet: {inet.netns}, DNS {inet.dns}, {internet.WWW} A {inet.www} (HTTP), "
                     f"linked to {inet.where}")
    if state.site:
        lines.append(f"  the site's own DNS64/NAT64: {state.site} on the management switch")
    if state.skip_phases:
        lines.append(f"  Kubernetes itself is not started (skipped phases: {', '.join(state.skip_phases)}).")
    lines.append(f"Next: lazyjack lab check --name {state.name}; lazyjack lab exec {order[0]} -- ip addr; "
                 f"lazyjack lab down --name {state.name}")
    return lines


def status_of(node: NodeState, *, timeout: float = 60.0) -> dict[str, Any]:
    """`lazyjack status --output json` of the node, run in its namespace; {"error": ...} when it gives none."""
    from lazyjack.lab.orchestration import lazyjack_env

    argv = [*topology.nsenter(node.netns), sys.executable, "-m", "lazyjack", "--config", str(node.config),
            "--host", node.name, "--root", str(node.root), "status", "--output", "json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **lazyjack_env()},
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"status did not answer within {timeout:g}s"}
    if done.returncode not in (0, 1):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"status exited with {done.returncode}: {last}"}
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"error": "status gave no JSON"}
    return found


def _node_status(node: NodeState) -> str:
    """The summary line of the node's own `lazyjack status`."""
    found = status_of(node)
    return str(found.get("error") or found.get("summary", "?"))


def lab_status(tools: Tools, *, name: str | None, base: Path = STATE_BASE) -> list[str]:
    """Each lab (or the one named): its phase, nodes, namespaces, pods and servers."""
    names = [name] if name else lab_names(base=base)
    if not names:
        return ["No labs. Make one with `lazyjack lab up [--config FILE]`."]
    lines: list[str] = []
    for lab in names:
        state = load_lab(lab, base=base)
        detail = f" ({state.detail})" if state.detail else ""
        lines.append(f"lab {lab}: {state.phase}{detail}; {state.mode}; config {state.source_config}; "
                     f"created {state.created}; state {state.directory}")
        rows = [("NODE", "NAMESPACE", "ROLES", "RAN", "TEST POD", "LAZYJACK STATUS")]
        for node in state.nodes.values():
            present = netns_exists(node.netns)
            mark = "" if present else " (missing)"
            pod = node.pod_netns if node.pod_netns and netns_exists(node.pod_netns) else "-"
            if pod != "-" and node.pod_result:
                pod += " " + " ".join(cni.pod_addresses(node.pod_result))
            rows.append((node.name, node.netns + mark, " ".join(node.roles), ",".join(node.ran) or "-", pod,
                         _node_status(node) if present and node.config.exists() else "-"))
        lines += _table(rows)
        for daemon in state.daemons:
            pid = tools.daemons.running(Path(daemon.pid_file), program=daemon.program)
            lines.append(f"  internet {daemon.name} ({daemon.program}): "
                         + (f"running, pid {pid}" if pid else "not running"))
        if state.phase == CREATING:
            lines.append("  (lab up is running, or was killed: `lazyjack lab down` removes what it made)")
    return lines
