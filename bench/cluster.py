#!/usr/bin/env python3
"""`lazyjack cluster up` over SSH for 3, 8 and 16 nodes, as a markdown table with the goal it is held to.

Each size gets fresh nodes (tests/e2e/sshcluster.py: a network namespace, a mount namespace and a
real sshd per node, kubeadm and systemctl stand-ins) and an IPv4 config with a master and N-1
minions. Measured, as wall time of the whole `lazyjack cluster up` process: the first run (every
node prepared and brought up) and a second run (nothing to change). The goal: 16 nodes take
well under 16/3 of the time of 3 nodes (the minions act at once); held to half of that.

Usage: sudo .venv/bin/python bench/cluster.py [--sizes 3,8,16] [--parallel N]. Every namespace,
process and file is removed at the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from sshcluster import make_ssh_cluster  # noqa: E402

SIZES = (3, 8, 16)
#: "Well under 16/3": at most half of it.
GOAL_FACTOR = 0.5
HEAD = """\
general:
    plugin: bridge
    mode: ipv4
    kubernetes-version: v1.31.0
    insecure: true
mgmt_net:
    cidr: 10.192.0.0/16
pod_net:
    cidr: 10.244.0.0/16
service_net:
    cidr: 10.96.0.0/12
topology:
"""


def names(size: int) -> list[str]:
    return ["master"] + [f"minion-{i}" for i in range(1, size)]


def config(size: int) -> str:
    nodes = "".join(f"    {name}:\n        interface: eth1\n        opmodes: {'master' if i == 0 else 'minion'}\n"
                    f"        id: {i + 2}\n" for i, name in enumerate(names(size)))
    return HEAD + nodes


class BenchFailed(Exception):
    pass


def measure(size: int, parallel: int) -> tuple[float, float]:
    cluster = make_ssh_cluster(config(size), names(size))
    try:
        times = []
        for _ in range(2):
            start = time.monotonic()
            result = cluster.cluster("up", "--parallel", str(parallel), timeout=900)
            times.append(time.monotonic() - start)
            if result.returncode != 0:
                raise BenchFailed(f"cluster up of {size} nodes failed:\n{result.stdout}\n{result.stderr}")
        return times[0], times[1]
    finally:
        cluster.destroy()


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="node counts (default: 3,8,16)")
    parser.add_argument("--parallel", type=int, default=16, help="cluster up --parallel (default: 16)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    signal.signal(signal.SIGTERM, _on_sigterm)
    rows = []
    try:
        for size in sizes:
            first, second = measure(size, args.parallel)
            rows.append((size, first, second))
            print(f"{size} nodes: {first:.1f} s, rerun {second:.1f} s", file=sys.stderr, flush=True)
    except BenchFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; namespaces, processes and files removed", file=sys.stderr)
        return 130
    print("| nodes | `cluster up` | second run (nothing to change) | per node |")
    print("|---|---|---|---|")
    for size, first, second in rows:
        print(f"| {size} | {first:.1f} s | {second:.1f} s | {first / size:.2f} s |")
    by = {size: first for size, first, _ in rows}
    if 3 in by and 16 in by:
        ratio, goal = by[16] / by[3], 16 / 3 * GOAL_FACTOR
        print(f"\n16 nodes / 3 nodes: {ratio:.2f} (16/3 = {16 / 3:.2f}; goal ≤ {goal:.2f}): "
              + ("ok" if ratio <= goal else "**MISSED**"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
