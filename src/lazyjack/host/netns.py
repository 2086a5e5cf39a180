"""Named network namespaces as iproute2 keeps them: a file per namespace under /run/netns."""

from __future__ import annotations

import hashlib
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def netns_exists(name: str) -> bool:
    """Whether `ip netns` knows a namespace of that name."""
    return (NETNS_DIR / name).exists()


def support_netns(root: Path) -> str:
    """The DNS64/NAT64 support namespace's name: fixed on a real host, unique per --root sandbox.

    Here, not with the support steps, because the lab finds it too without loading the steps.
    """
    if str(root) == "/":
        return "lazyjack-support"
    return "ljs-" + hashlib.sha256(str(root).encode()).hexdigest()[:10]
