"""Validation: every rule a configuration must satisfy, all problems collected at once.

Each problem names the field (dotted path and line), the value, and what would be
valid. Sections that fail their type check are skipped by the rules that need them,
so one typo does not hide the other problems.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from pydantic import BaseModel, ValidationError

from lazyjack.addresses import (
    LOCAL_USE_PREFIX,
    RFC6052_LENGTHS,
    U_OCTET,
    WELL_KNOWN_PREFIX,
    IPAddr,
    IPNet,
    PlanError,
)
from lazyjack.config import plan
from lazyjack.config.egress import Egress, egress_of
from lazyjack.config.load import KeyPath, Source
from lazyjack.config.model import DEFAULT_MTU, Config, Plugin, is_set
from lazyjack.config.nodes import ROLES, NodeSpec
from lazyjack.config.schema import (
    SECTIONS,
    TOP_LEVEL_KEYS,
    Dns64,
    General,
    MgmtNet,
    Nat64,
    Node,
    PodNet,
    ServiceNet,
    SupportNet,
    describe,
)
from lazyjack.errors import ConfigError, Problem

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
#: A container image reference as docker and podman parse it: [registry[:port]/]path[:tag][@digest].
IMAGE_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)
HASH_RE = re.compile(r"^(sha256:)?[0-9a-fA-F]{64}$")
DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
FAMILY = {4: "IPv4", 6: "IPv6"}
MTU_MIN = {"ipv4": 576, "ipv6": 1280, "dual-stack": 1280}
MTU_MAX = 65535
MIN_NODE_ID = 2
#: The longest kubeadm call lazyjack waits for; longer values are typos and overflow timers.
MAX_KUBEADM_TIMEOUT = 24 * 3600
#: Besides letters and digits, what a work-area path component may hold: every file lazyjack writes the
#: path into can carry these as they are (tayga.conf has no quoting, named.conf strings end at a quote,
#: docker binds split at ':', systemd expands '%' and '$').
WORK_AREA_PUNCTUATION = frozenset("._-+@~")
MAX_PATH_BYTES = 255
#: Linux interface names: IFNAMSIZ less the terminating NUL, in bytes.
MAX_INTERFACE_BYTES = 15
MAX_LABEL = 63


def _show(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (dict, list)):
        return describe(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _got(value: object) -> str:
    """`text 'x'` or `a number 3`; just `a list` or `empty` where the value itself says nothing more."""
    kind = describe(value)
    return kind if value is None or isinstance(value, (dict, list)) else f"{kind} {_show(value)}"


@dataclass
class Problems:
    """Collects problems, attaching the line of each field."""

    source: Source
    items: list[Problem] = field(default_factory=list)
    bad_keys: set[KeyPath] = field(default_factory=set)

    def add(self, path: Sequence[str], message: str) -> None:
        self.items.append(Problem(".".join(path), message, self.source.line(tuple(path))))


def suggest(key: str, valid: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest valid key, or a list of the valid keys."""
    choices = list(valid)
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid keys: {', '.join(choices)}"


def _model_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _translate(problems: Problems, base: KeyPath, model: type[BaseModel], exc: ValidationError) -> None:
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        path = (*base, *loc)
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            problems.add(path, f"unknown key{suggest(loc[-1], _model_keys(model))}")
        elif kind == "missing":
            problems.add(path, "is required")
        elif kind == "literal_error":
            expected = (err.get("ctx") or {}).get("expected", "")
            problems.add(path, f"{_show(value)} is not valid; use {expected}")
        elif kind in ("int_type", "int_from_float", "int_parsing"):
            hint = " (remove the quotes)" if isinstance(value, str) and value.strip().isdigit() else ""
            problems.add(path, f"must be a whole number, got {_got(value)}{hint}")
        elif kind in ("bool_type", "bool_parsing"):
            problems.add(path, f"must be true or false, got {_got(value)}")
        elif kind in ("string_type", "str_type"):
            problems.add(path, f"must be text, got {_got(value)}")
        elif kind.startswith("lj_"):
            shown = f"{_show(value)} " if isinstance(value, str) else ""
            problems.add(path, f"{shown}{err['msg']}")
        else:
            problems.add(path, f"{_show(value)}: {err['msg']}")


def _section(problems: Problems, data: dict[str, Any], key: str, model: type[BaseModel]) -> Any:
    raw = data.get(key)
    if raw is None:
        if key in data:  # `mgmt_net:` with nothing under it: present, so no "is required" elsewhere
            problems.add((key,), f"is empty; it needs the keys {', '.join(_model_keys(model))}")
        return None
    if not isinstance(raw, dict):
        problems.add((key,), f"must be a mapping of keys ({', '.join(_model_keys(model))}), got {_got(raw)}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        _translate(problems, (key,), model, exc)
        failed = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        problems.bad_keys.update((key, f) for f in failed)
    # Keep checking what is left: the section without its bad keys may still validate
    # (defaults fill in), so that rules needing its good keys still run.
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in failed})
    except ValidationError:
        return None


@dataclass
class Parts:
    """The sections that passed their type check; None where a section is absent or bad."""

    general: General | None
    mode: str | None
    nodes: dict[str, NodeSpec]
    nodes_ok: bool
    mgmt: MgmtNet | None
    pod: PodNet | None
    service: ServiceNet | None
    support: SupportNet | None
    nat64: Nat64 | None
    dns64: Dns64 | None
    plugin: Plugin


def _parse_opmodes(problems: Problems, path: KeyPath, text: str) -> tuple[str, ...] | None:
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if not words:
        problems.add(path, f"is empty; use one or more of {', '.join(ROLES)} separated by spaces")
        return None
    bad = [w for w in words if w not in ROLES]
    for word in bad:
        close = difflib.get_close_matches(word, ROLES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        problems.add(path, f"{word!r} is not an opmode; use {', '.join(ROLES)}{hint}")
    if bad:
        return None
    if len(set(words)) != len(words):
        problems.add(path, f"{text!r} names an opmode twice")
    return tuple(r for r in ROLES if r in words)


def _check_interface(problems: Problems, path: KeyPath, name: str) -> None:
    if (
        not 1 <= len(name.encode()) <= MAX_INTERFACE_BYTES
        or name in (".", "..")
        or any(c in name for c in "/:")
        or any(c.isspace() for c in name)
    ):
        problems.add(
            path,
            f"{name!r} is not a valid Linux interface name "
            f"(1-{MAX_INTERFACE_BYTES} bytes, no '/', ':' or whitespace)",
        )


SSH_USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _check_ssh_name(problems: Problems, path: KeyPath, value: str, *, what: str) -> None:
    # ssh reads a word starting with '-' as an option, and the name ends up in its argv.
    if not value or value.startswith("-") or any(c.isspace() or not c.isprintable() for c in value):
        problems.add(path, f"{value!r} must be {what}: not empty, no whitespace, not starting with '-'")


def _topology(problems: Problems, data: dict[str, Any]) -> tuple[dict[str, NodeSpec], bool]:
    raw = data.get("topology")
    if raw is None:
        problems.add(("topology",), "is required: a mapping of node name to interface, opmodes and id")
        return {}, False
    if not isinstance(raw, dict):
        problems.add(("topology",), f"must be a mapping of node names to nodes, got {_got(raw)}")
        return {}, False
    if not raw:
        problems.add(("topology",), "is empty; it needs at least a master node")
        return {}, False
    nodes: dict[str, NodeSpec] = {}
    ok = True
    for name, value in raw.items():
        path = ("topology", name)
        if not NODE_NAME_RE.match(name) or len(name) > 253 or any(len(p) > MAX_LABEL for p in name.split(".")):
            problems.add(
                path,
                f"node name {name!r} must be a lowercase DNS name (letters, digits, '-', '.'; at most 253 "
                f"characters, {MAX_LABEL} between dots), because kubeadm and /etc/hosts use it",
            )
            ok = False
        if not isinstance(value, dict):
            problems.add(path, f"must be a mapping with interface, opmodes and id, got {_got(value)}")
            ok = False
            continue
        try:
            node: Node | None = Node.model_validate(value)
        except ValidationError as exc:
            _translate(problems, path, Node, exc)
            node = None
        interface, opmodes = value.get("interface"), value.get("opmodes")
        if isinstance(interface, str):
            _check_interface(problems, (*path, "interface"), interface)
        roles = _parse_opmodes(problems, (*path, "opmodes"), opmodes) if isinstance(opmodes, str) else None
        if roles is None or node is None:
            ok = False
            continue
        if node.ssh_host is not None:
            _check_ssh_name(problems, (*path, "ssh-host"), node.ssh_host, what="a host name, address or ssh_config Host")
        nodes[name] = NodeSpec(name=name, interface=node.interface, roles=roles, id=node.id, ssh_host=node.ssh_host)
    return nodes, ok


def _parts(problems: Problems, data: dict[str, Any]) -> Parts:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.add((key,), f"unknown section{suggest(key, TOP_LEVEL_KEYS[:-1])}")
    # An empty `general:` is the same as none: every key has a default.
    general = _section(problems, data, "general", General) if data.get("general") is not None else General()
    mode: str | None = None
    if ("general", "mode") in problems.bad_keys:
        mode = None  # the retried section fell back to the default mode; do not check against it
    elif general is not None:
        mode = general.mode
    else:
        raw_mode = data.get("general", {}).get("mode", "ipv6") if isinstance(data.get("general"), dict) else "ipv6"
        mode = raw_mode if raw_mode in ("ipv4", "ipv6", "dual-stack") else None
    nodes, nodes_ok = _topology(problems, data)
    sections = {k: _section(problems, data, k, m) for k, m in SECTIONS.items() if k != "general"}
    for key in ("mgmt_net", "pod_net", "service_net"):
        if key not in data:
            problems.add((key,), "is required")
    plugin: Plugin = "bridge"
    top = data.get("plugin")
    if top is not None:
        if top not in ("bridge", "ptp"):
            problems.add(("plugin",), f"{_show(top)} is not valid; use 'bridge' or 'ptp' (and put it under general)")
        else:
            plugin = top
            if general is not None and general.plugin is not None and general.plugin != top:
                problems.add(
                    ("plugin",),
                    f"{top!r} disagrees with general.plugin {general.plugin!r}; remove the deprecated top-level plugin",
                )
    if general is not None and general.plugin is not None:
        plugin = general.plugin
    return Parts(
        general=general,
        mode=mode,
        nodes=nodes,
        nodes_ok=nodes_ok,
        mgmt=sections["mgmt_net"],
        pod=sections["pod_net"],
        service=sections["service_net"],
        support=sections["support_net"],
        nat64=sections["nat64"],
        dns64=sections["dns64"],
        plugin=plugin,
    )


# --- rules -----------------------------------------------------------------------------


def check_roles(p: Parts, problems: Problems) -> None:
    """Exactly one master; master and minion exclusive; in ipv6 mode one DNS64 and one NAT64, each
    a node's opmode or the site's own (external), on one node or on two; none outside ipv6 mode."""
    for node in p.nodes.values():
        if "master" in node.roles and "minion" in node.roles:
            problems.add(("topology", node.name, "opmodes"), f"node {node.name!r} cannot be both master and minion")
    if not p.nodes_ok:
        return
    masters = [n.name for n in p.nodes.values() if "master" in n.roles]
    if len(masters) != 1:
        problems.add(
            ("topology",),
            f"needs exactly one node with opmode master, found {len(masters)}"
            + (f" ({', '.join(masters)})" if masters else ""),
        )
    if p.mode != "ipv6":
        if p.mode is not None:
            for node in p.nodes.values():
                if "dns64" in node.roles or "nat64" in node.roles:
                    problems.add(
                        ("topology", node.name, "opmodes"),
                        f"dns64 and nat64 are only used in ipv6 mode, not {p.mode}; remove them",
                    )
        return
    external = {
        "dns64": p.dns64 is not None and p.dns64.external_server is not None,
        "nat64": p.nat64 is not None and p.nat64.external_gateway is not None,
    }
    external_key = {"dns64": "dns64.external-server", "nat64": "nat64.external-gateway"}
    missing = []
    for role in ("dns64", "nat64"):
        nodes = [n.name for n in p.nodes.values() if role in n.roles]
        if len(nodes) > 1:
            problems.add(("topology",), f"only one node may have opmode {role}, found {', '.join(nodes)}")
        elif nodes and external[role]:
            problems.add(
                ("topology", nodes[0], "opmodes"),
                f"node {nodes[0]!r} has opmode {role}, but {external_key[role]} names the site's own "
                f"{role.upper()} server; remove one of them",
            )
        elif not nodes and not external[role]:
            missing.append(role)
    if missing == ["dns64", "nat64"]:
        problems.add(
            ("topology",),
            "ipv6 mode needs DNS64 and NAT64: nodes with opmodes dns64 and nat64 (one node may have both), "
            "or the site's own, named by dns64.external-server and nat64.external-gateway",
        )
    elif missing:
        role = missing[0]
        problems.add(
            ("topology",),
            f"ipv6 mode needs {role.upper()}: a node with opmode {role}, or the site's own named by "
            f"{external_key[role]}",
        )


def check_node_ids(p: Parts, problems: Problems) -> None:
    """IDs are unique integers >= 2 that fit every address they go into."""
    seen: dict[int, str] = {}
    for node in p.nodes.values():
        path = ("topology", node.name, "id")
        if node.id < MIN_NODE_ID:
            problems.add(path, f"{node.id} is too small; node IDs start at {MIN_NODE_ID} (they become address parts)")
            continue
        if node.id in seen:
            problems.add(path, f"{node.id} is already the ID of {seen[node.id]!r}; IDs must be unique")
        seen.setdefault(node.id, node.name)
        if p.mgmt is not None:
            for net in _nets(p.mgmt.cidr, p.mgmt.cidr2):
                try:
                    plan.management_address(net, node.id)
                except PlanError as exc:
                    problems.add(path, f"{exc} (mgmt_net)")
        if p.pod is not None and node.is_cluster_node:
            for net in _nets(p.pod.cidr, p.pod.cidr2):
                try:
                    plan.pod_subnet(net, node.id)
                except PlanError as exc:
                    problems.add(path, f"{exc} (pod_net)")


def _nets(*nets: IPNet | None) -> list[IPNet]:
    return [n for n in nets if n is not None]


def _family_check(problems: Problems, path: KeyPath, net: IPNet | IPAddr, version: int, what: str) -> bool:
    if net.version != version:
        problems.add(path, f"{str(net)!r} is {FAMILY[net.version]}, but {what} must be {FAMILY[version]}")
        return False
    return True


#: The address family each egress key needs, and what it is (for the message), by section.
_EGRESS_FAMILIES = {
    "nat64": (("v4_cidr", 4, "the NAT64 pool"), ("v4_ip", 4, "nat64.v4_ip"), ("ip", 6, "nat64.ip"),
              ("external-gateway", 6, "the NAT64 gateway of an IPv6-only cluster")),
    "dns64": (("cidr", 6, "the DNS64 prefix"), ("ip", 6, "dns64.ip"),
              ("external-server", 6, "the DNS64 server of an IPv6-only cluster"),
              ("external-via", 6, "a router on the IPv6 management network")),
}


def check_families(p: Parts, problems: Problems) -> None:
    """Every CIDR is of the family the mode needs; dual-stack has one of each."""
    if p.mode is None:
        return
    pairs: tuple[tuple[str, MgmtNet | PodNet | ServiceNet | None], ...] = (("mgmt_net", p.mgmt), ("pod_net", p.pod))
    if p.mode == "dual-stack":
        for key, sec in pairs:
            if sec is None:
                continue
            if sec.cidr2 is None:
                other = "IPv4" if sec.cidr.version == 6 else "IPv6"
                problems.add((key, "cidr2"), f"dual-stack mode needs an {other} CIDR in {key}.cidr2")
            elif sec.cidr2.version == sec.cidr.version:
                problems.add(
                    (key, "cidr2"),
                    f"{str(sec.cidr2)!r} is {FAMILY[sec.cidr2.version]} like {key}.cidr; "
                    "dual-stack needs one IPv4 and one IPv6 CIDR",
                )
        if p.service is not None and p.service.cidr2 is not None and p.service.cidr2.version == p.service.cidr.version:
            problems.add(("service_net", "cidr2"), "must be of the other family than service_net.cidr")
        if p.support is not None:
            problems.add(("support_net",), f"is only used in ipv6 mode, not {p.mode}; remove the section")
        return
    version = 6 if p.mode == "ipv6" else 4
    for key, sec in (*pairs, ("service_net", p.service)):
        if sec is None:
            continue
        _family_check(problems, (key, "cidr"), sec.cidr, version, f"{key}.cidr in {p.mode} mode")
        if sec.cidr2 is not None:
            problems.add((key, "cidr2"), f"is only used in dual-stack mode, not {p.mode}; remove it")
    if p.mode != "ipv6":
        if p.support is not None:
            problems.add(("support_net",), f"is only used in ipv6 mode, not {p.mode}; remove the section")
        return
    if p.support is not None:
        _family_check(problems, ("support_net", "cidr"), p.support.cidr, 6, "support_net.cidr")
        _family_check(problems, ("support_net", "v4cidr"), p.support.v4cidr, 4, "support_net.v4cidr")
    wanted: list[tuple[KeyPath, IPNet | IPAddr | None, int, str]] = []
    for section, fields in _EGRESS_FAMILIES.items():
        values = getattr(p, section)
        if values is not None:
            wanted += [((section, key), getattr(values, key.replace("-", "_")), family, what)
                       for key, family, what in fields]
    remote = p.dns64.remote_server if p.dns64 is not None else None
    if remote is not None and remote.version != 4:
        problems.add(
            ("dns64", "remote_server"),
            f"{str(remote)!r} must be an IPv4 address (the DNS64 server reaches it through NAT64)",
        )
    for path, value, version, what in wanted:
        if value is not None:
            _family_check(problems, path, value, version, what)


def check_ipv6_sections(p: Parts, problems: Problems, data: dict[str, Any], warnings: list[str]) -> None:
    """ipv6 mode needs nat64 and dns64, and support_net where a node runs a DNS64 or NAT64 server."""
    if p.mode != "ipv6":
        return
    for key in ("nat64", "dns64"):
        if key not in data:
            problems.add((key,), "is required in ipv6 mode (it says where the cluster's DNS64/NAT64 is)")
    servers = [n.name for n in p.nodes.values() if "dns64" in n.roles or "nat64" in n.roles]
    if servers and "support_net" not in data:
        problems.add(("support_net",), f"is required in ipv6 mode: {', '.join(servers)} runs DNS64/NAT64 on it")
    elif not servers and p.nodes_ok and p.support is not None:
        warnings.append("support_net is ignored: no node runs DNS64 or NAT64 (the site's own serve the cluster)")


#: Keys of the DNS64 and NAT64 servers lazyjack runs: required with the opmode, unused with the site's own.
SERVER_KEYS = {
    "dns64": ("ip", "remote_server"),
    "nat64": ("v4_cidr", "v4_ip", "ip"),
}
#: Keys that only change the server lazyjack runs (they have defaults).
SERVER_OPTIONS = {
    "dns64": ("server", "image", "allow_aaaa_use", "allow_ipv6_use"),
    "nat64": ("image",),
}


def check_server_keys(p: Parts, problems: Problems, data: dict[str, Any], warnings: list[str]) -> None:
    """The servers' keys are required where a node runs the server and ignored (with a warning) where the
    site's own serves the cluster."""
    if p.mode != "ipv6":
        return
    for role, section in (("dns64", p.dns64), ("nat64", p.nat64)):
        raw = data.get(role)
        if section is None or not isinstance(raw, dict):
            continue
        node = next((n.name for n in p.nodes.values() if role in n.roles), None)
        external = section.external_server if isinstance(section, Dns64) else section.external_gateway
        if node is not None:
            for key in SERVER_KEYS[role]:
                if key not in raw and (role, key) not in problems.bad_keys:
                    problems.add((role, key), f"is required: node {node!r} runs the {role.upper()} server")
        elif external is not None:
            for key in (*SERVER_KEYS[role], *SERVER_OPTIONS[role]):
                if key in raw:
                    name = "dns64.external-server" if role == "dns64" else "nat64.external-gateway"
                    warnings.append(f"{role}.{key} is ignored: {name} is set, so lazyjack runs no {role.upper()} "
                                    "server")


def check_sizes(p: Parts, problems: Problems) -> None:
    """Pod, service and management networks are big enough for what is carved out of them."""
    if p.pod is not None:
        for key, net in (("cidr", p.pod.cidr), ("cidr2", p.pod.cidr2)):
            if net is None:
                continue
            if net.version == 4 and net.prefixlen != 16:
                problems.add(
                    ("pod_net", key),
                    f"{str(net)!r}: an IPv4 pod network must be a /16 "
                    "(each node gets a /24 with its ID as the third octet)",
                )
            if net.version == 6 and net.prefixlen + plan.NODE_SUBNET_BITS > 120:
                problems.add(
                    ("pod_net", key),
                    f"{str(net)!r}: an IPv6 pod network must be /112 or shorter, "
                    f"so that each node's /{net.prefixlen + plan.NODE_SUBNET_BITS} subnet holds pod addresses",
                )
        if p.pod.mtu is not None and p.mode is not None:
            low = MTU_MIN[p.mode]
            if not low <= p.pod.mtu <= MTU_MAX:
                problems.add(("pod_net", "mtu"), f"{p.pod.mtu} is out of range; use {low}-{MTU_MAX} in {p.mode} mode")
    if p.service is not None:
        for key, net in (("cidr", p.service.cidr), ("cidr2", p.service.cidr2)):
            if net is None:
                continue
            if net.version == 4 and net.prefixlen >= 24:
                problems.add(("service_net", key), f"{str(net)!r}: an IPv4 service network must be larger than /24")
            if net.version == 6 and net.prefixlen < 108:
                problems.add(
                    ("service_net", key),
                    f"{str(net)!r}: an IPv6 service network may be at most "
                    "/108 (kube-apiserver limit); use /108 to /120",
                )
            if net.version == 6 and net.prefixlen > 120:
                problems.add(("service_net", key), f"{str(net)!r} is too small; use /108 to /120")


def check_overlaps(p: Parts, problems: Problems) -> None:
    """Management, pod, service, support and DNS64 networks are disjoint."""
    named: list[tuple[KeyPath, IPNet]] = []
    for key, sec in (("mgmt_net", p.mgmt), ("pod_net", p.pod), ("service_net", p.service)):
        if sec is not None:
            named += [((key, k), n) for k, n in (("cidr", sec.cidr), ("cidr2", sec.cidr2)) if n is not None]
    if p.mode == "ipv6":
        if p.support is not None:
            named += [(("support_net", "cidr"), p.support.cidr), (("support_net", "v4cidr"), p.support.v4cidr)]
        if p.dns64 is not None:
            named.append((("dns64", "cidr"), p.dns64.cidr))
    for i, (path_a, a) in enumerate(named):
        for path_b, b in named[i + 1 :]:
            if a.version == b.version and a.overlaps(b):
                problems.add(
                    path_b, f"{str(b)!r} overlaps {'.'.join(path_a)} {str(a)!r}; the networks must be disjoint"
                )


def check_support(p: Parts, problems: Problems) -> None:
    """A valid DNS64 prefix; the servers' addresses and the NAT64 pool inside the support network."""
    if p.mode not in ("ipv6", None):
        return
    if p.dns64 is not None and isinstance(p.dns64.cidr, IPv6Network):
        _check_prefix(problems, p.dns64.cidr)
    support = p.support
    if support is None:
        return
    v6, v4 = support.cidr, support.v4cidr
    gw6 = plan.support_gateway(v6)
    gw4 = plan.support_gateway(v4)
    # The keys of a server the site runs itself are ignored (check_server_keys warns), so not checked.
    dns64 = p.dns64 if p.dns64 is not None and p.dns64.external_server is None else None
    nat64 = p.nat64 if p.nat64 is not None and p.nat64.external_gateway is None else None
    if dns64 is not None and dns64.ip is not None and dns64.ip.version == 6:
        _inside(problems, ("dns64", "ip"), dns64.ip, v6, "support_net.cidr", gateway=gw6)
    if nat64 is None:
        return
    if nat64.ip is not None and nat64.ip.version == 6:
        _inside(problems, ("nat64", "ip"), nat64.ip, v6, "support_net.cidr", gateway=gw6)
        if dns64 is not None and nat64.ip == dns64.ip:
            problems.add(
                ("nat64", "ip"), f"{str(nat64.ip)!r} is also dns64.ip; NAT64 and DNS64 need their own addresses"
            )
    if nat64.v4_ip is not None and nat64.v4_ip.version == 4:
        _inside(problems, ("nat64", "v4_ip"), nat64.v4_ip, v4, "support_net.v4cidr", gateway=gw4)
    pool = nat64.v4_cidr
    if pool is not None and pool.version == 4 and v4.version == 4 and not pool.subnet_of(v4):
        problems.add(("nat64", "v4_cidr"), f"{str(pool)!r} must lie inside support_net.v4cidr {str(v4)!r}")
    if pool is not None and pool.version == 4 and gw4 in pool:
        problems.add(
            ("nat64", "v4_cidr"),
            f"{str(pool)!r} contains the support network gateway {gw4}; choose a pool that leaves out the first address",
        )


def _check_prefix(problems: Problems, prefix: IPv6Network) -> None:
    """RFC 6052: one of six lengths, bits 64-71 zero; the well-known prefix only as itself."""
    path = ("dns64", "cidr")
    if prefix.prefixlen not in RFC6052_LENGTHS:
        problems.add(
            path,
            f"{str(prefix)!r}: a DNS64 prefix length must be one of "
            f"{', '.join(f'/{n}' for n in RFC6052_LENGTHS)} (RFC 6052)",
        )
    elif prefix.network_address.packed[U_OCTET] != 0:
        problems.add(
            path,
            f"{str(prefix)!r} sets bits 64-71, which RFC 6052 reserves; they must be zero (e.g. fd00:10:64:ff9b::/96)",
        )
    elif prefix != WELL_KNOWN_PREFIX and prefix.supernet_of(WELL_KNOWN_PREFIX):
        problems.add(
            path,
            f"{str(prefix)!r} contains the well-known prefix {WELL_KNOWN_PREFIX}, which RFC 6052 defines as a "
            f"/96 only: use {WELL_KNOWN_PREFIX} itself, a prefix inside {LOCAL_USE_PREFIX} "
            "(RFC 8215) or a network-specific one such as fd00:10:64:ff9b::/96",
        )


def check_external(p: Parts, problems: Problems) -> None:
    """The site's own DNS64 server and NAT64 gateway: neighbours on the management network (the DNS64 server
    may be farther, through a router there), and none of the cluster's own addresses."""
    if p.mode != "ipv6" or p.mgmt is None or not isinstance(p.mgmt.cidr, IPv6Network):
        return
    mgmt = p.mgmt.cidr
    nodes: dict[IPAddr, str] = {}
    if p.nodes_ok:
        for node in p.nodes.values():
            with contextlib.suppress(PlanError):  # check_node_ids reports it
                nodes[plan.management_address(mgmt, node.id).ip] = node.name
    cluster = [(f"{key}.cidr", sec.cidr) for key, sec in (("pod_net", p.pod), ("service_net", p.service),
                                                        ("support_net", p.support), ("dns64", p.dns64))
               if sec is not None]

    def taken(address: IPAddr) -> str | None:
        """Why `address` cannot be the site's: it is one of the cluster's own, or None."""
        for name, net in cluster:
            if address in net:
                return f"lies inside {name} {net}; it must be an address of the site, outside the cluster's networks"
        if address in nodes:
            return f"is the management address of node {nodes[address]!r}"
        if address == mgmt.network_address:
            return f"is the network address of mgmt_net.cidr {mgmt}"
        return None

    gateway = p.nat64.external_gateway if p.nat64 is not None else None
    if gateway is not None and gateway.version == 6:
        path = ("nat64", "external-gateway")
        if (why := taken(gateway)) is not None:
            problems.add(path, f"{str(gateway)!r} {why}")
        elif gateway not in mgmt:
            problems.add(
                path,
                f"{str(gateway)!r} is not on the management network mgmt_net.cidr {str(mgmt)!r}: the nodes route "
                "dns64.cidr via it, so it must be their neighbour there; if the NAT64 gateway is farther away, give "
                "the router on the management network that reaches it",
            )
    server = p.dns64.external_server if p.dns64 is not None else None
    via = p.dns64.external_via if p.dns64 is not None else None
    if via is not None and server is None:
        problems.add(("dns64", "external-via"), "is only used with dns64.external-server (the route to it); remove it")
    if server is None or server.version != 6:
        return
    if (why := taken(server)) is not None:
        problems.add(("dns64", "external-server"), f"{str(server)!r} {why}")
    elif via is None and server not in mgmt:
        problems.add(
            ("dns64", "external-server"),
            f"{str(server)!r} is not on the management network mgmt_net.cidr {str(mgmt)!r}; set dns64.external-via "
            "to the router on the management network that reaches it (the nodes route it via that router)",
        )
    elif via is not None and server in mgmt:
        problems.add(
            ("dns64", "external-via"),
            f"is not needed: dns64.external-server {server} is on the management network {mgmt}; remove it",
        )
    elif via is not None and via.version == 6:
        if (why := taken(via)) is not None:
            problems.add(("dns64", "external-via"), f"{str(via)!r} {why}")
        elif via not in mgmt:
            problems.add(
                ("dns64", "external-via"),
                f"{str(via)!r} must be a router on the management network mgmt_net.cidr {str(mgmt)!r}",
            )


def _inside(problems: Problems, path: KeyPath, ip: IPAddr, net: IPNet, what: str, *, gateway: IPAddr) -> None:
    if ip.version != net.version:
        return
    if ip not in net or ip == net.network_address:
        problems.add(path, f"{str(ip)!r} must be a host address inside {what} {str(net)!r}")
    elif ip == gateway:
        problems.add(path, f"{str(ip)!r} is the support network gateway (the node's own address); pick another")


def check_general(p: Parts, problems: Problems, *, require_token: bool) -> None:
    """Token, hash, Kubernetes version, timeout, socket and work area."""
    g = p.general
    if g is None:
        return
    if g.token is not None and is_set(g.token) and not TOKEN_RE.match(g.token):
        problems.add(
            ("general", "token"),
            f"{g.token!r} is not a kubeadm token; it must look like "
            "'abcdef.0123456789abcdef' (6 and 16 lowercase letters or digits); `lazyjack init` makes one",
        )
    if g.token_cert_hash is not None and is_set(g.token_cert_hash) and not HASH_RE.match(g.token_cert_hash):
        problems.add(
            ("general", "token-cert-hash"),
            f"{g.token_cert_hash!r} must be 64 hex digits "
            "(SHA-256 of the CA public key), optionally prefixed 'sha256:'; `lazyjack init` writes it",
        )
    if require_token and not g.insecure and ("general", "insecure") not in problems.bad_keys:
        for key, value in (("token", g.token), ("token-cert-hash", g.token_cert_hash)):
            if value is None or not is_set(value):
                problems.add(
                    ("general", key),
                    "is required unless insecure: true; run `lazyjack init` "
                    "on the master, then copy the updated file to the other nodes",
                )
    if g.ssh_user is not None and not SSH_USER_RE.match(g.ssh_user):
        problems.add(("general", "ssh-user"),
                     f"{g.ssh_user!r} is not a user name (lowercase letters, digits, '_', '-', '.'; at most 32)")
    if g.kubernetes_version is not None:
        version = g.kubernetes_version
        if version != "latest" and not plan.KUBERNETES_VERSION_RE.match(version):
            problems.add(
                ("general", "kubernetes-version"),
                f"{version!r} must be 'latest' or 'vX.Y.Z' "
                "with an optional '-suffix' (e.g. 'v1.31.2', 'v1.32.0-alpha.1')",
            )
        elif plan.kubeadm_api_for(version) is None:
            problems.add(
                ("general", "kubernetes-version"),
                f"{version!r} is not supported; use Kubernetes v1.11.0 or later (1.x)",
            )
    timeout = timeout_seconds(g.kubeadm_timeout)
    if timeout is None:
        problems.add(
            ("general", "kubeadm-timeout"),
            f"{_show(g.kubeadm_timeout)} must be a duration like "
            "'10m', '90s' or '1h30m' (or a number of seconds), greater than zero",
        )
    elif timeout > MAX_KUBEADM_TIMEOUT:
        problems.add(
            ("general", "kubeadm-timeout"),
            f"{_show(g.kubeadm_timeout)} is too long; kubeadm calls may take at most 24h (e.g. '30m')",
        )
    socket = g.cri_socket
    if not (socket.startswith("unix:///") or socket.startswith("/")) or any(c.isspace() for c in socket):
        problems.add(
            ("general", "cri-socket"),
            f"{socket!r} must be a unix socket such as "
            "'unix:///var/run/containerd/containerd.sock' or 'unix:///var/run/crio/crio.sock'",
        )
    work_area_problem = _work_area_problem(g.work_area)
    if work_area_problem:
        problems.add(("general", "work-area"), f"{g.work_area!r} {work_area_problem}")


def _work_area_problem(path: str) -> str:
    """Why `path` cannot be the work area ("" when it can)."""
    if not path.startswith("/") or path.rstrip("/") == "":
        return "must be an absolute directory path other than /"
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return "must not have '.' or '..' components; give the directory itself"
    if any(not (c.isalnum() or c in WORK_AREA_PUNCTUATION) for p in parts for c in p):
        return ("may hold only letters, digits and . _ - + @ ~ between its slashes (no spaces, quotes, "
                "backslashes, ':', '%' or '$'): tayga.conf, named.conf, docker and systemd take the path as it is")
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"is too long; use at most {MAX_PATH_BYTES} bytes"
    return ""


def check_images(p: Parts, problems: Problems) -> None:
    """Container images are references docker and podman accept."""
    for key, image in (("dns64", p.dns64.image if p.dns64 else None), ("nat64", p.nat64.image if p.nat64 else None)):
        if image is not None and not IMAGE_RE.match(image):
            problems.add((key, "image"), f"{image!r} is not a container image reference "
                         "([registry/]name[:tag][@digest], the name in lower case), e.g. 'lazyjack/tayga:latest'")


#: Characters that no value of the file may hold: they cannot be typed into it on purpose, and the files
#: lazyjack writes would end a line or a field at them.
def _control(text: str) -> str | None:
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)


def check_control_characters(problems: Problems, data: Any, path: KeyPath = ()) -> None:
    """No text in the file holds a control character (a NUL, a bell, a line separator, ...)."""
    if isinstance(data, dict):
        for key, value in data.items():
            check_control_characters(problems, value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            check_control_characters(problems, value, (*path, str(index)))
    elif isinstance(data, str) and (found := _control(data)) is not None:
        problems.add(path, f"{data!r} holds the control character U+{ord(found):04X}; remove it")


def timeout_seconds(value: str | int) -> float | None:
    """Seconds of a Go-style duration ('10m', '1h30m', '90s') or a bare integer; None if invalid."""
    if isinstance(value, int):
        return float(value) if value > 0 else None
    match = DURATION_RE.match(value.strip())
    if not value.strip() or match is None:
        return None
    h, m, s = (int(x) if x else 0 for x in match.groups())
    total = h * 3600 + m * 60 + s
    return float(total) if total > 0 else None


def check_aliases(p: Parts, problems: Problems, warnings: list[str]) -> bool:
    """dns64.allow_ipv6_use is the 1.x spelling of allow_aaaa_use; returns the effective value."""
    d = p.dns64
    if d is None:
        return False
    if d.allow_ipv6_use is not None:
        if d.allow_aaaa_use is not None and d.allow_aaaa_use != d.allow_ipv6_use:
            problems.add(("dns64", "allow_ipv6_use"), "disagrees with dns64.allow_aaaa_use; keep only allow_aaaa_use")
        warnings.append("dns64.allow_ipv6_use is deprecated; call it allow_aaaa_use")
    value = d.allow_aaaa_use if d.allow_aaaa_use is not None else d.allow_ipv6_use
    return bool(value)


def _egress(p: Parts, *, allow_aaaa: bool) -> Egress:
    """ipv6 mode: what the rules proved about support_net, nat64 and dns64, in narrow types."""
    assert p.nat64 is not None and p.dns64 is not None
    roles = {role for node in p.nodes.values() for role in node.roles}
    return egress_of(p.support, p.nat64, p.dns64, allow_aaaa=allow_aaaa, dns64_node="dns64" in roles,
                     nat64_node="nat64" in roles)


def validate(source: Source, *, host: str | None = None, require_token: bool = True) -> Config:
    """Check every rule; return the Config or raise ConfigError listing every problem."""
    problems = Problems(source)
    data = source.data
    p = _parts(problems, data)
    warnings: list[str] = []
    if "plugin" in data:
        warnings.append("the top-level 'plugin' is deprecated; move it under general")
    check_roles(p, problems)
    check_node_ids(p, problems)
    check_families(p, problems)
    check_ipv6_sections(p, problems, data, warnings)
    check_server_keys(p, problems, data, warnings)
    check_sizes(p, problems)
    check_overlaps(p, problems)
    check_support(p, problems)
    check_external(p, problems)
    check_general(p, problems, require_token=require_token)
    check_images(p, problems)
    check_control_characters(problems, data)
    allow_aaaa = check_aliases(p, problems, warnings)
    if p.mode in ("ipv4", "dual-stack"):
        for key in ("nat64", "dns64"):
            if key in data:
                warnings.append(f"{key} is only used in ipv6 mode; it is ignored in {p.mode} mode")
    if host is not None and p.nodes_ok and host not in p.nodes:
        close = difflib.get_close_matches(host, list(p.nodes), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.items.append(
            Problem("--host", f"{host!r} is not a node of the topology; {hint}nodes: {', '.join(p.nodes)}")
        )
    if problems.items:
        ordered = sorted(problems.items, key=lambda q: (q.line is None, q.line or 0))
        raise ConfigError(source.path, ordered)
    assert p.general is not None and p.mgmt is not None and p.pod is not None and p.service is not None
    ipv6 = p.mode == "ipv6"
    timeout = timeout_seconds(p.general.kubeadm_timeout)
    assert timeout is not None and p.mode is not None
    config = Config(
        general=p.general,
        mode=p.mode,
        plugin=p.plugin,
        nodes=p.nodes,
        mgmt=tuple(_nets(p.mgmt.cidr, p.mgmt.cidr2)),
        pod=tuple(_nets(p.pod.cidr, p.pod.cidr2)),
        service=tuple(_nets(p.service.cidr, p.service.cidr2)),
        mtu=p.pod.mtu if p.pod.mtu is not None else DEFAULT_MTU,
        egress=_egress(p, allow_aaaa=allow_aaaa) if ipv6 else None,
        kubeadm_timeout=timeout,
        warnings=tuple(warnings),
        source=source,
    )
    return config


__all__ = ["IPv4Address", "IPv4Network", "IPv6Address", "IPv6Network", "timeout_seconds", "validate"]
