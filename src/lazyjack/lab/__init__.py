"""`lazyjack lab`: a config's whole topology on this machine, in network namespaces, running the real commands.

Like kind for kubeadm: one namespace per node (`lj-<node>`) on a management switch, a simulated
IPv4 internet for the DNS64/NAT64 node, `--root` sandboxes for the nodes' files, and the real
`lazyjack init/prepare/up/down/clean` run inside. Nothing here is imported by the other commands.

`commands` holds the lab commands; each is a short flow over the modules beside it: `preflight`
(checks before anything is made), `build` (namespaces, links, sandboxes, internet), `sandbox`
(the config copies and the nodes' files), `orchestration` (which lazyjack command runs on which
nodes, in which order), `probes` (test pods and what `check` tries), `status` and `shell` (exec).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazyjack.errors import HostError
from lazyjack.host.daemon import Daemons, DaemonsAPI
from lazyjack.host.process import Runner, RunnerAPI

#: Receives one line of progress at a time; the CLI prints it.
Report = Callable[[str], None]


class LabError(HostError):
    """The lab could not be built, checked or removed; the message says what and how to go on."""


def read_json(path: Path, *, missing: str, what: str) -> Any:
    """The JSON in `path`; a LabError saying `missing` when there is no such file, naming `what` otherwise."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(missing) from None
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read {what} {path}: {exc}") from None


@dataclass
class Tools:
    """The lab's side effects: programs and daemons."""

    proc: RunnerAPI = field(default_factory=Runner)
    daemons: DaemonsAPI = field(default_factory=Daemons)
