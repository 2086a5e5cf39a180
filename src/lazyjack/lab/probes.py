"""What `lab check` tries: a test pod per cluster node (made and removed through CNI), then the probes.

Every node pings every other node's management addresses; every test pod pings every other
pod in each family of the pod network; in ipv6 mode every node with a test pod resolves the
simulated internet's name through its nameserver (DNS64) and fetches its page (NAT64).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lazyjack.addresses import embed_ipv4
from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.netns import netns_exists
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import Tools, checks, cni, internet, topology
from lazyjack.lab.build import new_netns
from lazyjack.lab.checks import Check, Probe
from lazyjack.lab.orchestration import node_order
from lazyjack.lab.state import LabState, NodeState


def ensure_pod(tools: Tools, state: LabState, node: NodeState) -> cni.Result:
    """The node's test pod, made with the node's CNI config unless it is there already."""
    pod = topology.pod_netns(node.name)
    if node.pod_netns and node.pod_result and netns_exists(pod):
        return node.pod_result
    remove_pod(tools, node)
    node.pod_netns = pod
    new_netns(tools.proc, state, pod)
    node.pod_result = cni.add(tools.proc, root=node.root, node_ns=node.netns, pod_ns=pod, container=pod,
                              data_dir=node.cni_data)
    state.save()
    return node.pod_result


def remove_pod(tools: Tools, node: NodeState) -> None:
    """CNI DEL (when ADD may have happened) and the pod's namespace; raises LabError if DEL fails."""
    pod = topology.pod_netns(node.name)
    try:
        if node.pod_netns and netns_exists(node.netns):
            cni.delete(tools.proc, root=node.root, node_ns=node.netns, pod_ns=pod, container=pod,
                       data_dir=node.cni_data, result=node.pod_result)
    finally:
        topology.delete_netns(tools.proc, pod)
        node.pod_netns, node.pod_result = None, None
        shutil.rmtree(node.cni_data, ignore_errors=True)


def probes(proc: RunnerAPI, state: LabState, config: Config, plan: Plan, pods: dict[str, list[str]]) -> list[Probe]:
    """Every check to run, in the order of the table; `pods` holds each test pod's addresses."""
    found: list[Probe] = []
    names = [n for n in node_order(plan) if n in state.nodes]

    def ping(kind: str, src: str, ns: str, dst: str, address: str) -> Probe:
        return lambda: checks.ping(proc, kind=kind, source=src, netns=ns, target=dst, address=address)

    for src in names:
        for dst in names:
            if src != dst:
                for address in plan.nodes[dst].management:
                    found.append(ping("node ping", src, topology.node_netns(src), dst, str(address.ip)))
    families = [net.version for net in config.pod]
    for src in pods:
        for dst in pods:
            if src == dst:
                continue
            for version in families:
                pod_ip = next((a for a in pods[dst] if (":" in a) == (version == 6)), None)
                label = f"pod ping IPv{version}"
                if pod_ip is None:
                    found.append(_failed(label, f"{src}-pod", f"{dst}-pod", f"{dst}'s pod has no IPv{version} address"))
                else:
                    found.append(ping(label, f"{src}-pod", topology.pod_netns(src), f"{dst}-pod", pod_ip))
    if config.egress is not None and state.internet:
        inet = internet.InternetPlan.from_state(state.internet)
        prefix = config.egress.prefix
        expected = embed_ipv4(prefix, inet.www)
        for node_name in pods:
            node = state.nodes[node_name]
            nameserver = first_nameserver(node.root / "etc" / "resolv.conf") or str(config.egress.resolver)

            def dns(node: NodeState = node, server: str = nameserver) -> Check:
                return checks.dns64(proc, source=node.name, netns=node.netns, nameserver=server, name=internet.WWW,
                                    expected=expected, prefix=prefix)

            def fetch(node: NodeState = node) -> Check:
                return checks.nat64(proc, source=node.name, netns=node.netns, name=internet.WWW, address=expected,
                                    page=internet.PAGE)

            found += [dns, fetch]
    return found


def _failed(kind: str, src: str, dst: str, why: str) -> Probe:
    return lambda: Check(kind, src, dst, False, why)


def first_nameserver(path: Path) -> str | None:
    """The first `nameserver` of a resolv.conf, or None."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            return words[1]
    return None
