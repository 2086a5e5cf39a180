"""`lazyjack validate`: check the configuration and describe the address plan."""

from __future__ import annotations

import json
from pathlib import Path

from lazyjack.config import load_config
from lazyjack.config.model import Config
from lazyjack.config.plan import Plan, build_plan


def run_validate(path: Path, *, host: str | None, output: str) -> tuple[str, list[str]]:
    """Validate the file; return the report (text or JSON) and the warnings."""
    config = load_config(path, host=host)
    plan = build_plan(config)
    if output == "json":
        return dump_plan(plan.to_json()), list(config.warnings)
    return describe_plan(config, plan, host=host), list(config.warnings)


def dump_plan(data: dict[str, object]) -> str:
    """JSON with one line per top-level key and per node: readable, and written by json's fast C encoder."""
    nodes = data["nodes"]
    assert isinstance(nodes, dict)
    head = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items() if key != "nodes"]
    body = [f"    {json.dumps(name)}: {json.dumps(node)}" for name, node in nodes.items()]
    return "{\n" + ",\n".join([*head, '  "nodes": {\n' + ",\n".join(body) + "\n  }"]) + "\n}"


#: Above this many pod routes a node's text summary counts them instead of listing them.
SUMMARY_AFTER = 16


def describe_plan(config: Config, plan: Plan, *, host: str | None = None) -> str:
    """A readable summary: mode, nodes with roles, addresses, subnets and routes."""
    api = (
        f"kubeadm.k8s.io/{plan.kubeadm_api_version}"
        if plan.kubeadm_api_version
        else ("chosen from `kubeadm version` at prepare")
    )
    lines = [
        f"{config.source.path if config.source else 'config'}: valid",
        f"mode:            {plan.mode}",
        f"plugin:          {config.plugin} (MTU {config.mtu})",
        f"service network: {', '.join(str(s) for s in config.service)} (DNS {plan.dns_service_ip})",
        f"API server:      {plan.api_advertise_address} on {plan.master.name}",
        f"kubeadm API:     {api}",
    ]
    lines += _egress(config, plan)
    for node in plan.nodes.values():
        marker = "  <- --host" if host == node.name else ""
        lines.append("")
        lines.append(f"{node.name} (id {node.id}): {' '.join(node.roles)}{marker}")
        lines.append(f"  {node.interface}: {', '.join(str(a) for a in node.management)}")
        if node.is_cluster_node:
            pods = ", ".join(f"{s} (gateway {g})" for s, g in zip(node.pod_subnets, node.pod_gateways, strict=True))
            lines.append(f"  pods: {pods}")
            lines.append(f"  nameserver: {node.nameserver}")
        pod_routes = [r for r in node.routes if r.purpose.startswith("pod subnet of ")]
        listed = node.routes if host == node.name or len(pod_routes) <= SUMMARY_AFTER else [
            r for r in node.routes if not r.purpose.startswith("pod subnet of ")
        ]
        for route in listed:
            lines.append(f"  route {route.describe()}  [{route.phase}: {route.purpose}]")
        if len(listed) < len(node.routes):
            lines.append(f"  routes to the pod subnets of the {len(pod_routes) // max(len(node.pod_subnets), 1)} "
                         f"other nodes ({len(pod_routes)} routes) via their management addresses  [up]"
                         f"  (--host {node.name} lists them)")
    return "\n".join(lines)


def _egress(config: Config, plan: Plan) -> list[str]:
    """ipv6 mode: where the DNS64 server and the NAT64 gateway are, the cluster's or the site's."""
    egress = config.egress
    if egress is None:
        return []
    lines = [f"DNS64 prefix:    {egress.prefix}"]
    runtime = config.general.dns64_nat64_runtime
    if egress.dns64 is not None and plan.dns64_node is not None:
        lines.append(f"DNS64:           {egress.dns64.server} at {egress.dns64.ip} on {plan.dns64_node.name}, forwarding "
                     f"to {egress.dns64.remote_server} as {plan.dns64_forwarder}, runtime {runtime}")
    elif egress.site_dns64 is not None:
        via = f" via {egress.site_dns64.via}" if egress.site_dns64.via is not None else ""
        lines.append(f"DNS64:           the site's, at {egress.site_dns64.server}{via}")
    if egress.nat64 is not None and plan.nat64_node is not None:
        nat64 = egress.nat64
        lines.append(f"NAT64:           tayga at {nat64.ip} / {nat64.v4_ip} (pool {nat64.v4_cidr}) on "
                     f"{plan.nat64_node.name}, runtime {runtime}")
    else:
        lines.append(f"NAT64:           the site's, via {egress.site_gateway}")
    if egress.support is not None:
        lines.append(f"support network: {egress.support.cidr} + {egress.support.v4cidr}")
    return lines
