"""Tests for the validation rules: every problem names its field, and all problems come at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from lazyjack.config.load import parse_config
from lazyjack.config.rules import validate
from lazyjack.errors import ConfigError

if TYPE_CHECKING:
    from conftest import BadConfig, ConfigKit, TenProblems

TOKEN = "abcdef.0123456789abcdef"
CERT_HASH = "0123456789abcdef" * 4


def test_rule_problem_names_field(kit: ConfigKit, rule_case: BadConfig) -> None:
    source = parse_config(rule_case.text, name="config.yaml")

    with pytest.raises(ConfigError) as caught:
        validate(source, host=rule_case.host)

    problem = kit.find(caught.value, rule_case.path, *rule_case.fragments)
    assert f"  - {rule_case.path}" in str(caught.value)
    if rule_case.path.split(".")[0] in source.data:
        assert problem.line is not None, "a problem inside the file carries the line of its key"


@pytest.mark.parametrize("mode", ["ipv6", "ipv4", "dual-stack"])
def test_minimal_configs_are_valid(kit: ConfigKit, mode: str) -> None:
    config = kit.load(kit.variant(mode))

    assert config.mode == mode
    assert config.warnings == ()


# --- defaults and deprecated spellings ---------------------------------------------------------


def test_mode_defaults_to_ipv6(kit: ConfigKit) -> None:
    assert kit.load(kit.variant("ipv6", drop=["general.mode"])).mode == "ipv6"


def test_missing_general_means_defaults_and_token_required(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", drop=["general"]))

    kit.find(error, "general.token", "required unless insecure")
    kit.find(error, "general.token-cert-hash", "required unless insecure")
    assert len(error.problems) == 2


def test_empty_general_is_the_same_as_no_general(kit: ConfigKit) -> None:
    config = kit.load(kit.variant("ipv6", {"general": None}), require_token=False)

    assert config.mode == "ipv6"
    assert config.plugin == "bridge"


def test_plugin_defaults_to_bridge(kit: ConfigKit) -> None:
    assert kit.load(kit.variant("ipv6")).plugin == "bridge"


@pytest.mark.parametrize("plugin", ["bridge", "ptp"])
def test_general_plugin(kit: ConfigKit, plugin: str) -> None:
    config = kit.load(kit.variant("ipv6", {"general.plugin": plugin}))

    assert config.plugin == plugin
    assert config.warnings == ()


@pytest.mark.parametrize(
    "general_plugin",
    [pytest.param(None, id="alone"), pytest.param("ptp", id="agreeing-with-general")],
)
def test_top_level_plugin_is_accepted_with_warning(kit: ConfigKit, general_plugin: str | None) -> None:
    changes: dict[str, Any] = {"plugin": "ptp"}
    if general_plugin is not None:
        changes["general.plugin"] = general_plugin

    config = kit.load(kit.variant("ipv6", changes))

    assert config.plugin == "ptp"
    assert any("plugin" in w and "deprecated" in w for w in config.warnings)


def test_allow_ipv6_use_is_the_old_name_of_allow_aaaa_use(kit: ConfigKit) -> None:
    config = kit.load(kit.variant("ipv6", {"dns64.allow_ipv6_use": True}))

    assert config.allow_aaaa is True
    assert any("allow_ipv6_use" in w for w in config.warnings)


def test_dns64_and_nat64_sections_are_ignored_outside_ipv6_with_warning(kit: ConfigKit) -> None:
    ipv6 = kit.ipv6_config()
    config = kit.load(kit.variant("ipv4", {"dns64": ipv6["dns64"], "nat64": ipv6["nat64"]}))

    assert config.dns64 is None and config.nat64 is None
    assert {w.split()[0] for w in config.warnings} == {"dns64", "nat64"}


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opmodes",
    [
        pytest.param("dns64 nat64", id="own-node"),
        pytest.param("minion dns64 nat64", id="with-minion"),
        pytest.param("nat64,dns64", id="comma-separated"),
    ],
)
def test_dns64_nat64_node_placements(kit: ConfigKit, opmodes: str) -> None:
    changes = {
        "topology.my-master.opmodes": "master",
        "topology.gw": {"interface": "eth1", "opmodes": opmodes, "id": 9},
    }

    config = kit.load(kit.variant("ipv6", changes))

    assert set(config.nodes["gw"].roles) >= {"dns64", "nat64"}


# --- node IDs and sizes that are just right ----------------------------------------------------


@pytest.mark.parametrize(
    ("base", "changes"),
    [
        pytest.param("ipv6", {"topology.my-master.id": 255}, id="ipv6-id-255"),
        pytest.param("ipv4", {"topology.my-master.id": 255}, id="ipv4-id-255-in-16"),
        pytest.param(
            "ipv4",
            {"mgmt_net.cidr": "10.192.0.128/25", "topology.my-master.id": 130, "topology.a-minion.id": 254},
            id="ipv4-mgmt-25",
        ),
        pytest.param(
            "ipv4",
            {"mgmt_net.cidr": "10.0.0.0/8", "pod_net.cidr": "172.20.0.0/16", "service_net.cidr": "172.30.0.0/16"},
            id="ipv4-mgmt-8",
        ),
        pytest.param("ipv6", {"pod_net.cidr": "fd00:40::/112"}, id="ipv6-pod-112"),
        pytest.param("ipv6", {"pod_net.cidr": "fd00:10:20:30::/64"}, id="ipv6-pod-64"),
        pytest.param("ipv4", {"service_net.cidr": "10.96.0.0/23"}, id="ipv4-service-23"),
        pytest.param("ipv6", {"pod_net.mtu": 1280}, id="mtu-1280-ipv6"),
        pytest.param("ipv6", {"pod_net.mtu": 65535}, id="mtu-65535"),
        pytest.param("ipv4", {"pod_net.mtu": 576}, id="mtu-576-ipv4"),
        pytest.param("ipv6", {"dns64.cidr": "fd00:10:64::/48"}, id="dns64-prefix-48"),
        pytest.param("ipv6", {"nat64.v4_ip": "172.18.0.130"}, id="nat64-v4-ip-inside-pool"),
        pytest.param("ipv6", {"general.kubernetes-version": "latest"}, id="k8s-latest"),
        pytest.param("ipv6", {"general.kubernetes-version": "v1.11.0"}, id="k8s-1-11"),
        pytest.param("ipv6", {"general.kubernetes-version": "v1.32.0-alpha.1"}, id="k8s-suffix"),
        pytest.param("ipv6", {"topology.a-minion.interface": "enp10s0f1np1234"}, id="interface-15-chars"),
        pytest.param("ipv6", {"topology.a-minion.interface": "br-lan.100"}, id="interface-dot-dash"),
    ],
)
def test_values_at_the_edges_are_accepted(kit: ConfigKit, base: str, changes: dict[str, Any]) -> None:
    kit.load(kit.variant(base, changes))


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        pytest.param(None, 600.0, id="default-10m"),
        pytest.param("90s", 90.0, id="90s"),
        pytest.param("1h30m", 5400.0, id="1h30m"),
        pytest.param(300, 300.0, id="bare-seconds"),
    ],
)
def test_kubeadm_timeout(kit: ConfigKit, timeout: str | int | None, seconds: float) -> None:
    changes = {} if timeout is None else {"general.kubeadm-timeout": timeout}

    assert kit.load(kit.variant("ipv6", changes)).kubeadm_timeout == seconds


def test_mtu_is_kept(kit: ConfigKit) -> None:
    assert kit.load(kit.variant("ipv6", {"pod_net.mtu": 9000})).mtu == 9000
    assert kit.load(kit.variant("ipv6")).mtu == 1500


# --- token, hash and insecure mode -------------------------------------------------------------


@pytest.mark.parametrize(
    "cert_hash", [pytest.param(CERT_HASH, id="bare"), pytest.param(f"sha256:{CERT_HASH}", id="prefixed")]
)
def test_secure_config_with_token_and_hash(kit: ConfigKit, cert_hash: str) -> None:
    changes = {"general.insecure": False, "general.token": TOKEN, "general.token-cert-hash": cert_hash}

    config = kit.load(kit.variant("ipv6", changes))

    assert config.token == TOKEN
    assert config.ca_cert_hash == f"sha256:{CERT_HASH}"


def test_init_does_not_require_the_token(kit: ConfigKit) -> None:
    changes = {"general.insecure": False, "general.token": "<provide-token>"}

    config = kit.load(kit.variant("ipv6", changes), require_token=False)

    assert config.ca_cert_hash is None


def test_init_still_refuses_a_malformed_token(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", {"general.insecure": False, "general.token": "short"}), require_token=False)

    kit.find(error, "general.token", "'short'", "not a kubeadm token")
    assert len(error.problems) == 1


def test_placeholders_are_fine_when_insecure(kit: ConfigKit) -> None:
    changes = {"general.token": "<provide-token>", "general.token-cert-hash": "<provide-cert-hash>"}

    config = kit.load(kit.variant("ipv6", changes))

    assert config.token == "abcdef.abcdefghijklmnop"
    assert config.ca_cert_hash is None


def test_bad_insecure_value_does_not_add_token_problems(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", {"general.insecure": "yes"}))

    assert [p.path for p in error.problems] == ["general.insecure"]


# --- problems do not hide or invent each other -------------------------------------------------


def test_bad_mode_does_not_invent_ipv6_problems(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv4", {"general.mode": "ipv5"}))

    assert [p.path for p in error.problems] == ["general.mode"]


def test_bad_key_in_a_section_leaves_the_rest_checked(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", {"general.plugin": "flannel", "mgmt_net.cidr": "fd00:20::1/64"}))

    assert {p.path for p in error.problems} == {"general.plugin", "mgmt_net.cidr"}


def test_ten_problems_are_reported_at_once(kit: ConfigKit, ten_problems: TenProblems) -> None:
    error = kit.error(ten_problems.data)

    for path, fragment in ten_problems.expected:
        kit.find(error, path, fragment)
    assert len(error.problems) >= len(ten_problems.expected) >= 10
    assert len({p.path.split(".")[0] for p in error.problems}) >= 7  # spread over the sections
    message = str(error)
    assert message.startswith(f"config.yaml: {len(error.problems)} problems in the configuration:")
    assert message.count("problems in the configuration") == 1


def test_problems_are_in_file_order(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", {"general.mode": "ipv7", "dns64.ip": "x", "topology.a-minion.id": 1}))

    lines = [p.line or 0 for p in error.problems]
    assert 0 not in lines
    assert lines == sorted(lines)


def test_problem_line_points_at_the_key(kit: ConfigKit) -> None:
    text = kit.to_yaml(kit.variant("ipv6", {"topology.a-minion.id": "three"}))
    expected_line = text.decode().splitlines().index("    id: three") + 1

    error = kit.error(text)

    assert kit.find(error, "topology.a-minion.id").line == expected_line
    assert f"topology.a-minion.id (line {expected_line}): " in str(error)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"general": ["ipv6"]}, "got a list", id="list"),
        pytest.param({"topology.a-minion.id": None}, "got empty", id="empty"),
        pytest.param({"topology.a-minion.id": {"n": 3}}, "got a mapping", id="mapping"),
        pytest.param({"topology.a-minion.id": "3"}, "got text '3' (remove the quotes)", id="quoted"),
    ],
)
def test_wrong_type_is_described_once(kit: ConfigKit, changes: dict[str, Any], expected: str) -> None:
    message = str(kit.error(kit.variant("ipv6", changes)))

    assert expected in message
    for doubled in ("a list a list", "empty None", "a mapping a mapping"):
        assert doubled not in message


# --- --host ------------------------------------------------------------------------------------


def test_host_that_is_a_node_is_accepted(kit: ConfigKit) -> None:
    assert "a-minion" in kit.load(kit.variant("ipv6"), host="a-minion").nodes


def test_host_is_not_checked_when_the_topology_is_broken(kit: ConfigKit) -> None:
    error = kit.error(kit.variant("ipv6", {"topology.a-minion.opmodes": "bogus"}), host="a-minion")

    assert "--host" not in {p.path for p in error.problems}
