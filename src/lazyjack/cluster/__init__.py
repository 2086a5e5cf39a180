"""`lazyjack cluster`: the node commands run on every node of the topology, in phases, through a transport.

`phases` plans which node runs which command in which order (pure data); `transport` reaches a
node (this machine, a network namespace, or SSH in `ssh`); `runner` runs many node processes at
once with a bound and a log per node; `orchestrate` puts pre-flight, config hand-out and the
phases together and keeps per-node results; `report` turns them into lines, a table or JSON.
"""

from __future__ import annotations

from lazyjack.errors import LazyjackError, PreflightError


class ClusterError(LazyjackError):
    """A cluster run stopped; the message names the nodes and what to do."""

    exit_code = 1


class UnreachableNode(PreflightError):
    """A node cannot be reached or is not fit for the run (nothing was changed anywhere)."""
