"""The DNS64/NAT64 servers lazyjack's native runtime starts for a test node (netns.cluster finds and kills them by
the node's --root sandbox on their command lines), and the network namespaces there are."""

from __future__ import annotations

from internet import sh

from netns.cluster import kill_servers, server_pids

__all__ = ["kill_servers", "namespaces", "server_pids"]


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}
