"""What `lab up` checks before it makes anything: root, programs, names and namespaces free, phases to skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lazyjack.commands import unknown_phases
from lazyjack.config.model import Config
from lazyjack.host.netns import netns_exists
from lazyjack.lab import LabError, topology
from lazyjack.lab.sshd import SSHD
from lazyjack.lab.state import LabState, lab_names


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"lazyjack lab {command} makes and removes network namespaces: run it as root")


def namespaces_of(config: Config, name: str) -> list[str]:
    """Every namespace a lab of `config` named `name` makes (the support namespace aside)."""
    names = [topology.switch_netns(name)]
    for node in config.nodes:
        names += [topology.node_netns(node), topology.pod_netns(node)]
    if config.mode == "ipv6":
        names.append(topology.internet_netns(name))
    if needs_site(config):
        names.append(topology.site_netns(name))
    return names


def needs_site(config: Config) -> bool:
    """Whether the config names the site's own DNS64 server or NAT64 gateway, which the lab then plays."""
    egress = config.egress
    return egress is not None and (egress.site_dns64 is not None or egress.site_gateway is not None)


def preflight(config: Config, name: str, directory: Path, skip: list[str], *, ssh: bool = False) -> list[str]:
    """The problems that stop `lab up` before it makes anything; empty when it may go on."""
    problems = []
    programs = ["ip", "nsenter", "sysctl", "ping", "iptables", "iptables-save"]
    if ssh:
        programs += ["ssh", "ssh-keygen", "unshare", "findmnt"]
        if not Path(SSHD).exists():
            problems.append(f"{SSHD} is not installed (apt-get install openssh-server), needed by --ssh")
    if 6 in config.families:
        programs += ["ip6tables", "ip6tables-save"]
    if config.egress is not None:
        programs += ["named", "tayga", "dig", "curl"]
        if needs_site(config) or (config.egress.dns64 is not None and config.egress.dns64.server == "unbound"):
            programs.append("unbound")
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        problems.append(f"not installed: {', '.join(missing)} (apt-get install iproute2 util-linux procps "
                        "iputils-ping iptables bind9 bind9-dnsutils unbound tayga curl)")
    if directory.exists():
        problems.append(f"lab {name!r} exists ({directory}); remove it with `lazyjack lab down --name {name}`, "
                        "or give this one another --name")
    wanted = namespaces_of(config, name)
    if len(set(wanted)) != len(wanted):
        problems.append(f"the node names give clashing namespace names: {', '.join(sorted(wanted))}")
    present = [ns for ns in wanted if netns_exists(ns)]
    if present:
        owners = [lab for lab in lab_names(base=directory.parent)
                  if set(present) & set(LabState.load(directory.parent / lab).namespaces)]
        whose = f" (lab {', '.join(owners)}: `lazyjack lab down --name {owners[0]}`)" if owners else ""
        problems.append(f"network namespace(s) {', '.join(present)} exist already{whose}")
    unknown = unknown_phases(skip)
    if unknown:
        problems.append(unknown)
    if "cni" in skip:
        problems.append("--skip-phases cni: the lab's test pods need the CNI config `up` writes")
    return problems
