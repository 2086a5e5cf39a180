"""`lab exec`: the command line that runs a program (by default a shell) in one of a lab's namespaces."""

from __future__ import annotations

import os
from pathlib import Path

from lazyjack.host.netns import netns_exists
from lazyjack.lab import LabError, topology
from lazyjack.lab.state import STATE_BASE, lab_names, load_lab


def exec_argv(*, name: str | None, target: str, argv: list[str], base: Path = STATE_BASE) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment that run `argv` in the namespace of `target`: a node, NODE-pod, internet, site
    or switch."""
    labs = [name] if name else lab_names(base=base)
    for lab in labs:
        state = load_lab(lab, base=base)
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
        elif target == "site" and state.site:
            netns = state.site
        elif target == "switch":
            netns = topology.switch_netns(lab)
        if netns is None:
            continue
        if not netns_exists(netns):
            raise LabError(f"{target}'s namespace {netns} does not exist (lab {lab} is {state.phase})")
        command = argv or [os.environ.get("SHELL", "/bin/sh")]
        return [*topology.nsenter(netns), *command], env
    where = f"lab {name!r}" if name else f"any lab ({', '.join(labs) or 'there are none'})"
    raise LabError(f"{target!r} is not a node of {where}; give a node name, NODE-pod, internet, site or switch")
