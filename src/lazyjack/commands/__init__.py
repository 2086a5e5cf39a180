"""Commands: for each lazyjack command, what it does for this host's roles."""

from __future__ import annotations

from collections.abc import Iterable

#: Phases of `up` that `--skip-phases` accepts (also honoured by down), for hosts where
#: kubelet or kubeadm are managed otherwise.
UP_PHASES = {
    "cni": "write the CNI configuration",
    "routes": "add routes to the other nodes' pod subnets",
    "kubelet": "systemctl daemon-reload and restart kubelet",
    "kubeadm": "kubeadm init (master) / join (minion), and reset at down",
}


def split_phases(text: str) -> list[str]:
    """The phases of a `--skip-phases` value: comma-separated, blanks ignored."""
    return [p.strip() for p in text.split(",") if p.strip()]


def unknown_phases(phases: Iterable[str]) -> str | None:
    """What is wrong with phases given to `--skip-phases` (names that are not phases of up), or None."""
    unknown = sorted(set(phases) - set(UP_PHASES))
    if not unknown:
        return None
    return f"--skip-phases: unknown phase(s) {', '.join(unknown)}; known: {', '.join(UP_PHASES)}"
