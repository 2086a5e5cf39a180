"""Each command imports what it uses and no more (docs/PERFORMANCE.md, start-up): checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "lazyjack" / "examples" / "ipv6.yaml"

#: What `version` and `--help` must not load: the libraries of other commands, and the standard
#: modules that cost start-up (pathlib pulls urllib and ipaddress, shutil bz2 and lzma).
HEAVY = ("pydantic", "ruamel", "pyroute2", "cryptography", "http", "lazyjack.config", "lazyjack.host",
         "lazyjack.steps", "lazyjack.lab", "dataclasses", "typing", "pathlib", "shutil", "socket", "threading")


def _modules_after(argv: list[str], *, code: int = 0) -> set[str]:
    """The modules loaded once lazyjack ran `argv` in a fresh interpreter (which must exit with `code`)."""
    script = (
        "import json, sys\n"
        "from lazyjack.cli import main\n"
        f"code = main({argv!r})\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] == code, done.stderr
    return set(result["modules"])


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("argv", [["version"], ["--help"], ["up", "--help"]], ids=["version", "help", "up-help"])
def test_version_and_help_load_nothing_heavy(argv: list[str]) -> None:
    assert _loaded(_modules_after(argv), HEAVY) == []


def test_validate_reads_the_config_without_netlink_or_engines() -> None:
    modules = _modules_after(["validate", "--config", str(EXAMPLE)])
    assert _loaded(modules, ("pydantic", "ruamel")) != []
    assert _loaded(modules, ("pyroute2", "http", "cryptography", "lazyjack.steps", "lazyjack.lab")) == []


def test_lab_status_needs_no_config_library() -> None:
    modules = _modules_after(["lab", "status", "--name", "no-such-lab"], code=1)  # there is none: exit 1
    assert _loaded(modules, ("pydantic", "ruamel", "pyroute2", "http", "cryptography")) == []
