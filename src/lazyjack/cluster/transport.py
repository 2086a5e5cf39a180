"""How a cluster run reaches a node: one interface, three thin implementations.

A transport turns "run this argv on node N" into a local argv (and environment) that does it:
as it is on this machine (`LocalTransport`), inside the node's network namespace
(`NamespaceTransport`, what the lab uses), or over SSH (`lazyjack.cluster.ssh.SshTransport`).
The runner starts, watches and stops those local processes the same way for all three.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Launch:
    """A local process that runs a command on a node."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: Stop it by writing Ctrl-C to its stdin (a remote terminal turns it into SIGINT) instead of SIGTERM.
    interrupt_by_tty: bool = False


class Transport(Protocol):
    """What the orchestrator needs from a way of reaching nodes."""

    kind: str

    def connect_argv(self, node: str) -> list[str] | None:
        """A command that opens the connection to `node` (None: nothing to open)."""

    def diagnose(self, node: str, output: str) -> str:
        """Why connecting to `node` failed, and the fix, from what can be checked (not message text)."""

    def launch(self, node: str, argv: list[str], *, root: bool, attached: bool) -> Launch:
        """The local process that runs `argv` on `node`.

        `root`: the command needs root (sudo -n when the node is reached as another user).
        `attached`: it acts on the node, so an interrupt must reach it (a terminal for SSH).
        """

    def close(self) -> None:
        """Close every connection opened."""


def _sudo(argv: list[str], *, root: bool) -> list[str]:
    return ["sudo", "-n", "--", *argv] if root and os.geteuid() != 0 else argv


class LocalTransport:
    """The node `cluster` runs on: its commands run here, as processes of their own."""

    kind = "local"

    def connect_argv(self, node: str) -> list[str] | None:
        return None

    def diagnose(self, node: str, output: str) -> str:
        return output.strip().splitlines()[-1] if output.strip() else "failed"

    def launch(self, node: str, argv: list[str], *, root: bool, attached: bool) -> Launch:
        return Launch(_sudo(argv, root=root))

    def close(self) -> None:
        pass


class NamespaceTransport:
    """Nodes that are network namespaces of this machine (the lab): `nsenter --net=...` per node.

    `namespaces` maps node -> namespace path; `env` is added to every command's environment.
    """

    kind = "namespace"

    def __init__(self, namespaces: dict[str, str], *, env: dict[str, str] | None = None) -> None:
        self.namespaces = namespaces
        self.env = env or {}

    def connect_argv(self, node: str) -> list[str] | None:
        return None

    def diagnose(self, node: str, output: str) -> str:
        return output.strip().splitlines()[-1] if output.strip() else "failed"

    def launch(self, node: str, argv: list[str], *, root: bool, attached: bool) -> Launch:
        return Launch(["nsenter", f"--net={self.namespaces[node]}", *_sudo(argv, root=root)], dict(self.env))

    def close(self) -> None:
        pass
