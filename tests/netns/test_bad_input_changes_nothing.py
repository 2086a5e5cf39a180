"""Every bad configuration of the catalogue, given to `prepare` on a real node: exit 2 and nothing changes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cluster import EXAMPLES, make_cluster

CATALOGUE = Path(__file__).resolve().parents[1] / "unit" / "conftest.py"

# Runs inside the node's namespace: one interpreter for all cases, each through cli.main.
RUNNER = """
import contextlib, io, json, sys
from lazyjack.cli import main
results = []
for path, host, root in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["prepare", "--config", path, "--host", host, "--root", root])
    results.append({"path": path, "code": code, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _catalogue() -> Any:
    spec = importlib.util.spec_from_file_location("bad_config_catalogue", CATALOGUE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def test_prepare_with_bad_config_changes_nothing(tmp_path: Path) -> None:
    catalogue = _catalogue()
    cases = catalogue.LOAD_CASES + catalogue.RULE_CASES
    cluster = make_cluster(tmp_path, (EXAMPLES / "ipv6.yaml").read_text(), ["my-master"])
    try:
        node = cluster.nodes["my-master"]
        before = node.snapshot()
        jobs = []
        expected = {}
        for number, case in enumerate(cases):
            path = tmp_path / "bad" / f"{number:03d}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(case.text)
            jobs.append([str(path), case.host or "my-master", str(node.root)])
            expected[str(path)] = case
        result = subprocess.run(
            ["nsenter", f"--net=/run/netns/{node.netns}", sys.executable, "-c", RUNNER, json.dumps(jobs)],
            capture_output=True, text=True, timeout=300, check=True,
        )
        outcomes = json.loads(result.stdout)
        assert len(outcomes) == len(cases)
        for outcome in outcomes:
            case = expected[outcome["path"]]
            assert outcome["code"] == 2, (case.id, outcome["stderr"])
            assert "Traceback" not in outcome["stderr"], case.id
            named = case.path or Path(outcome["path"]).name
            assert named in outcome["stderr"], (case.id, named, outcome["stderr"])
        assert node.snapshot() == before
    finally:
        cluster.destroy()
