"""Property: a configuration that validates renders every file for every node without an exception.

Hypothesis builds valid configurations of every mode, plugin, runtime and Kubernetes version,
with awkward but legal values: unicode and punctuation in paths and interface names, node names
and IDs at their limits, networks of unusual sizes. Each is validated, planned, and every file
lazyjack writes is rendered for every node (kubeadm for every API version, the CNI conflist,
named.conf or unbound.conf, tayga.conf, the kubelet drop-in, the hosts and resolv.conf edits), with
DNS64 and NAT64 on one node, on two, or the site's own. A second property
feeds arbitrary text into the string fields: the rules either refuse it (a ConfigError naming
the field) or the files are rendered. Derandomized, no example database: the same examples in
every run, fast enough for CI.
"""

from __future__ import annotations

import io
import json
import tempfile
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from fake_host import FakeNetlink, FakeRunner, FakeSysctl
from kubeadm_schema import check_stream
from lazyjack.commands.node import prepare_steps, up_steps
from lazyjack.config.load import parse_config
from lazyjack.config.model import Config
from lazyjack.config.plan import KUBEADM_API_VERSIONS, build_plan, kubeadm_api_for
from lazyjack.config.rules import validate
from lazyjack.errors import ConfigError
from lazyjack.host import Host
from lazyjack.host.files import Files
from lazyjack.render.etcfiles import clean_markers
from lazyjack.render.kubeadm import render_kubeadm_config
from lazyjack.steps.base import Context
from lazyjack.steps.containers import SupportContainer
from lazyjack.steps.files import ManagedFile, MarkedEdit
from lazyjack.steps.support import NativeServer

# No shrinking: a failure is reported with the example as generated (derandomized, so the next run
# meets it again), instead of minutes spent making it smaller.
SETTINGS = settings(max_examples=5, derandomize=True, database=None, deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOKEN = "abcdef.0123456789abcdef"
CERT_HASH = "sha256:" + "0123456789abcdef" * 4
VERSIONS = ["v1.11.0", "v1.12.3", "v1.13.5", "v1.14.0", "v1.15.1", "v1.21.14", "v1.22.0", "v1.30.99",
            "v1.31.0-alpha.1", "v1.31.2-rc.0+meta.7", "v1.36.0", "v1.999.0", "latest", None]
# Sample /etc/hosts and resolv.conf texts: CRLF, no final newline, tabs, bytes that are not UTF-8, markers.
HOSTS_TEXTS = ["", "127.0.0.1\tlocalhost\n", "127.0.0.1 localhost\r\n::1 ip6-localhost", "# x #[+]\n#[-] 10.0.0.1 a\n",
               "fd00::1 Master MASTER  # comment\n\udcff\udcfe\n"]
RESOLV_TEXTS = ["", "nameserver 198.51.100.53\n", "search example.test\nnameserver\t::1 # x\nnameserver 10.0.0.1",
                "options ndots:5\r\n"]

# --- strategies --------------------------------------------------------------------------------

# Letters and digits of several scripts, and every punctuation mark the rules allow in a work area.
PATH_CHARS = st.sampled_from(list("abcxyzABCZ019éüßñøДжλ日本語._-+@~"))
SOCKET_CHARS = st.sampled_from(list("abcXYZ09-_./é日\"'#%$&;{}[]()!*?=,:<>|`^"))
IFACE_CHARS = st.sampled_from(list("abcxyzEHT0189-_.éñ日@+=#%"))


def _label(draw: Any, size: int) -> str:
    """A DNS label of exactly `size` characters."""
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    first = draw(st.sampled_from(alnum))
    if size == 1:
        return first
    inner = draw(st.text(alphabet=alnum + "-", min_size=size - 2, max_size=size - 2))
    return first + inner + draw(st.sampled_from(alnum))


@st.composite
def node_names(draw: Any, count: int, *, limits: bool) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        kind = "max" if limits and not names else draw(st.sampled_from(["short", "long-label", "dotted", "max"]))
        if kind == "short":
            name = _label(draw, draw(st.integers(1, 12)))
        elif kind == "long-label":
            name = _label(draw, 63)
        elif kind == "dotted":
            name = ".".join(_label(draw, draw(st.integers(1, 20))) for _ in range(draw(st.integers(2, 4))))
        else:  # 253 characters: four labels of 63 and one more character
            name = ".".join(_label(draw, 63) for _ in range(3)) + "." + _label(draw, 61)
        names.add(name.strip("-.") or "n")
    return sorted(names)


@st.composite
def interfaces(draw: Any) -> str:
    text = draw(st.text(IFACE_CHARS, min_size=1, max_size=15))
    while len(text.encode()) > 15:
        text = text[:-1]
    return text if text not in (".", "..") and text else "eth1"


@st.composite
def work_areas(draw: Any, *, limits: bool) -> str:
    parts = draw(st.lists(st.text(PATH_CHARS, min_size=1, max_size=20), min_size=1, max_size=5))
    parts = [p if p not in (".", "..") else p + "x" for p in parts]
    if limits:  # unicode of three scripts, every punctuation mark allowed, and 255 bytes in all
        parts = ["é日Ж._-+@~", *parts]
        while len(("/" + "/".join(parts)).encode()) < 255:
            parts.append("ü" * min(20, (255 - len(("/" + "/".join(parts)).encode()) - 1) // 2) or "a")
        path = "/" + "/".join(parts)
        while len(path.encode()) > 255:
            path = path[:-1]
        return path.rstrip("/")
    path = "/" + "/".join(parts) + draw(st.sampled_from(["", "/"]))
    return path if len(path.encode()) <= 255 else "/" + parts[0]


def _v6net(draw: Any, region: int, prefixlen: int) -> IPv6Network:
    """A network of `prefixlen` inside fdRR::/16: random bits between the region and the prefix length."""
    bits = draw(st.integers(0, (1 << max(prefixlen - 16, 0)) - 1)) if prefixlen > 16 else 0
    value = (0xFD00 | region) << 112 | bits << (128 - prefixlen)
    return IPv6Network((value, prefixlen))


@st.composite
def ipv6_nets(draw: Any, ids: list[int]) -> dict[str, Any]:
    mgmt_len = draw(st.integers(48, 112))
    pod_len = draw(st.integers(40, 112))
    service_len = draw(st.integers(108, 120))
    support_len = draw(st.integers(64, 120))
    prefix_len = draw(st.sampled_from([32, 40, 48, 56, 64, 96]))
    support = _v6net(draw, 0x44, support_len)
    prefix = _v6net(draw, 0x55, prefix_len)
    if prefix_len == 96:  # RFC 6052: bits 64-71 zero
        packed = bytearray(prefix.network_address.packed)
        packed[8] = 0
        prefix = IPv6Network((bytes(packed), 96))
    size = support.num_addresses
    dns_ip, nat_ip = draw(st.lists(st.integers(2, min(size - 1, 10**6)), min_size=2, max_size=2, unique=True))
    v4len = draw(st.integers(16, 28))
    v4 = IPv4Network((draw(st.integers(0, (1 << (v4len - 8)) - 1)) << (32 - v4len) | 172 << 24, v4len))
    pool = list(v4.subnets(prefixlen_diff=1))[1]
    v4_ip = v4.network_address + draw(st.integers(2, v4.num_addresses - 2))
    return {
        "mgmt_net": {"cidr": str(_v6net(draw, 0x11, mgmt_len))},
        "pod_net": {"cidr": str(_v6net(draw, 0x22, pod_len))},
        "service_net": {"cidr": str(_v6net(draw, 0x33, service_len))},
        "support_net": {"cidr": str(support), "v4cidr": str(v4)},
        "nat64": {"v4_cidr": str(pool), "v4_ip": str(v4_ip), "ip": str(support.network_address + nat_ip)},
        "dns64": {"cidr": str(prefix), "ip": str(support.network_address + dns_ip),
                  "remote_server": str(IPv4Address(draw(st.integers(0, 2**32 - 1))))},
    }


@st.composite
def ipv4_nets(draw: Any) -> dict[str, Any]:
    mgmt_len = draw(st.integers(8, 24))
    mgmt = IPv4Network((10 << 24 | draw(st.integers(0, (1 << (mgmt_len - 8)) - 1)) << (32 - mgmt_len), mgmt_len))
    pod = IPv4Network((172 << 24 | draw(st.integers(16, 31)) << 16, 16))
    service_len = draw(st.integers(12, 23))
    service = IPv4Network((100 << 24 | 64 << 16, 10)).network_address + (
        draw(st.integers(0, (1 << max(service_len - 10, 0)) - 1)) << (32 - service_len))
    return {"mgmt_net": {"cidr": str(mgmt)}, "pod_net": {"cidr": str(pod)},
            "service_net": {"cidr": str(IPv4Network((service, service_len)))}}


IMAGES = ["lazyjack/tayga:latest", "registry.example:5000/team/bind9:v9.18-1", "ghcr.io/a_b/c__d---e:TAG.x",
          "tayga@sha256:" + "ab" * 32, "localhost/x"]


@st.composite
def configs(draw: Any, *, mode: str, runtime: str | None, plugin: str | None, limits: bool) -> dict[str, Any]:
    """A valid config of `mode` (and `runtime`, in ipv6 mode); with `limits`, values at their limits: IDs of 255
    (254 in IPv4), a node name of 253 characters, a work area of 255 bytes with unicode and every mark allowed."""
    count = draw(st.integers(1, 4))
    names = draw(node_names(count, limits=limits))
    top = 255 if mode == "ipv6" else 254  # the last IPv4 octet: 255 is the broadcast address of a /24
    ids = draw(st.lists(st.sampled_from([2, 3, 9, 10, 15, 16, 127, 128, 253, top]), min_size=count, max_size=count,
                        unique=True))
    if limits and top not in ids:
        ids[0] = top
    roles = ["master"] + ["minion" for _ in names[1:]]
    topology = {n: {"interface": draw(interfaces()), "opmodes": r, "id": i} for n, r, i in zip(names, roles, ids,
                                                                                               strict=True)}
    general: dict[str, Any] = {
        "mode": mode,
        "work-area": draw(work_areas(limits=limits)),
        "cri-socket": draw(st.sampled_from(["unix:///", "/"])) + draw(st.text(SOCKET_CHARS, min_size=1, max_size=30)),
        "kubeadm-timeout": draw(st.one_of(st.integers(1, 86400), st.sampled_from(["1s", "24h", "1h30m", "0h0m1s",
                                                                                  "23h59m59s", "90s"]))),
        "insecure": draw(st.booleans()),
    }
    version = draw(st.sampled_from(VERSIONS))
    if version is not None:
        general["kubernetes-version"] = version
    if not general["insecure"] or draw(st.booleans()):
        general |= {"token": TOKEN, "token-cert-hash": draw(st.sampled_from([CERT_HASH, CERT_HASH[7:].upper()]))}
    if plugin:
        general["plugin"] = plugin
    data: dict[str, Any] = {"general": general, "topology": topology}
    if mode == "ipv6":
        data |= draw(ipv6_nets(ids))
        general["dns64-nat64-runtime"] = runtime
        mgmt = ip_network(data["mgmt_net"]["cidr"])
        # Where DNS64 and NAT64 are: one node (1.x), two nodes, or the site's own (one of them, or both).
        dns64_at, nat64_at = draw(st.sampled_from([("node", "node"), ("node", "other"), ("site", "node"),
                                                   ("node", "site"), ("site", "site")]))
        gateway = draw(st.sampled_from([*names, "separate"]))
        if gateway == "separate":
            extra = "dns-" + names[0][:50].rstrip(".-")
            big = draw(st.sampled_from([4, 256, 4095, 65535]))
            gw_id = big if big < mgmt.num_addresses and big not in ids else max(ids) + 1 if max(ids) < 255 else 1
            if gw_id >= 2 and extra not in topology:
                topology[extra] = {"interface": draw(interfaces()), "opmodes": "", "id": gw_id}
                gateway = extra
            else:
                gateway = names[0]
        other = next((n for n in topology if n != gateway), None)
        opmodes = {"dns64": gateway if dns64_at == "node" else None,
                   "nat64": (other or gateway) if nat64_at == "other" else gateway if nat64_at == "node" else None}
        for role, node in opmodes.items():
            if node is not None:
                topology[node]["opmodes"] = (topology[node]["opmodes"] + f" {role}").strip()
        for name in [n for n, spec in topology.items() if not spec["opmodes"]]:
            del topology[name]  # a separate node that was left without a role
        site = {"dns64": ("external-server", 0xFF53), "nat64": ("external-gateway", 0xFF64)}
        for role, node in opmodes.items():
            if node is None:
                key, host = site[role]
                data[role] = {k: v for k, v in data[role].items() if k == "cidr"} | {key: str(mgmt[host])}
        if dns64_at == nat64_at == "site":
            del data["support_net"]
        if dns64_at == "node":
            allow = draw(st.sampled_from([None, True, False]))
            if allow is not None:
                data["dns64"][draw(st.sampled_from(["allow_aaaa_use", "allow_ipv6_use"]))] = allow
            data["dns64"]["image"] = draw(st.sampled_from(IMAGES))
            server = draw(st.sampled_from([None, "bind9", "unbound"]))
            if server is not None:
                data["dns64"]["server"] = server
        if nat64_at != "site":
            data["nat64"]["image"] = draw(st.sampled_from(IMAGES))
    else:
        v4 = draw(ipv4_nets())
        data |= v4
        if mode == "dual-stack":
            v6 = draw(ipv6_nets(ids))
            for key in ("mgmt_net", "pod_net"):
                first, second = (v4[key]["cidr"], v6[key]["cidr"])
                if draw(st.booleans()):
                    first, second = second, first
                data[key] = {"cidr": first, "cidr2": second}
            service = [v4["service_net"]["cidr"], v6["service_net"]["cidr"]]
            if draw(st.booleans()):
                service.reverse()
            data["service_net"] = {"cidr": service[0]} | ({"cidr2": service[1]} if draw(st.booleans()) else {})
    low = 576 if mode == "ipv4" else 1280
    mtu = draw(st.sampled_from([None, low, 1500, 9000, 65535]))
    if mtu is not None:
        data["pod_net"]["mtu"] = mtu
    return data


# --- rendering everything --------------------------------------------------------------------------


def _yaml(data: dict[str, Any]) -> bytes:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue().encode()


def _host(root: Path) -> Host:
    net = FakeNetlink()
    net.add_link("eth0")
    return Host(net=net, files=Files(root), sysctl=FakeSysctl({}), proc=FakeRunner())


def render_everything(config: Config) -> int:
    """Every file lazyjack writes for every node of `config`; returns how many were rendered."""
    with tempfile.TemporaryDirectory() as tmp:  # an empty root: the steps only read from it
        return _render_everything(config, Path(tmp))


def _render_everything(config: Config, root: Path) -> int:
    rendered = 0
    host = _host(root)
    for name in config.nodes:
        plan = build_plan(config, routes_of=name)
        node = plan.nodes[name]
        if node.is_cluster_node:
            # Every API version for the master and the first minion; the config's own for the rest.
            own = kubeadm_api_for(config.general.kubernetes_version or "latest")
            every = node.is_master or name == next((n.name for n in plan.cluster_nodes() if not n.is_master), None)
            for api in KUBEADM_API_VERSIONS if every else (own,):
                text = render_kubeadm_config(config, plan, node_name=name, api=api)
                rendered += 1
                if api == own:
                    assert check_stream(text) == [], text
                    for minor in (24, 25):  # the taint key changes at 1.25
                        render_kubeadm_config(config, plan, node_name=name, api=api, minor=minor)
        ctx = Context(host=host, config=config, plan=plan, node=node, root=root, kubeadm_api="v1beta4",
                      kubernetes_minor=31)
        for step in [*prepare_steps(ctx), *up_steps(ctx)]:
            if isinstance(step, MarkedEdit):
                for text in HOSTS_TEXTS if step.path == "/etc/hosts" else RESOLV_TEXTS:
                    # The edit undone gives the text back (text that holds markers already: cleaned).
                    assert clean_markers(step.transform(text)) == clean_markers(text)
                    rendered += 1
            elif isinstance(step, ManagedFile):
                content = step.content.decode()
                if step.path.endswith(".conflist"):
                    json.loads(content)
                rendered += 1
            elif isinstance(step, NativeServer | SupportContainer):
                conf = step.conf if isinstance(step, NativeServer) else step.server.conf_text
                assert conf.endswith("\n") and "\0" not in conf
                rendered += 1
    return rendered


def _validated(data: dict[str, Any]) -> Config:
    return validate(parse_config(_yaml(data), name="generated.yaml"), require_token=False)


#: (mode, DNS64/NAT64 runtime) of every kind of cluster.
KINDS = [("ipv6", "docker"), ("ipv6", "podman"), ("ipv6", "native"), ("ipv4", None), ("dual-stack", None)]
#: (plugin, limits): the default plugin, ptp, and bridge with every value at its limit.
VARIANTS = [(None, False), ("ptp", False), ("bridge", True)]


@pytest.mark.parametrize(("mode", "runtime"), KINDS, ids=[f"{m}-{r}" if r else m for m, r in KINDS])
@pytest.mark.parametrize(("plugin", "limits"), VARIANTS, ids=["default-plugin", "ptp", "bridge-limits"])
def test_every_valid_config_renders_every_file_for_every_node(
    mode: str, runtime: str | None, plugin: str | None, limits: bool
) -> None:
    @SETTINGS
    @given(data=configs(mode=mode, runtime=runtime, plugin=plugin, limits=limits))
    def check(data: dict[str, Any]) -> None:
        try:
            config = _validated(data)
        except ConfigError as exc:  # the strategy builds only configs the rules must accept
            pytest.fail(f"a legal config was refused:\n{exc}\n{_yaml(data).decode()}")
        assert (config.mode, config.plugin) == (mode, plugin or "bridge")
        if runtime is not None:
            assert config.general.dns64_nat64_runtime == runtime
        if limits:
            assert any(len(name) == 253 for name in config.nodes)
            assert max(n.id for n in config.nodes.values()) >= (255 if mode == "ipv6" else 254)
            assert len(config.work_area.encode()) >= 250 and "日" in config.work_area
        assert render_everything(config) > 0

    check()


# Text of every kind for the string fields a user writes: arbitrary text, and the characters that files
# and command lines treat specially (quotes, blanks, '%', '$', ':', comment marks, control characters,
# line separators, unicode of every plane), put into the field's valid value or replacing it.
SPECIAL = st.lists(st.sampled_from([" ", '"', "'", "\\", "%", "$", ":", ";", "#", "{", "}", "/", ".", "..", "\n",
                                    "\t", "\x00", "\x7f", "\u2028", "\u00a0", "é", "日", "\U0001f600"]),
                   min_size=1, max_size=3).map("".join)
AWKWARD = st.one_of(SPECIAL, st.text(max_size=30))
STRING_FIELDS = [("general", "work-area"), ("general", "cri-socket"), ("general", "kubernetes-version"),
                 ("dns64", "image"), ("nat64", "image"), ("dns64", "ip"), ("nat64", "v4_ip"), ("mgmt_net", "cidr"),
                 ("topology", "interface")]


@pytest.mark.parametrize(("mode", "runtime"), KINDS, ids=[f"{m}-{r}" if r else m for m, r in KINDS])
def test_any_text_in_a_string_field_is_refused_by_name_or_rendered(mode: str, runtime: str | None) -> None:
    @settings(SETTINGS, max_examples=20 if mode == "ipv6" else 8)
    @given(data=configs(mode=mode, runtime=runtime, plugin=None, limits=False), choice=st.data())
    def check(data: dict[str, Any], choice: st.DataObject) -> None:
        section, key = choice.draw(st.sampled_from(STRING_FIELDS))
        if section == "topology":
            node = next(iter(data["topology"]))
            target, key, path = data["topology"][node], "interface", f"topology.{node}.interface"
        elif section in data:
            target, path = data[section], f"{section}.{key}"
        else:
            return  # a section this mode does not use
        valid = str(target.get(key, "/tmp/lazyjack" if key == "work-area" else "unix:///run/x.sock"))
        awkward = choice.draw(AWKWARD)
        at = choice.draw(st.integers(1, len(valid)))  # after the first character, which makes it look right
        target[key] = choice.draw(st.sampled_from([valid[:at] + awkward + valid[at:], valid + awkward, awkward]))
        try:
            config = _validated(data)
        except ConfigError as exc:
            # Named at the field, or (an overlap, a clash) by a problem of another field that names it.
            assert any(p.path == path or path in p.message for p in exc.problems), str(exc)
            return
        assert render_everything(config) > 0

    check()
