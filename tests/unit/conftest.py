"""Shared helpers for the config tests: minimal valid configs, YAML writing, and the bad-config catalogue.

Test modules reach these through fixtures (`kit`, `ten_problems`) and parametrized
arguments, never by importing this file: other test directories have a conftest.py
too, and `import conftest` would find whichever was loaded last.

The catalogue (`LOAD_CASES`, `RULE_CASES`) is used twice: by the module that owns the
rule (the message names the field) and by test_cli (exit code 2, no traceback). Tests
ask for it by argument name: `load_case`, `rule_case`, or `bad_config` for both.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from lazyjack.config.load import MAX_BYTES, parse_config
from lazyjack.config.model import Config
from lazyjack.config.rules import validate
from lazyjack.errors import ConfigError, Problem

# --- valid configurations ------------------------------------------------------------------

TOKEN = "abcdef.0123456789abcdef"
CERT_HASH = "0123456789abcdef" * 4


def ipv6_config() -> dict[str, Any]:
    """The smallest complete IPv6 config: master (with DNS64/NAT64) and one minion."""
    return {
        "general": {"mode": "ipv6", "insecure": True},
        "topology": {
            "my-master": {"interface": "eth1", "opmodes": "master dns64 nat64", "id": 2},
            "a-minion": {"interface": "eth1", "opmodes": "minion", "id": 3},
        },
        "support_net": {"cidr": "fd00:10::/64", "v4cidr": "172.18.0.0/16"},
        "mgmt_net": {"cidr": "fd00:20::/64"},
        "pod_net": {"cidr": "fd00:40::/72"},
        "service_net": {"cidr": "fd00:30::/110"},
        "nat64": {"v4_cidr": "172.18.0.128/25", "v4_ip": "172.18.0.200", "ip": "fd00:10::200"},
        "dns64": {"remote_server": "8.8.8.8", "cidr": "fd00:10:64:ff9b::/96", "ip": "fd00:10::100"},
    }


def ipv6_external_config() -> dict[str, Any]:
    """An IPv6 cluster egressing through the site's own DNS64 server and NAT64 gateway on the management network."""
    data = ipv6_config()
    data["topology"]["my-master"]["opmodes"] = "master"
    del data["support_net"]
    data["nat64"] = {"external-gateway": "fd00:20::64"}
    data["dns64"] = {"cidr": "64:ff9b::/96", "external-server": "fd00:20::53"}
    return data


def ipv6_split_config() -> dict[str, Any]:
    """An IPv6 cluster with DNS64 on the master and NAT64 on the minion."""
    data = ipv6_config()
    data["topology"]["my-master"]["opmodes"] = "master dns64"
    data["topology"]["a-minion"]["opmodes"] = "minion nat64"
    return data


def ipv4_config() -> dict[str, Any]:
    """The smallest complete IPv4 config: a master and one minion."""
    return {
        "general": {"mode": "ipv4", "insecure": True},
        "topology": {
            "my-master": {"interface": "eth1", "opmodes": "master", "id": 2},
            "a-minion": {"interface": "eth1", "opmodes": "minion", "id": 3},
        },
        "mgmt_net": {"cidr": "10.192.0.0/16"},
        "pod_net": {"cidr": "10.244.0.0/16"},
        "service_net": {"cidr": "10.96.0.0/12"},
    }


def dual_stack_config() -> dict[str, Any]:
    """The smallest complete dual-stack config; IPv6 first everywhere."""
    return {
        "general": {"mode": "dual-stack", "insecure": True},
        "topology": {
            "my-master": {"interface": "eth1", "opmodes": "master", "id": 2},
            "a-minion": {"interface": "eth1", "opmodes": "minion", "id": 3},
        },
        "mgmt_net": {"cidr": "fd00:20::/64", "cidr2": "10.192.0.0/16"},
        "pod_net": {"cidr": "fd00:40::/72", "cidr2": "10.244.0.0/16"},
        "service_net": {"cidr": "fd00:30::/110", "cidr2": "10.96.0.0/12"},
    }


BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "ipv6": ipv6_config,
    "ipv6-external": ipv6_external_config,
    "ipv6-split": ipv6_split_config,
    "ipv4": ipv4_config,
    "dual-stack": dual_stack_config,
}

#: Value for `variant` that removes the key.
DELETE = object()


def variant(
    base: str | dict[str, Any], changes: Mapping[str, Any] | None = None, *, drop: Iterable[str] = ()
) -> dict[str, Any]:
    """A copy of a base config with changes at dotted paths ('topology.my-master.id'); DELETE or `drop` removes."""
    data = BASES[base]() if isinstance(base, str) else copy.deepcopy(base)
    for dotted, value in [*(changes or {}).items(), *((d, DELETE) for d in drop)]:
        *parents, last = dotted.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
        if value is DELETE:
            del target[last]
        else:
            target[last] = copy.deepcopy(value)
    return data


def to_yaml(data: Any) -> bytes:
    """Block-style YAML text of `data`, keys in insertion order."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue().encode()


def load(data: dict[str, Any] | bytes, *, host: str | None = None, require_token: bool = True) -> Config:
    """Validate a config given as a dict (dumped to YAML first) or as file bytes."""
    raw = data if isinstance(data, bytes) else to_yaml(data)
    return validate(parse_config(raw, name="config.yaml"), host=host, require_token=require_token)


def config_error(data: dict[str, Any] | bytes, *, host: str | None = None, require_token: bool = True) -> ConfigError:
    """The ConfigError that loading `data` raises (fails the test if it loads)."""
    with pytest.raises(ConfigError) as caught:
        load(data, host=host, require_token=require_token)
    return caught.value


def find(error: ConfigError, path: str, *fragments: str) -> Problem:
    """The problem at exactly `path` whose message holds every fragment; fail with the full list otherwise."""
    for problem in error.problems:
        if problem.path == path and all(f in problem.message for f in fragments):
            return problem
    pytest.fail(f"no problem at {path!r} with {fragments!r} in:\n{error}")


def write_config(directory: Path, data: dict[str, Any] | bytes, name: str = "config.yaml") -> Path:
    """Write a config (dict as YAML, or raw bytes) into `directory`."""
    path = directory / name
    path.write_bytes(data if isinstance(data, bytes) else to_yaml(data))
    return path


class ConfigKit:
    """The helpers above, handed to tests by the `kit` fixture."""

    ipv6_config = staticmethod(ipv6_config)
    variant = staticmethod(variant)
    to_yaml = staticmethod(to_yaml)
    load = staticmethod(load)
    error = staticmethod(config_error)
    find = staticmethod(find)
    write = staticmethod(write_config)


@pytest.fixture
def kit() -> ConfigKit:
    return ConfigKit()


@dataclass(frozen=True)
class TenProblems:
    """An IPv6 config with problems in every section, and (field, message fragment) for each."""

    data: dict[str, Any]
    expected: tuple[tuple[str, str], ...]


@pytest.fixture
def ten_problems() -> TenProblems:
    changes = {
        "general.plugin": "calico",
        "general.kubernetes-version": "1.31",
        "topology.my-master.id": 256,
        "topology.a-minion.interface": "eth0:1",
        "topology.a-minion.opmodes": "minion master",
        "mgmt_net.cidr": "fd00:20::1/64",
        "pod_net.cidr": "fd00:40::/120",
        "pod_net.mtu": 100,
        "service_net.cidr": "fd00:40::/110",
        "nat64.v4_ip": "10.0.0.1",
        "dns64.cidr": "fd00:10:64:ff9b::/80",
        "dns64.remote_server": "2001:db8::53",
        "support_net.color": "blue",
    }
    expected = (
        ("general.plugin", "'calico'"),
        ("general.kubernetes-version", "'vX.Y.Z'"),
        ("topology.my-master.id", "8 bits"),
        ("topology.a-minion.interface", "not a valid Linux interface name"),
        ("topology.a-minion.opmodes", "both master and minion"),
        ("topology", "exactly one"),
        ("mgmt_net.cidr", "the network is fd00:20::/64"),
        ("pod_net.cidr", "/112 or shorter"),
        ("pod_net.mtu", "1280-65535"),
        ("service_net.cidr", "overlaps pod_net.cidr"),
        ("nat64.v4_ip", "support_net.v4cidr"),
        ("dns64.cidr", "RFC 6052"),
        ("dns64.remote_server", "IPv4"),
        ("support_net.color", "unknown key"),
    )
    return TenProblems(variant("ipv6", changes), expected)


# --- the bad-config catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class BadConfig:
    """A config file that must be refused: what the message has to name.

    `path` is the field the problem is reported at; "" for a problem with the whole
    file (then the file's name is what the message names). `fragments` must all
    appear in that problem's message.
    """

    id: str
    text: bytes
    path: str
    fragments: tuple[str, ...] = ()
    host: str | None = None
    line: int | None = None


def _rule(
    case_id: str, base: str, changes: Mapping[str, Any], path: str, *fragments: str, host: str | None = None
) -> BadConfig:
    return BadConfig(case_id, to_yaml(variant(base, changes)), path, fragments, host)


def _file(case_id: str, text: bytes, path: str, *fragments: str, line: int | None = None) -> BadConfig:
    return BadConfig(case_id, text, path, fragments, line=line)


_VALID = to_yaml(ipv6_config())
_OVERSIZED = _VALID + b"#" * (MAX_BYTES - len(_VALID) + 1)
# Ten levels of nine aliases each: 9**10 values once expanded, a few hundred bytes on disk.
_ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{new}: &{new} [{', '.join(['*' + old] * 9)}]\n" for old, new in zip("abcdefghij", "bcdefghijk", strict=True)
    )
).encode()

LOAD_CASES: list[BadConfig] = [
    _file("syntax-unclosed-flow", b"general:\n    mode: [ipv6\ntopology: {}\n", "", "YAML error", "column 9", line=3),
    _file("syntax-tab-indent", b"general:\n\tmode: ipv6\n", "", "YAML error", "column 1", "'\\t'", line=2),
    _file("syntax-mapping-in-value", b"general:\n    mode: ipv6: dual\n", "", "column 15", line=2),
    _file("syntax-bad-indent", b"general:\n    mode: ipv6\n  insecure: true\n", "", "column 3", line=3),
    _file("syntax-undefined-alias", b"general: *nothing\n", "", "undefined alias 'nothing'", line=1),
    _file("syntax-two-documents", b"general: {}\n---\ntopology: {}\n", "", "another document", line=2),
    _file("empty-file", b"", "", "is empty"),
    _file("whitespace-only", b"\n   \n\t\n", "", "is empty"),
    _file("comments-only", b"# nothing here\n", "", "top level must be a mapping", "got empty"),
    _file("top-level-list", b"- general\n- topology\n", "", "top level must be a mapping", "got a list"),
    _file("top-level-text", b"hello\n", "", "top level must be a mapping", "got text"),
    _file("top-level-number", b"42\n", "", "top level must be a mapping", "got a number"),
    _file("duplicate-section", _VALID + b"general:\n  mode: ipv4\n", "general", "is given twice", "keep one"),
    _file(
        "duplicate-key-in-section",
        b"general:\n    mode: ipv6\n    insecure: true\n    mode: ipv4\n",
        "general.mode",
        "is given twice (lines 2 and 4)",
        line=4,
    ),
    _file(
        "duplicate-node",
        b"topology:\n    my-master:\n        id: 2\n    my-master:\n        id: 3\n",
        "topology.my-master",
        "is given twice (lines 2 and 4)",
    ),
    _file(
        "duplicate-key-flow-style", b"general: {mode: ipv6, mode: ipv4}\n", "general.mode", "is given twice (line 1)"
    ),
    _file("binary-nul-bytes", b"general:\x00\x01\x02\n", "", "binary file"),
    _file("binary-utf16", "general: {}\n".encode("utf-16"), "", "binary file"),
    _file("non-utf8-latin1", b"general:\n    work-area: /tmp/caf\xe9\n", "", "not UTF-8", line=2),
    _file("non-utf8-random-bytes", bytes(range(128, 256)), "", "not UTF-8", line=1),
    _file("alias-bomb", _ALIAS_BOMB, "", "expands to more than", "aliases"),
    _file("nesting-too-deep", b"general: " + b"{k: " * 1000, "", "nesting is too deep"),
    _file("larger-than-4-MiB", _OVERSIZED, "", f"at most {MAX_BYTES}"),
]

_NODE = {"interface": "eth1", "opmodes": "minion", "id": 4}
_LONG_NAME = "a" * 16

RULE_CASES: list[BadConfig] = [
    # unknown keys, with the closest valid one suggested
    _rule("unknown-section", "ipv6", {"mgmt_nett": {"cidr": "fd00:21::/64"}}, "mgmt_nett", "did you mean 'mgmt_net'"),
    _rule("unknown-section-no-match", "ipv6", {"xyzzy": 1}, "xyzzy", "unknown section", "valid keys: general"),
    _rule("misspelt-topology", "ipv6", {"topolgy": {}}, "topolgy", "did you mean 'topology'"),
    _rule("unknown-general-key", "ipv6", {"general.insecur": True}, "general.insecur", "did you mean 'insecure'"),
    _rule("unknown-node-key", "ipv6", {"topology.my-master.ids": 2}, "topology.my-master.ids", "did you mean 'id'"),
    _rule("unknown-dns64-key", "ipv6", {"dns64.allow_aaa_use": True}, "dns64.allow_aaa_use", "'allow_aaaa_use'"),
    _rule("unknown-pod-net-key", "ipv6", {"pod_net.mut": 1500}, "pod_net.mut", "did you mean 'mtu'"),
    # wrong types
    _rule("id-is-text", "ipv6", {"topology.my-master.id": "two"}, "topology.my-master.id", "whole number", "'two'"),
    _rule("id-is-quoted", "ipv6", {"topology.my-master.id": "2"}, "topology.my-master.id", "remove the quotes"),
    _rule("id-is-boolean", "ipv6", {"topology.my-master.id": True}, "topology.my-master.id", "a boolean true"),
    _rule("id-is-decimal", "ipv6", {"topology.my-master.id": 2.5}, "topology.my-master.id", "whole number"),
    _rule("id-missing", "ipv6", {"topology.my-master.id": DELETE}, "topology.my-master.id", "is required"),
    _rule("section-is-text", "ipv6", {"mgmt_net": "fd00:20::/64"}, "mgmt_net", "must be a mapping", "got text"),
    _rule("general-is-list", "ipv6", {"general": ["ipv6"]}, "general", "must be a mapping", "got a list"),
    _rule("topology-is-text", "ipv6", {"topology": "my-master"}, "topology", "must be a mapping", "got text"),
    _rule("node-is-text", "ipv6", {"topology.a-minion": "minion"}, "topology.a-minion", "must be a mapping"),
    _rule("mtu-is-text", "ipv6", {"pod_net.mtu": "big"}, "pod_net.mtu", "whole number", "'big'"),
    _rule("mtu-is-boolean", "ipv6", {"pod_net.mtu": True}, "pod_net.mtu", "whole number"),
    _rule("insecure-is-text", "ipv6", {"general.insecure": "yes"}, "general.insecure", "true or false"),
    _rule("opmodes-is-list", "ipv6", {"topology.a-minion.opmodes": ["minion"]}, "topology.a-minion.opmodes", "text"),
    _rule("interface-is-number", "ipv6", {"topology.a-minion.interface": 1}, "topology.a-minion.interface", "text"),
    _rule("cidr-is-number", "ipv6", {"mgmt_net.cidr": 10}, "mgmt_net.cidr", "must be text", "got a number"),
    # empty or missing sections
    _rule("mgmt-net-missing", "ipv6", {"mgmt_net": DELETE}, "mgmt_net", "is required"),
    _rule("mgmt-net-empty", "ipv6", {"mgmt_net": None}, "mgmt_net", "is empty"),
    _rule("pod-net-empty", "ipv6", {"pod_net": None}, "pod_net", "is empty"),
    _rule("service-net-empty", "ipv4", {"service_net": None}, "service_net", "is empty"),
    _rule("dns64-empty", "ipv6", {"dns64": None}, "dns64", "is empty"),
    _rule("dns64-missing-ipv6", "ipv6", {"dns64": DELETE}, "dns64", "required in ipv6 mode"),
    _rule("support-net-missing-ipv6", "ipv6", {"support_net": DELETE}, "support_net", "required in ipv6 mode"),
    _rule("nat64-ip-missing", "ipv6", {"nat64.ip": DELETE}, "nat64.ip", "is required"),
    _rule("nat64-pool-missing", "ipv6-split", {"nat64.v4_cidr": DELETE}, "nat64.v4_cidr", "is required", "a-minion"),
    _rule("dns64-ip-missing", "ipv6-split", {"dns64.ip": DELETE}, "dns64.ip", "is required", "my-master"),
    _rule("remote-server-missing", "ipv6", {"dns64.remote_server": DELETE}, "dns64.remote_server", "is required"),
    _rule(
        "support-net-missing-split",
        "ipv6-external",
        {"topology.a-minion.opmodes": "minion nat64", "nat64": ipv6_config()["nat64"]},
        "support_net",
        "required in ipv6 mode",
        "a-minion",
    ),
    _rule("nat64-missing-external", "ipv6-external", {"nat64": DELETE}, "nat64", "required in ipv6 mode"),
    _rule("topology-missing", "ipv6", {"topology": DELETE}, "topology", "is required"),
    _rule("topology-empty", "ipv6", {"topology": {}}, "topology", "is empty"),
    # mode and plugin
    _rule("mode-empty", "ipv6", {"general.mode": None}, "general.mode", "empty is not valid", "'ipv6'"),
    _rule("mode-unknown", "ipv4", {"general.mode": "ipv5"}, "general.mode", "'ipv5'", "'dual-stack'"),
    _rule("plugin-unknown", "ipv6", {"general.plugin": "flannel"}, "general.plugin", "'flannel'", "'ptp'"),
    _rule("top-level-plugin-unknown", "ipv6", {"plugin": "flannel"}, "plugin", "'flannel'", "'bridge' or 'ptp'"),
    _rule(
        "top-level-plugin-disagrees",
        "ipv6",
        {"general.plugin": "bridge", "plugin": "ptp"},
        "plugin",
        "disagrees with general.plugin",
    ),
    # opmodes
    _rule(
        "opmode-misspelt",
        "ipv6",
        {"topology.a-minion.opmodes": "minon"},
        "topology.a-minion.opmodes",
        "'minon' is not an opmode",
        "did you mean 'minion'",
    ),
    _rule("opmodes-empty", "ipv6", {"topology.a-minion.opmodes": " "}, "topology.a-minion.opmodes", "is empty"),
    _rule("opmode-twice", "ipv6", {"topology.a-minion.opmodes": "minion minion"}, "topology.a-minion.opmodes", "twice"),
    _rule("two-masters", "ipv6", {"topology.a-minion.opmodes": "master"}, "topology", "exactly one", "found 2"),
    _rule("no-master", "ipv4", {"topology.my-master.opmodes": "minion"}, "topology", "exactly one", "found 0"),
    _rule(
        "master-and-minion",
        "ipv6",
        {"topology.my-master.opmodes": "master minion dns64 nat64"},
        "topology.my-master.opmodes",
        "both master and minion",
    ),
    _rule(
        "dns64-without-nat64",
        "ipv6",
        {"topology.my-master.opmodes": "master dns64"},
        "topology",
        "needs NAT64",
        "nat64.external-gateway",
    ),
    _rule(
        "nat64-without-dns64",
        "ipv6",
        {"topology.my-master.opmodes": "master nat64"},
        "topology",
        "needs DNS64",
        "dns64.external-server",
    ),
    _rule(
        "two-dns64-nodes",
        "ipv6-split",
        {"topology.a-minion.opmodes": "minion dns64 nat64"},
        "topology",
        "only one node may have opmode dns64",
        "my-master, a-minion",
    ),
    _rule(
        "dns64-opmode-and-external-server",
        "ipv6",
        {"dns64.external-server": "fd00:20::53"},
        "topology.my-master.opmodes",
        "has opmode dns64",
        "dns64.external-server",
    ),
    _rule(
        "nat64-opmode-and-external-gateway",
        "ipv6-split",
        {"nat64.external-gateway": "fd00:20::64"},
        "topology.a-minion.opmodes",
        "has opmode nat64",
        "nat64.external-gateway",
    ),
    _rule("ipv6-without-dns64-node", "ipv6", {"topology.my-master.opmodes": "master"}, "topology", "dns64 and nat64"),
    _rule(
        "dns64-nat64-in-ipv4",
        "ipv4",
        {"topology.my-master.opmodes": "master dns64 nat64"},
        "topology.my-master.opmodes",
        "only used in ipv6 mode, not ipv4",
    ),
    _rule(
        "dns64-nat64-in-dual-stack",
        "dual-stack",
        {"topology.a-minion.opmodes": "minion dns64 nat64"},
        "topology.a-minion.opmodes",
        "only used in ipv6 mode, not dual-stack",
    ),
    _rule(
        "support-net-in-ipv4",
        "ipv4",
        {"support_net": {"cidr": "fd00:10::/64", "v4cidr": "172.18.0.0/16"}},
        "support_net",
        "only used in ipv6 mode, not ipv4",
    ),
    _rule(
        "support-net-in-dual-stack",
        "dual-stack",
        {"support_net": {"cidr": "fd00:10::/64", "v4cidr": "172.18.0.0/16"}},
        "support_net",
        "only used in ipv6 mode, not dual-stack",
    ),
    # node IDs and names
    _rule("id-one", "ipv6", {"topology.a-minion.id": 1}, "topology.a-minion.id", "too small", "start at 2"),
    _rule("id-negative", "ipv4", {"topology.a-minion.id": -3}, "topology.a-minion.id", "too small"),
    _rule("id-duplicate", "ipv6", {"topology.a-minion.id": 2}, "topology.a-minion.id", "already the ID of 'my-master'"),
    _rule("id-256-ipv6-pod-bits", "ipv6", {"topology.my-master.id": 256}, "topology.my-master.id", "8 bits", "pod_net"),
    _rule("id-256-ipv4-octet", "ipv4", {"topology.a-minion.id": 256}, "topology.a-minion.id", "last octet", "mgmt_net"),
    _rule(
        "id-outside-ipv4-mgmt-25",
        "ipv4",
        {"mgmt_net.cidr": "10.192.0.128/25"},
        "topology.my-master.id",
        "10.192.0.2",
        "outside 10.192.0.128/25",
    ),
    _rule(
        "id-is-ipv4-mgmt-broadcast",
        "ipv4",
        {"mgmt_net.cidr": "10.192.0.0/24", "topology.a-minion.id": 255},
        "topology.a-minion.id",
        "broadcast",
    ),
    _rule(
        "id-outside-ipv6-mgmt-126",
        "ipv6",
        {"mgmt_net.cidr": "fd00:20::/126", "topology.a-minion.id": 4},
        "topology.a-minion.id",
        "does not fit",
        "fd00:20::/126",
    ),
    _rule(
        "id-outside-dual-stack-ipv4-mgmt",
        "dual-stack",
        {"mgmt_net.cidr2": "10.192.0.0/29", "topology.a-minion.id": 9},
        "topology.a-minion.id",
        "outside 10.192.0.0/29",
    ),
    _rule("node-name-uppercase", "ipv6", {"topology.B-Minion": _NODE}, "topology.B-Minion", "lowercase DNS name"),
    # interface names
    _rule(
        "interface-16-chars",
        "ipv6",
        {"topology.a-minion.interface": _LONG_NAME},
        "topology.a-minion.interface",
        "1-15 bytes",
    ),
    _rule("interface-empty", "ipv6", {"topology.a-minion.interface": ""}, "topology.a-minion.interface", "not a valid"),
    _rule("interface-colon", "ipv6", {"topology.a-minion.interface": "eth0:1"}, "topology.a-minion.interface", "':'"),
    _rule("interface-slash", "ipv6", {"topology.a-minion.interface": "eth/0"}, "topology.a-minion.interface", "'/'"),
    _rule("interface-space", "ipv4", {"topology.a-minion.interface": "eth 0"}, "topology.a-minion.interface", "space"),
    # CIDRs and addresses
    _rule(
        "cidr-host-bits-ipv6",
        "ipv6",
        {"mgmt_net.cidr": "fd00:20::1/64"},
        "mgmt_net.cidr",
        "host bits set",
        "the network is fd00:20::/64",
    ),
    _rule(
        "cidr-host-bits-ipv4",
        "ipv4",
        {"pod_net.cidr": "10.244.1.0/16"},
        "pod_net.cidr",
        "host bits set",
        "the network is 10.244.0.0/16",
    ),
    _rule("cidr-no-prefix", "ipv6", {"service_net.cidr": "fd00:30::"}, "service_net.cidr", "needs a prefix length"),
    _rule("cidr-garbage", "ipv6", {"mgmt_net.cidr": "fd00:zz::/64"}, "mgmt_net.cidr", "not a valid CIDR"),
    _rule("cidr-prefix-too-long", "ipv4", {"mgmt_net.cidr": "10.192.0.0/33"}, "mgmt_net.cidr", "not a valid CIDR"),
    _rule("ip-is-cidr", "ipv6", {"nat64.ip": "fd00:10::200/64"}, "nat64.ip", "an address, not a CIDR"),
    _rule("ip-garbage", "ipv6", {"dns64.ip": "banana"}, "dns64.ip", "'banana'", "not a valid IP address"),
    _rule(
        "ipv6-mode-ipv4-mgmt", "ipv6", {"mgmt_net.cidr": "10.192.0.0/16"}, "mgmt_net.cidr", "is IPv4", "must be IPv6"
    ),
    _rule("ipv6-mode-ipv4-pod", "ipv6", {"pod_net.cidr": "10.244.0.0/16"}, "pod_net.cidr", "is IPv4", "must be IPv6"),
    _rule(
        "ipv4-mode-ipv6-service",
        "ipv4",
        {"service_net.cidr": "fd00:30::/110"},
        "service_net.cidr",
        "is IPv6",
        "must be IPv4",
    ),
    _rule(
        "dual-stack-mgmt-one-family",
        "dual-stack",
        {"mgmt_net.cidr2": DELETE},
        "mgmt_net.cidr2",
        "dual-stack mode needs an IPv4 CIDR",
    ),
    _rule(
        "dual-stack-pod-one-family",
        "dual-stack",
        {"pod_net.cidr": "10.244.0.0/16", "pod_net.cidr2": DELETE},
        "pod_net.cidr2",
        "needs an IPv6 CIDR",
    ),
    _rule(
        "dual-stack-pod-same-family",
        "dual-stack",
        {"pod_net.cidr2": "fd00:41::/72"},
        "pod_net.cidr2",
        "one IPv4 and one IPv6",
    ),
    _rule(
        "dual-stack-service-same-family",
        "dual-stack",
        {"service_net.cidr2": "fd00:31::/110"},
        "service_net.cidr2",
        "other family",
    ),
    _rule("ipv6-refuses-cidr2", "ipv6", {"mgmt_net.cidr2": "10.192.0.0/16"}, "mgmt_net.cidr2", "only used in dual"),
    _rule("ipv4-refuses-cidr2", "ipv4", {"pod_net.cidr2": "fd00:40::/72"}, "pod_net.cidr2", "only used in dual"),
    _rule("support-cidr-ipv4", "ipv6", {"support_net.cidr": "172.19.0.0/16"}, "support_net.cidr", "must be IPv6"),
    _rule("support-v4cidr-ipv6", "ipv6", {"support_net.v4cidr": "fd00:11::/64"}, "support_net.v4cidr", "must be IPv4"),
    _rule("nat64-pool-ipv6", "ipv6", {"nat64.v4_cidr": "fd00:11::/64"}, "nat64.v4_cidr", "must be IPv4"),
    _rule("nat64-ip-ipv4", "ipv6", {"nat64.ip": "172.18.0.201"}, "nat64.ip", "must be IPv6"),
    _rule("dns64-prefix-ipv4", "ipv6", {"dns64.cidr": "10.64.0.0/16"}, "dns64.cidr", "must be IPv6"),
    _rule(
        "remote-server-ipv6",
        "ipv6",
        {"dns64.remote_server": "2001:4860:4860::8888"},
        "dns64.remote_server",
        "must be an IPv4 address",
    ),
    # overlaps
    _rule(
        "pod-overlaps-mgmt",
        "ipv6",
        {"pod_net.cidr": "fd00:20::/72"},
        "pod_net.cidr",
        "overlaps mgmt_net.cidr 'fd00:20::/64'",
    ),
    _rule(
        "service-overlaps-pod",
        "ipv6",
        {"service_net.cidr": "fd00:40::/110"},
        "service_net.cidr",
        "overlaps pod_net.cidr",
    ),
    _rule(
        "service-overlaps-mgmt-ipv4",
        "ipv4",
        {"service_net.cidr": "10.192.0.0/12"},
        "service_net.cidr",
        "overlaps mgmt_net.cidr",
    ),
    _rule(
        "support-overlaps-mgmt",
        "ipv6",
        {"support_net.cidr": "fd00:20::/64"},
        "support_net.cidr",
        "overlaps mgmt_net.cidr",
    ),
    _rule(
        "dns64-prefix-overlaps-support",
        "ipv6",
        {"dns64.cidr": "fd00:10::/96"},
        "dns64.cidr",
        "overlaps support_net.cidr",
    ),
    _rule(
        "dual-stack-ipv4-pod-overlaps-mgmt",
        "dual-stack",
        {"mgmt_net.cidr2": "10.244.0.0/24"},
        "pod_net.cidr2",
        "overlaps mgmt_net.cidr2",
    ),
    # the support network
    _rule(
        "nat64-pool-outside-v4cidr",
        "ipv6",
        {"nat64.v4_cidr": "172.19.0.128/25"},
        "nat64.v4_cidr",
        "inside support_net.v4cidr",
    ),
    _rule("nat64-v4-ip-outside-v4cidr", "ipv6", {"nat64.v4_ip": "172.19.0.200"}, "nat64.v4_ip", "support_net.v4cidr"),
    _rule("nat64-ip-outside-support", "ipv6", {"nat64.ip": "fd00:11::200"}, "nat64.ip", "inside support_net.cidr"),
    _rule("dns64-ip-outside-support", "ipv6", {"dns64.ip": "fd00:11::100"}, "dns64.ip", "inside support_net.cidr"),
    _rule("dns64-ip-is-gateway", "ipv6", {"dns64.ip": "fd00:10::1"}, "dns64.ip", "support network gateway"),
    _rule("nat64-ip-equals-dns64-ip", "ipv6", {"nat64.ip": "fd00:10::100"}, "nat64.ip", "also dns64.ip"),
    _rule(
        "nat64-pool-holds-gateway",
        "ipv6",
        {"nat64.v4_cidr": "172.18.0.0/25"},
        "nat64.v4_cidr",
        "gateway 172.18.0.1",
    ),
    _rule(
        "dns64-prefix-length-80",
        "ipv6",
        {"dns64.cidr": "fd00:10:64:ff9b::/80"},
        "dns64.cidr",
        "/32, /40, /48, /56, /64, /96",
    ),
    # sizes
    _rule("ipv6-pod-no-room", "ipv6", {"pod_net.cidr": "fd00:40::/120"}, "pod_net.cidr", "/112 or shorter"),
    _rule("ipv4-pod-not-16", "ipv4", {"pod_net.cidr": "10.244.0.0/20"}, "pod_net.cidr", "must be a /16"),
    _rule("ipv4-pod-8", "ipv4", {"pod_net.cidr": "10.0.0.0/8"}, "pod_net.cidr", "must be a /16"),
    _rule("ipv4-service-24", "ipv4", {"service_net.cidr": "10.96.0.0/24"}, "service_net.cidr", "larger than /24"),
    _rule("ipv4-service-28", "ipv4", {"service_net.cidr": "10.96.0.0/28"}, "service_net.cidr", "larger than /24"),
    _rule("mtu-1279-ipv6", "ipv6", {"pod_net.mtu": 1279}, "pod_net.mtu", "1280-65535"),
    _rule("mtu-65536", "ipv6", {"pod_net.mtu": 65536}, "pod_net.mtu", "out of range"),
    _rule("mtu-1000-dual-stack", "dual-stack", {"pod_net.mtu": 1000}, "pod_net.mtu", "1280-65535"),
    _rule("mtu-575-ipv4", "ipv4", {"pod_net.mtu": 575}, "pod_net.mtu", "576-65535"),
    # token, hash and Kubernetes version
    _rule("token-malformed", "ipv6", {"general.token": "abc.def"}, "general.token", "'abc.def'", "not a kubeadm token"),
    _rule(
        "token-uppercase", "ipv6", {"general.token": "ABCDEF.0123456789ABCDEF"}, "general.token", "not a kubeadm token"
    ),
    _rule("token-is-number", "ipv6", {"general.token": 123456}, "general.token", "must be text"),
    _rule("cert-hash-short", "ipv6", {"general.token-cert-hash": "abc123"}, "general.token-cert-hash", "64 hex"),
    _rule(
        "cert-hash-not-hex", "ipv6", {"general.token-cert-hash": "g" * 64}, "general.token-cert-hash", "64 hex digits"
    ),
    _rule("token-missing-secure", "ipv6", {"general.insecure": False}, "general.token", "required unless insecure"),
    _rule(
        "cert-hash-missing-secure",
        "ipv4",
        {"general.insecure": DELETE, "general.token": TOKEN},
        "general.token-cert-hash",
        "required unless insecure",
    ),
    _rule(
        "token-placeholder-secure",
        "ipv6",
        {
            "general.insecure": False,
            "general.token": "<provide-token>",
            "general.token-cert-hash": CERT_HASH,
        },
        "general.token",
        "required unless insecure",
    ),
    _rule(
        "cert-hash-placeholder-secure",
        "ipv6",
        {
            "general.insecure": False,
            "general.token": TOKEN,
            "general.token-cert-hash": "<provide-cert-hash>",
        },
        "general.token-cert-hash",
        "required unless insecure",
    ),
    _rule(
        "k8s-version-no-v", "ipv6", {"general.kubernetes-version": "1.31.0"}, "general.kubernetes-version", "'latest'"
    ),
    _rule(
        "k8s-version-two-parts",
        "ipv6",
        {"general.kubernetes-version": "v1.31"},
        "general.kubernetes-version",
        "'vX.Y.Z'",
    ),
    _rule(
        "k8s-version-is-number",
        "ipv6",
        {"general.kubernetes-version": 1.31},
        "general.kubernetes-version",
        "must be text",
    ),
    _rule(
        "k8s-version-1-10", "ipv6", {"general.kubernetes-version": "v1.10.13"}, "general.kubernetes-version", "v1.11"
    ),
    _rule(
        "k8s-version-2-0",
        "ipv4",
        {"general.kubernetes-version": "v2.0.0"},
        "general.kubernetes-version",
        "not supported",
    ),
    # other general keys
    _rule("timeout-words", "ipv6", {"general.kubeadm-timeout": "ten minutes"}, "general.kubeadm-timeout", "duration"),
    _rule("timeout-boolean", "ipv6", {"general.kubeadm-timeout": True}, "general.kubeadm-timeout", "got a boolean"),
    _rule("timeout-decimal", "ipv6", {"general.kubeadm-timeout": 1.5}, "general.kubeadm-timeout", "decimal number"),
    _rule("timeout-zero", "ipv6", {"general.kubeadm-timeout": 0}, "general.kubeadm-timeout", "greater than zero"),
    _rule("timeout-negative", "ipv6", {"general.kubeadm-timeout": -5}, "general.kubeadm-timeout", "greater than zero"),
    _rule("timeout-years", "ipv6", {"general.kubeadm-timeout": "99999999999h"}, "general.kubeadm-timeout",
          "'99999999999h'", "at most 24h"),
    _rule("timeout-huge-seconds", "ipv6", {"general.kubeadm-timeout": 10**20}, "general.kubeadm-timeout",
          "100000000000000000000", "at most 24h"),
    _rule("timeout-25h", "ipv4", {"general.kubeadm-timeout": "24h1s"}, "general.kubeadm-timeout", "at most 24h"),
    # strings that the files lazyjack writes cannot hold (tayga.conf has no quoting, named.conf strings no quote,
    # docker binds no colon, systemd expands % and $)
    _rule("work-area-space", "ipv6", {"general.work-area": "/tmp/lazy jack"}, "general.work-area",
          "'/tmp/lazy jack'", "letters, digits"),
    _rule("work-area-quote", "ipv6", {"general.work-area": '/tmp/lazy"jack'}, "general.work-area", "letters, digits"),
    _rule("work-area-backslash", "ipv4", {"general.work-area": "/tmp/lazy\\jack"}, "general.work-area",
          "letters, digits"),
    _rule("work-area-colon", "ipv6", {"general.work-area": "/srv/a:b"}, "general.work-area", "letters, digits"),
    _rule("work-area-percent", "ipv6", {"general.work-area": "/srv/100%"}, "general.work-area", "letters, digits"),
    _rule("work-area-dollar", "ipv6", {"general.work-area": "/srv/$HOME"}, "general.work-area", "letters, digits"),
    _rule("work-area-dot-dot", "dual-stack", {"general.work-area": "/tmp/../etc"}, "general.work-area",
          "'.' or '..'"),
    _rule("work-area-long", "ipv6", {"general.work-area": "/" + "a" * 300}, "general.work-area", "at most 255 bytes"),
    _rule("control-character", "ipv4", {"general.cri-socket": "unix:///run/containerd.sock\x07"},
          "general.cri-socket", "control character U+0007"),
    _rule("interface-unicode-bytes", "ipv6", {"topology.a-minion.interface": "ñ" * 8}, "topology.a-minion.interface",
          "1-15 bytes"),
    _rule("interface-control-character", "ipv4", {"topology.minion-1.interface": "eth\x001"},
          "topology.minion-1.interface", "control character U+0000"),
    _rule("node-name-long-label", "ipv4", {"topology": {"m" * 64: {"interface": "eth1", "opmodes": "master", "id": 2}}},
          "topology." + "m" * 64, "63"),
    _rule("dns64-ip-zone", "ipv6", {"dns64.ip": 'fd00:10::100%e"th0'}, "dns64.ip", "zone"),
    _rule("mgmt-cidr-zone", "ipv6", {"mgmt_net.cidr": "fd00:20::%eth1/64"}, "mgmt_net.cidr", "zone"),
    _rule("dns64-image-spaces", "ipv6", {"dns64.image": "lazyjack/bind 9"}, "dns64.image", "image reference"),
    _rule("nat64-image-uppercase", "ipv6", {"nat64.image": "LazyJack/Tayga"}, "nat64.image", "image reference"),
    _rule("cri-socket-relative", "ipv6", {"general.cri-socket": "containerd.sock"}, "general.cri-socket", "unix"),
    _rule("work-area-relative", "ipv6", {"general.work-area": "tmp/lazyjack"}, "general.work-area", "absolute"),
    _rule("work-area-root", "ipv6", {"general.work-area": "/"}, "general.work-area", "other than /"),
    _rule(
        "allow-ipv6-use-disagrees",
        "ipv6",
        {"dns64.allow_aaaa_use": True, "dns64.allow_ipv6_use": False},
        "dns64.allow_ipv6_use",
        "disagrees",
    ),
    # the DNS64 server program and the site's own DNS64/NAT64
    _rule("dns64-server-unknown", "ipv6", {"dns64.server": "powerdns"}, "dns64.server", "'powerdns'", "'unbound'"),
    _rule("dns64-server-is-list", "ipv6", {"dns64.server": ["unbound"]}, "dns64.server", "'bind9' or 'unbound'"),
    _rule("unknown-external-key", "ipv6-external", {"dns64.external_server": "fd00:20::53"},
          "dns64.external_server", "did you mean 'external-server'"),
    _rule("external-server-not-an-address", "ipv6-external", {"dns64.external-server": "dns.example.com"},
          "dns64.external-server", "'dns.example.com'", "not a valid IP address"),
    _rule("external-server-ipv4", "ipv6-external", {"dns64.external-server": "10.0.0.53"},
          "dns64.external-server", "'10.0.0.53' is IPv4", "must be IPv6"),
    _rule("external-server-cidr", "ipv6-external", {"dns64.external-server": "fd00:20::53/64"},
          "dns64.external-server", "an address, not a CIDR"),
    _rule("external-server-off-mgmt-net", "ipv6-external", {"dns64.external-server": "fd00:99::53"},
          "dns64.external-server", "'fd00:99::53' is not on the management network", "dns64.external-via"),
    _rule("external-server-is-a-node", "ipv6-external", {"dns64.external-server": "fd00:20::3"},
          "dns64.external-server", "'fd00:20::3'", "management address of node 'a-minion'"),
    _rule("external-server-in-pod-net", "ipv6-external", {"dns64.external-server": "fd00:40::53"},
          "dns64.external-server", "inside pod_net.cidr"),
    _rule("external-server-in-prefix", "ipv6-external", {"dns64.external-server": "64:ff9b::808:808"},
          "dns64.external-server", "inside dns64.cidr"),
    _rule("external-via-off-mgmt-net", "ipv6-external",
          {"dns64.external-server": "fd00:99::53", "dns64.external-via": "fd00:98::1"},
          "dns64.external-via", "'fd00:98::1'", "router on the management network"),
    _rule("external-via-is-a-node", "ipv6-external",
          {"dns64.external-server": "fd00:99::53", "dns64.external-via": "fd00:20::2"},
          "dns64.external-via", "management address of node 'my-master'"),
    _rule("external-via-not-needed", "ipv6-external", {"dns64.external-via": "fd00:20::1"},
          "dns64.external-via", "not needed", "fd00:20::53"),
    _rule("external-via-without-server", "ipv6", {"dns64.external-via": "fd00:20::1"},
          "dns64.external-via", "only used with dns64.external-server"),
    _rule("external-via-ipv4", "ipv6-external",
          {"dns64.external-server": "fd00:99::53", "dns64.external-via": "10.0.0.1"}, "dns64.external-via", "IPv6"),
    _rule("external-gateway-off-mgmt-net", "ipv6-external", {"nat64.external-gateway": "fd00:99::64"},
          "nat64.external-gateway", "'fd00:99::64' is not on the management network", "router"),
    _rule("external-gateway-network-address", "ipv6-external", {"nat64.external-gateway": "fd00:20::"},
          "nat64.external-gateway", "network address of mgmt_net.cidr"),
    _rule("external-gateway-is-a-node", "ipv6-external", {"nat64.external-gateway": "fd00:20::2"},
          "nat64.external-gateway", "management address of node 'my-master'"),
    _rule("external-gateway-ipv4", "ipv6-external", {"nat64.external-gateway": "172.18.0.1"},
          "nat64.external-gateway", "must be IPv6"),
    _rule("external-gateway-is-number", "ipv6-external", {"nat64.external-gateway": 64},
          "nat64.external-gateway", "must be text", "got a number"),
    _rule("dns64-prefix-contains-wkp", "ipv6-external", {"dns64.cidr": "64:ff9b::/64"},
          "dns64.cidr", "contains the well-known prefix 64:ff9b::/96", "RFC 8215"),
    # --host
    _rule("host-misspelt", "ipv6", {}, "--host", "'my-mastr'", "did you mean 'my-master'", host="my-mastr"),
    _rule("host-unknown", "ipv4", {}, "--host", "'zeus'", "nodes: my-master, a-minion", host="zeus"),
]


def _ids(cases: list[BadConfig]) -> list[str]:
    return [case.id for case in cases]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every test that asks for `load_case`, `rule_case` or `bad_config` the matching cases."""
    for name, cases in (("load_case", LOAD_CASES), ("rule_case", RULE_CASES), ("bad_config", LOAD_CASES + RULE_CASES)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, cases, ids=_ids(cases))
