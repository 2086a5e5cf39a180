"""The lab's files: its copy of the config, handed to every node, and each node's `--root` sandbox.

A node's sandbox starts as a fresh host's would: /etc/hosts naming the node, and an
/etc/resolv.conf with the upstream DNS server, which `prepare` then edits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lazyjack.config.model import Config

HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "# lazyjack lab: the node's resolver before prepare\nsearch lab.example\nnameserver {server}\n"


def lab_config(config: Config, source: Path, target: Path) -> str:
    """Copy the config for the lab; in IPv6 mode an unset DNS64/NAT64 runtime becomes native."""
    shutil.copyfile(source, target)
    if config.mode == "ipv6" and "dns64_nat64_runtime" not in config.general.model_fields_set:
        from lazyjack.config.edit import update_config_file

        update_config_file(target, {"dns64-nat64-runtime": "native"})
        return "general.dns64-nat64-runtime: native (unset in the config)"
    return f"general.dns64-nat64-runtime: {config.general.dns64_nat64_runtime}" if config.mode == "ipv6" else ""


def hand_out(source: Path, targets: list[Path]) -> None:
    """Give every node the same config file (the master's, after init wrote its token into it)."""
    for target in targets:
        shutil.copyfile(source, target)


def seed_sandbox(root: Path, node: str, upstream: str) -> None:
    """A node's --root: the directories lazyjack writes under, /etc/hosts and /etc/resolv.conf."""
    for sub, mode in (("etc", 0o755), ("tmp", 0o1777), ("var/lib", 0o755)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).chmod(mode)
    (root / "etc" / "hosts").write_text(HOSTS.format(name=node))
    (root / "etc" / "resolv.conf").write_text(RESOLV.format(server=upstream))
