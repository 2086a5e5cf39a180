"""Tests for reading the configuration file: YAML problems become one ConfigError naming file, line and key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lazyjack.config import load as load_module
from lazyjack.config.load import MAX_BYTES, parse_config, read_config
from lazyjack.errors import ConfigError

if TYPE_CHECKING:
    from conftest import BadConfig, ConfigKit

FILE = "my-cluster.yaml"


def _refused(raw: bytes) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, name=FILE)
    return caught.value


def test_load_problem_names_file_field_and_line(load_case: BadConfig) -> None:
    error = _refused(load_case.text)

    assert error.source == FILE
    assert str(error).startswith(f"{FILE}: 1 problem in the configuration:")
    [problem] = error.problems
    assert problem.path == load_case.path
    for fragment in load_case.fragments:
        assert fragment in problem.message
    if load_case.path:
        assert f"  - {load_case.path} " in str(error)
    if load_case.line is not None:
        assert problem.line == load_case.line
        assert f"(line {load_case.line})" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        pytest.param(b"general:\n    mode: ipv6: dual\n", 2, 15, id="value-holds-colon"),
        pytest.param(b"general:\n    mode: ipv6\n  insecure: true\n", 3, 3, id="indent-goes-back"),
        pytest.param(b"general:\n\tmode: ipv6\n", 2, 1, id="tab"),
    ],
)
def test_yaml_syntax_error_gives_line_and_column(text: bytes, line: int, column: int) -> None:
    message = str(_refused(text))

    assert f"(line {line}): YAML error, column {column}:" in message


def test_alias_bomb_fails_fast() -> None:
    a = '["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    levels = [f"a: &a {a}"] + [
        f"{new}: &{new} [{', '.join(['*' + old] * 9)}]" for old, new in zip("abcdefghi", "bcdefghij", strict=True)
    ]
    started = time.monotonic()

    error = _refused("\n".join(levels).encode())

    # The budget stops the expansion (10**10 values) long before it could finish; the bound only
    # catches a hang, the message shows which check refused it.
    assert time.monotonic() - started < 30
    assert "anchors and aliases" in str(error)


def test_aliases_that_stay_small_are_followed() -> None:
    text = (
        b"general: {mode: ipv6, insecure: true}\n"
        b"topology:\n"
        b"    my-master: &node {interface: eth1, opmodes: master dns64 nat64, id: 2}\n"
        b"    a-minion: {<<: *node, opmodes: minion, id: 3}\n"
    )

    source = parse_config(text, name=FILE)

    assert source.data["topology"]["a-minion"] == {"interface": "eth1", "opmodes": "minion", "id": 3}


def test_oversized_file_is_refused_before_parsing() -> None:
    started = time.monotonic()

    error = _refused(b"#" * (MAX_BYTES + 1))

    # Only the size check (before decoding and parsing) says this; the bound only catches a hang.
    assert time.monotonic() - started < 30
    assert f"is {MAX_BYTES + 1} bytes" in str(error)
    assert MAX_BYTES == 4 * 1024 * 1024


def test_size_limit_is_inclusive(kit: ConfigKit, monkeypatch: pytest.MonkeyPatch) -> None:
    text = kit.to_yaml(kit.ipv6_config())
    monkeypatch.setattr(load_module, "MAX_BYTES", len(text))

    parse_config(text, name=FILE)
    error = _refused(text + b"\n")

    assert "at most" in str(error)


@pytest.mark.parametrize(
    ("prefix", "newline"),
    [pytest.param(b"\xef\xbb\xbf", b"\n", id="utf8-bom"), pytest.param(b"", b"\r\n", id="crlf")],
)
def test_windows_editors_files_are_read(kit: ConfigKit, prefix: bytes, newline: bytes) -> None:
    text = prefix + kit.to_yaml(kit.ipv6_config()).replace(b"\n", newline)

    source = parse_config(text, name=FILE)

    assert source.data["general"]["mode"] == "ipv6"


def test_values_are_plain_python_types() -> None:
    source = parse_config(b"general:\n    insecure: true\ntopology:\n    n:\n        id: 2\n        opmodes: x\n")

    assert type(source.data["general"]["insecure"]) is bool
    assert type(source.data["topology"]["n"]["id"]) is int
    assert type(source.data["topology"]["n"]["opmodes"]) is str
    assert type(source.data) is dict


def test_every_key_has_its_line(kit: ConfigKit) -> None:
    source = parse_config(kit.to_yaml(kit.ipv6_config()), name=FILE)

    assert source.line(("general",)) == 1
    assert source.line(("general", "insecure")) == 3
    assert source.line(("topology", "a-minion", "id")) == 12
    assert source.line(("topology", "a-minion", "no-such-key")) == 12 - 3  # falls back to the node
    assert source.line(("no-such-section",)) is None


def test_read_config_missing_file_names_path_and_examples(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as caught:
        read_config(missing)

    assert caught.value.source == str(missing)
    assert str(caught.value).startswith(f"{missing}: ")
    assert "does not exist" in str(caught.value)
    assert "examples" in str(caught.value)


def test_read_config_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        read_config(tmp_path)


def test_read_config_reads_the_file(kit: ConfigKit, tmp_path: Path) -> None:
    path = kit.write(tmp_path, kit.ipv6_config())

    source = read_config(path)

    assert source.path == str(path)
    assert source.data == kit.ipv6_config()


def test_round_trip_document_is_kept_for_init() -> None:
    text = b"# my cluster\ngeneral:\n    token: <provide-token>  # init fills this\n"

    source = parse_config(text)

    assert source.document["general"]["token"] == "<provide-token>"
    assert hasattr(source.document, "ca")  # ruamel's comment attribute: comments survive a rewrite
