"""Named network namespaces as iproute2 keeps them: a file per namespace under /run/netns."""

from __future__ import annotations

from pathlib import Path

NETNS_DIR = Path("/run/netns")


def netns_exists(name: str) -> bool:
    """Whether `ip netns` knows a namespace of that name."""
    return (NETNS_DIR / name).exists()
