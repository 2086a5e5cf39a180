"""Running the real lazyjack inside node namespaces: one node, or several at once, each with a log file.

Each run is `nsenter --net=/run/netns/lj-NODE python -m lazyjack --config C --host NODE --root R CMD`,
with this very lazyjack first on PYTHONPATH. Output goes to the node's log directory, so a lab
keeps every command's output for a look after a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lazyjack
from lazyjack.host.process import stop_groups
from lazyjack.lab.state import NodeState
from lazyjack.lab.topology import nsenter

#: Generous: prepare starts named and tayga; up without kubeadm is quick.
COMMAND_TIMEOUT = 300.0
#: After SIGTERM, how long lazyjack gets to roll its run back before SIGKILL.
ROLLBACK_GRACE = 20.0


@dataclass(frozen=True)
class NodeRunResult:
    node: str
    command: str
    returncode: int | None  # None: timed out
    seconds: float
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def lazyjack_argv(node: NodeState, command: str, *extra: str) -> list[str]:
    return [*nsenter(node.netns), sys.executable, "-m", "lazyjack", "--config", str(node.config),
            "--host", node.name, "--root", str(node.root), command, *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(lazyjack.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH", "")]))
    env.pop("SUDO_USER", None)  # no user kubeconfig to copy in a lab
    return env


def run_on(nodes: list[NodeState], command: str, *extra: str, timeout: float = COMMAND_TIMEOUT) -> list[NodeRunResult]:
    """Run `lazyjack COMMAND` on every node at once; wait for all. Interrupted: the runs are stopped too."""
    env = _env()
    started: list[tuple[NodeState, subprocess.Popen[bytes], Path, float]] = []
    try:
        for node in nodes:
            node.logs.mkdir(parents=True, exist_ok=True)
            log = node.logs / f"{len(list(node.logs.iterdir())) + 1:02d}-{command}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(lazyjack_argv(node, command, *extra), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)
            started.append((node, proc, log, time.monotonic()))
        results = []
        deadline = time.monotonic() + timeout
        for node, proc, log, start in started:
            try:
                code: int | None = proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                stop_groups([proc], grace=ROLLBACK_GRACE)
                with open(log, "a") as out:
                    out.write(f"\n(lazyjack lab: stopped after {timeout:g}s)\n")
                code = None
            results.append(NodeRunResult(node.name, command, code, time.monotonic() - start, log))
        return results
    except BaseException:
        stop_groups([proc for _, proc, _, _ in started], grace=ROLLBACK_GRACE)
        raise
