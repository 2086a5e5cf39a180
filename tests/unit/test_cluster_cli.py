"""`lazyjack cluster` and the config keys it reads: bad input is exit 2 with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazyjack.cli import main
from lazyjack.config.load import parse_config
from lazyjack.config.rules import validate
from lazyjack.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "lazyjack" / "examples" / "ipv4.yaml"


@pytest.mark.parametrize(("argv", "message"), [
    (["cluster"], "cluster needs a command: prepare|up|down|clean|status"),
    (["cluster", "up", "--config", str(EXAMPLE), "--parallel", "0"], "--parallel 0: give 1 or more"),
    (["cluster", "up", "--config", str(EXAMPLE), "--local", "nobody"], "--local nobody: not a node of the topology"),
    (["cluster", "up", "--config", "/nonexistent/config.yaml"], "the configuration file does not exist"),
    (["--config", "-", "prepare"], "--config - (the config on stdin) is for --dry-run"),
])
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _config(general: str = "", node: str = "") -> bytes:
    text = EXAMPLE.read_text().replace("    insecure: true\n", f"    insecure: true\n{general}")
    return text.replace("        id: 2\n", f"        id: 2\n{node}").encode()


def test_ssh_keys_are_read() -> None:
    config = validate(parse_config(_config("    ssh-user: admin\n", "        ssh-host: 10.1.2.3\n")), host=None)
    assert config.general.ssh_user == "admin" and config.nodes["master"].ssh_host == "10.1.2.3"
    assert config.nodes["minion-1"].ssh_host is None


@pytest.mark.parametrize(("general", "node", "field", "message"), [
    ("    ssh-user: Root Admin\n", "", "general.ssh-user", "is not a user name"),
    ("", "        ssh-host: -oProxyCommand=evil\n", "topology.master.ssh-host", "not starting with '-'"),
    ("", "        ssh-host: two words\n", "topology.master.ssh-host", "no whitespace"),
    ("", "        ssh-hots: a\n", "topology.master", "ssh-host"),
])
def test_bad_ssh_keys(general: str, node: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(parse_config(_config(general, node)), host=None)
    text = str(info.value)
    assert field in text and message in text, text
