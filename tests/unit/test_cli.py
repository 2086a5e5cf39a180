"""Tests for the command line: exit codes, 1.x flag spellings, and `validate` output (text and JSON)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lazyjack import __version__
from lazyjack.cli import EXAMPLES, EXAMPLES_DIR, build_parser, main, translate_go_flags

if TYPE_CHECKING:
    from conftest import BadConfig, ConfigKit, TenProblems

PLAN_KEYS = {"mode", "dns_service_ip", "api_advertise_address", "kubeadm_api_version", "nodes"}
NODE_KEYS = {"id", "roles", "interface", "management_addresses", "routes"}
CLUSTER_NODE_KEYS = NODE_KEYS | {"pod_subnets", "pod_gateways", "nameserver"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def ipv6_file(kit: ConfigKit, tmp_path: Path) -> Path:
    return kit.write(tmp_path, kit.ipv6_config())


# --- every bad config: exit 2, one readable message, no traceback ------------------------------


def test_bad_config_exits_2_without_traceback(
    bad_config: BadConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_bytes(bad_config.text)
    argv = ["validate", "--config", str(path)]
    if bad_config.host is not None:
        argv += ["--host", bad_config.host]

    code, out, err = _run(argv, capsys)

    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"lazyjack: error: {path}: ")
    assert bad_config.path in err
    for fragment in bad_config.fragments:
        assert fragment in err


def test_bad_config_with_debug_is_still_a_config_error(kit: ConfigKit, tmp_path: Path, capsys: Any) -> None:
    path = kit.write(tmp_path, kit.variant("ipv6", {"topology.my-master.id": "two"}))

    code, _, err = _run(["--debug", "validate", "--config", str(path)], capsys)

    assert code == 2
    assert "Traceback" not in err
    assert "topology.my-master.id" in err


def test_ten_problems_in_one_message(
    kit: ConfigKit, ten_problems: TenProblems, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = kit.write(tmp_path, ten_problems.data)

    code, out, err = _run(["validate", "--config", str(path)], capsys)

    assert code == 2
    assert out == ""
    assert err.count("lazyjack: error:") == 1
    assert err.count("problems in the configuration") == 1
    listed = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(listed) >= 10
    for field, fragment in ten_problems.expected:
        assert any(line.startswith(f"  - {field} (line ") and fragment in line for line in listed), field


# --- the configuration file --------------------------------------------------------------------


def test_missing_config_names_path_and_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"

    code, out, err = _run(["validate", "--config", str(missing)], capsys)

    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert f"{missing}: " in err
    assert "does not exist" in err
    assert str(EXAMPLES_DIR) in err
    assert all(name in err for name in EXAMPLES)


def test_config_defaults_to_config_yaml(
    kit: ConfigKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    code, _, err = _run(["validate"], capsys)
    assert code == 2
    assert "config.yaml: " in err

    kit.write(tmp_path, kit.ipv6_config())
    code, out, _ = _run(["validate"], capsys)
    assert code == 0
    assert "config.yaml: valid" in out


def test_config_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["validate", "--config", str(tmp_path)], capsys)

    assert code == 2
    assert "is a directory" in err


def test_warnings_go_to_stderr(kit: ConfigKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = kit.write(tmp_path, kit.variant("ipv6", {"plugin": "bridge"}))

    code, out, err = _run(["validate", "--config", str(path)], capsys)

    assert code == 0
    assert "warning:" not in out
    assert "warning: the top-level 'plugin' is deprecated" in err


# --- validate output ---------------------------------------------------------------------------


def _json_plan(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = _run(["validate", "--config", str(path), "--output", "json"], capsys)
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


@pytest.mark.parametrize("example", EXAMPLES)
def test_json_plan_shape_for_every_example(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json_plan(EXAMPLES_DIR / example, capsys)

    assert set(plan) == PLAN_KEYS
    assert plan["mode"] == example.removesuffix(".yaml")
    assert plan["nodes"]
    for name, node in plan["nodes"].items():
        cluster = "master" in node["roles"] or "minion" in node["roles"]
        assert set(node) == (CLUSTER_NODE_KEYS if cluster else NODE_KEYS), name
        assert isinstance(node["routes"], list)
        for route in node["routes"]:
            assert set(route) == {"destination", "gateway"}
            ip_network(route["destination"])
            ip_address(route["gateway"])
        for address in node["management_addresses"]:
            ip_interface(address)


def test_json_plan_of_the_ipv6_example(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json_plan(EXAMPLES_DIR / "ipv6.yaml", capsys)
    master, minion = plan["nodes"]["my-master"], plan["nodes"]["a-minion"]

    assert plan["mode"] == "ipv6"
    assert ip_address(plan["dns_service_ip"]) == ip_address("fd00:30::a")
    assert ip_address(plan["api_advertise_address"]) == ip_address("fd00:20::2")
    assert plan["kubeadm_api_version"] == "kubeadm.k8s.io/v1beta4"
    assert master["id"] == 2
    assert master["roles"] == ["master", "dns64", "nat64"]
    assert master["interface"] == "eth1"
    assert [ip_interface(a) for a in master["management_addresses"]] == [ip_interface("fd00:20::2/64")]
    assert [ip_network(s) for s in master["pod_subnets"]] == [ip_network("fd00:40:0:0:2::/80")]
    assert [ip_address(g) for g in master["pod_gateways"]] == [ip_address("fd00:40:0:0:2::1")]
    assert ip_address(master["nameserver"]) == ip_address("fd00:10::100")
    assert _route_set(master) == {
        (ip_network("fd00:10:64:ff9b::/96"), ip_address("fd00:10::200")),
        (ip_network("172.18.0.128/25"), ip_address("172.18.0.200")),
        (ip_network("fd00:40:0:0:3::/80"), ip_address("fd00:20::3")),
    }
    assert minion["roles"] == ["minion"]
    assert [ip_interface(a) for a in minion["management_addresses"]] == [ip_interface("fd00:20::3/64")]
    assert _route_set(minion) == {
        (ip_network("fd00:10:64:ff9b::/96"), ip_address("fd00:20::2")),
        (ip_network("fd00:10::/64"), ip_address("fd00:20::2")),
        (ip_network("fd00:40:0:0:2::/80"), ip_address("fd00:20::2")),
    }


def _route_set(node: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {(ip_network(r["destination"]), ip_address(r["gateway"])) for r in node["routes"]}


def test_json_plan_node_without_cluster_role(kit: ConfigKit, tmp_path: Path, capsys: Any) -> None:
    changes = {
        "topology.my-master.opmodes": "master",
        "topology.gw": {"interface": "eth2", "opmodes": "dns64 nat64", "id": 9},
    }
    path = kit.write(tmp_path, kit.variant("ipv6", changes))

    gw = _json_plan(path, capsys)["nodes"]["gw"]

    assert set(gw) == NODE_KEYS
    assert gw["roles"] == ["dns64", "nat64"]


@pytest.mark.parametrize(
    ("base", "changes", "expected"),
    [
        pytest.param("ipv6", {}, ["DNS64:           bind9 at fd00:10::100 on my-master, forwarding to 8.8.8.8 as "
                                  "fd00:10:64:ff9b::808:808, runtime docker",
                                  "NAT64:           tayga at fd00:10::200 / 172.18.0.200 (pool 172.18.0.128/25) on "
                                  "my-master, runtime docker"], id="one-node"),
        pytest.param("ipv6-split", {"dns64.server": "unbound"},
                     ["DNS64:           unbound at fd00:10::100 on my-master, forwarding to 8.8.8.8 as "
                      "fd00:10:64:ff9b::808:808, runtime docker",
                      "NAT64:           tayga at fd00:10::200 / 172.18.0.200 (pool 172.18.0.128/25) on a-minion, "
                      "runtime docker"], id="split"),
        pytest.param("ipv6-external", {"dns64.external-server": "fd00:99::53", "dns64.external-via": "fd00:20::1"},
                     ["DNS64 prefix:    64:ff9b::/96",
                      "DNS64:           the site's, at fd00:99::53 via fd00:20::1",
                      "NAT64:           the site's, via fd00:20::64"], id="the-sites"),
    ],
)
def test_text_output_says_where_dns64_and_nat64_are(kit: ConfigKit, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    base: str, changes: dict[str, Any], expected: list[str]) -> None:
    code, out, _ = _run(["validate", "--config", str(kit.write(tmp_path, kit.variant(base, changes)))], capsys)
    assert code == 0
    for line in expected:
        assert line in out.splitlines(), out
    assert ("support network: fd00:10::/64 + 172.18.0.0/16" in out) == (base != "ipv6-external")


def test_text_output_names_mode_nodes_roles_addresses_routes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["validate", "--config", str(EXAMPLES_DIR / "ipv6.yaml")], capsys)
    lines = [line.split() for line in out.splitlines()]

    assert code == 0
    assert ["mode:", "ipv6"] in lines
    assert ["my-master", "(id", "2):", "master", "dns64", "nat64"] in lines
    assert ["a-minion", "(id", "3):", "minion"] in lines
    assert ["eth1:", "fd00:20::2/64"] in lines
    assert ["eth1:", "fd00:20::3/64"] in lines
    routes = [words[1:4] for words in lines if words[:1] == ["route"]]
    assert ["fd00:40:0:0:3::/80", "via", "fd00:20::3"] in routes
    assert ["fd00:10:64:ff9b::/96", "via", "fd00:10::200"] in routes


# --- option spellings --------------------------------------------------------------------------


def _argv_variants(config: str) -> list[list[str]]:
    return [
        ["--config", config, "validate"],
        ["validate", "--config", config],
        ["-c", config, "validate"],
        [f"--config={config}", "validate"],
        ["-config", config, "validate"],
        [f"-config={config}", "validate"],
        ["validate", "-config", config],
        ["validate", f"-config={config}"],
        ["-v", "4", "-config", config, "validate"],
        ["validate", "-config", config, "-v", "4"],
        ["-logtostderr", "-log_dir", "/tmp", "validate", "-config", config],
    ]


@pytest.mark.parametrize(
    "index",
    range(len(_argv_variants("X"))),
    ids=[" ".join(argv) for argv in _argv_variants("FILE")],
)
def test_options_before_or_after_command_and_go_spellings(
    index: int, ipv6_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv_variants(str(ipv6_file))[index]

    code, out, err = _run(argv, capsys)

    assert code == 0, err
    assert out.startswith(f"{ipv6_file}: valid")


@pytest.mark.parametrize(
    "host_args",
    [
        pytest.param(["-host", "a-minion"], id="-host NAME"),
        pytest.param(["-host=a-minion"], id="-host=NAME"),
        pytest.param(["--host", "a-minion"], id="--host NAME"),
    ],
)
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_host_option_reaches_validate(
    host_args: list[str], after: bool, ipv6_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = (
        ["validate", "--config", str(ipv6_file), *host_args]
        if after
        else [*host_args, "validate", "-c", str(ipv6_file)]
    )

    code, out, _ = _run(argv, capsys)

    assert code == 0
    assert "a-minion (id 3): minion  <- --host" in out.splitlines()


def test_unknown_host_is_a_config_error_with_suggestion(ipv6_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["-host", "a-minon", "-config", str(ipv6_file), "validate"], capsys)

    assert code == 2
    assert "--host: 'a-minon' is not a node of the topology; did you mean 'a-minion'?" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["-v", "4", "version"], ["--verbose", "4", "version"], id="-v N"),
        pytest.param(["-v=4", "version"], ["--verbose=4", "version"], id="-v=N"),
        pytest.param(["-config", "c.yaml", "up"], ["--config", "c.yaml", "up"], id="-config FILE"),
        pytest.param(["-config=c.yaml", "up"], ["--config=c.yaml", "up"], id="-config=FILE"),
        pytest.param(["-host", "n1", "up"], ["--host", "n1", "up"], id="-host NAME"),
        pytest.param(["-alsologtostderr", "-log_dir", "/x", "up"], ["up"], id="glog flags dropped"),
        pytest.param(["-log_dir=/x", "up"], ["up"], id="glog flag with ="),
    ],
)
def test_translate_go_flags(argv: list[str], expected: list[str]) -> None:
    assert translate_go_flags(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-v", "4", "validate"], id="before"),
        pytest.param(["validate", "-v", "4"], id="after"),
        pytest.param(["validate", "--verbose=4"], id="long"),
    ],
)
def test_verbosity_reaches_the_arguments(argv: list[str]) -> None:
    args = build_parser().parse_args(translate_go_flags(argv))

    assert args.verbose == 4


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["version"], capsys)

    assert code == 0
    assert out.split() == ["lazyjack", "version", __version__]
    assert err == ""


def test_version_does_not_read_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--config", str(tmp_path / "missing.yaml"), "version"], capsys)

    assert code == 0
    assert __version__ in out


@pytest.mark.parametrize("argv", [[], ["--config", "c.yaml"], ["-v", "2"]], ids=["nothing", "config-only", "-v-only"])
def test_no_command_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)

    assert code == 2
    assert out == ""
    assert "a command is required" in err
    assert "usage:" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        pytest.param(["--bogus", "version"], "--bogus", id="unknown-option-before"),
        pytest.param(["version", "--bogus"], "--bogus", id="unknown-option-after"),
        pytest.param(["validate", "-x"], "-x", id="unknown-short-option"),
        pytest.param(["frobnicate"], "frobnicate", id="unknown-command"),
        pytest.param(["validate", "--output", "yaml"], "yaml", id="bad-output-choice"),
        pytest.param(["-v", "loud", "version"], "loud", id="verbosity-not-a-number"),
        pytest.param(["validate", "--config"], "--config", id="option-without-value"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)

    assert code == 2
    assert out == ""
    assert err.startswith("lazyjack: usage error: ")
    assert fragment in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["validate", "--help"], ["-h"]], ids=["top", "validate", "-h"])
def test_help_returns_0_instead_of_exiting(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(argv, capsys)

    assert code == 0
    assert out.startswith("usage: lazyjack")


# --- a step that fails with an exception lazyjack did not expect ----------------------------------


def _failing_step(args: Any, out: list[str]) -> int:
    from lazyjack.steps.engine import StepFailed

    try:
        raise ValueError("tayga.conf cannot hold '/tmp/lazy jack'")
    except ValueError as exc:
        raise StepFailed("prepare failed at NAT64 server (tayga): ValueError: tayga.conf cannot hold "
                         "'/tmp/lazy jack'; rolled back 3 change(s) of this run", unexpected=True) from exc


def test_an_unexpected_exception_in_a_step_is_a_failure_of_that_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lazyjack import cli

    monkeypatch.setattr(cli, "_run", _failing_step)
    code, _, err = _run(["prepare"], capsys)
    assert code == 1
    assert err == ("lazyjack: error: prepare failed at NAT64 server (tayga): ValueError: tayga.conf cannot hold "
                   "'/tmp/lazy jack'; rolled back 3 change(s) of this run\n")
    assert "internal error" not in err


def test_debug_shows_the_traceback_of_an_unexpected_exception_in_a_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lazyjack import cli

    monkeypatch.setattr(cli, "_run", _failing_step)
    code, _, err = _run(["--debug", "prepare"], capsys)
    assert code == 1
    assert "Traceback (most recent call last):" in err
    assert "ValueError: tayga.conf cannot hold '/tmp/lazy jack'" in err
    assert err.rstrip().endswith("lazyjack: error: prepare failed at NAT64 server (tayga): ValueError: tayga.conf "
                                 "cannot hold '/tmp/lazy jack'; rolled back 3 change(s) of this run")


# --- lab: options it does not honour are refused; the node command is passed on untouched ---------


@pytest.fixture
def lab_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The lab functions the CLI calls, recording instead of building anything."""
    from lazyjack.lab import commands as lab

    calls: list[tuple[str, dict[str, Any]]] = []

    def record(name: str, result: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, kwargs))
            return result

        return call

    monkeypatch.setattr(lab, "lab_up", record("up", None))
    monkeypatch.setattr(lab, "lab_down", record("down", True))
    monkeypatch.setattr(lab, "lab_check", record("check", []))
    monkeypatch.setattr(lab, "lab_status", record("status", []))
    monkeypatch.setattr(lab, "exec_argv", record("exec", (["true"], {})))
    return calls


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        pytest.param(["--dry-run", "lab", "up"], "--dry-run", id="dry-run-up"),
        pytest.param(["--root", "/srv/sandbox", "lab", "up"], "--root", id="root"),
        pytest.param(["--host", "my-master", "lab", "check"], "--host", id="host"),
        pytest.param(["-host", "my-master", "lab", "status"], "--host", id="go-host"),
        pytest.param(["--config", "x.yaml", "lab", "status"], "--config", id="config-status"),
        pytest.param(["-v", "2", "lab", "check"], "--verbose", id="verbose-check"),
    ],
)
def test_lab_refuses_options_it_does_not_honour(
    argv: list[str], option: str, lab_calls: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"lazyjack: usage error: {option} ")
    assert "lab" in err.splitlines()[0]
    assert lab_calls == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e400", "86401", "ten"])
def test_lab_exec_timeout_must_be_a_bounded_number_of_seconds(
    value: str, lab_calls: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["lab", "exec", f"--timeout={value}", "my-master", "true"], capsys)
    assert (code, out) == (2, "")
    assert "--timeout" in err and repr(value) in err and "between" in err, err
    assert "Traceback" not in err
    assert lab_calls == []


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        pytest.param(["lab", "exec", "my-master", "echo", "-v", "x"], ["echo", "-v", "x"], id="-v"),
        pytest.param(["lab", "exec", "my-master", "--", "echo", "-v", "x"], ["echo", "-v", "x"], id="--"),
        pytest.param(["lab", "exec", "--timeout", "5", "my-master", "ls", "-config", "-host=x", "-log_dir", "d"],
                     ["ls", "-config", "-host=x", "-log_dir", "d"], id="go-flags-after-node"),
        pytest.param(["-v", "1", "lab", "exec", "--name", "demo", "a-minion", "sh", "-c", "-v"],
                     ["sh", "-c", "-v"], id="options-before"),
    ],
)
def test_lab_exec_passes_the_node_command_untouched(
    argv: list[str], command: list[str], lab_calls: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "-v":
        code, _, err = _run(argv, capsys)  # -v means nothing to lab exec: refused, the command never runs
        assert code == 2 and "--verbose" in err
        argv = argv[2:]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    (name, kwargs), = lab_calls
    assert (name, kwargs["argv"]) == ("exec", command)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["-config", "-v", "up"], ["--config", "-v", "up"], id="value-of--config"),
        pytest.param(["--host", "-host", "up"], ["--host", "-host", "up"], id="value-of---host"),
        pytest.param(["lab", "exec", "-c", "-v", "n", "-v"], ["lab", "exec", "-c", "-v", "n", "-v"], id="lab-exec"),
    ],
)
def test_go_flag_spellings_are_not_rewritten_where_they_are_values(argv: list[str], expected: list[str]) -> None:
    assert translate_go_flags(argv) == expected
