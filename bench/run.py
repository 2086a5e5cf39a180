#!/usr/bin/env python3
"""Benchmarks of lazyjack, printed as a markdown table next to the goals they are held to.

Measured, as wall time of whole processes (median of several runs):

- start-up: `lazyjack version` and `lazyjack validate` of the IPv6 example, against the bare
  interpreter (`python -c pass`), all run by this interpreter (sys.executable, not a shim);
- `validate` of generated dual-stack configs of 16, 64 and 254 nodes (IDs 2..255);
- on one node of those clusters, inside a throwaway network namespace (root only):
  `prepare`, `up --skip-phases kubelet,kubeadm` (two pod routes per other node: 506 for 254
  nodes), `down --skip-phases kubeadm` and `clean`, checking the route count after each.

Usage: sudo python3 bench/run.py [--quick]. The namespaces (ljb-*) and the
temporary directory are removed at the end, also after a failure, Ctrl-C or SIGTERM.
Exit status: 0 when every command did what it should (goals missed are reported, not
failed), 1 when a command failed or left the wrong number of routes.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "src" / "lazyjack" / "examples" / "ipv6.yaml"
SIZES = (16, 64, 254)
FIRST_ID = 2
MGMT = ("fd00:20::/64", "10.192.0.0/16")
PODS = ("fd00:40::/72", "10.244.0.0/16")
SERVICES = ("fd00:30::/110", "10.96.0.0/12")
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV = "nameserver 198.51.100.53\n"
COMMAND_TIMEOUT = 120.0

# Goals (seconds, or a ratio).
VERSION_RATIO_GOAL = 3.0
VALIDATE_254_GOAL = 1.0
UP_506_GOAL = 3.0
# Growth counts as linear when the cost of one more node between 64 and 254 nodes is at most
# this many times its cost between 16 and 64 nodes, plus NOISE seconds per node. For a cost
# that is purely quadratic in the node count the ratio is 4 (the mean sizes of the two ranges,
# 40 and 159 nodes); for a linear one it is 1.
LINEAR_FACTOR = 1.5
NOISE = 0.0005


class BenchFailed(Exception):
    """A command failed or did not do what it should; the benchmark's figures would mean nothing."""


# --- configs ---------------------------------------------------------------------------------


def node_name(node_id: int) -> str:
    return f"node-{node_id:03d}"


def generate_config(nodes: int) -> str:
    """A dual-stack cluster config of `nodes` nodes with IDs 2.., the first one the master, as YAML."""
    if not 1 <= nodes <= 254:
        raise ValueError(f"{nodes} nodes: IDs 2..255 allow 1 to 254")
    from ruamel.yaml import YAML

    data: dict[str, Any] = {
        "general": {
            "plugin": "ptp",
            "work-area": "/tmp/lazyjack",
            "mode": "dual-stack",
            "kubernetes-version": "v1.31.0",
            "insecure": True,
        },
        "topology": {
            node_name(i): {"interface": "eth1", "opmodes": "master" if i == FIRST_ID else "minion", "id": i}
            for i in range(FIRST_ID, FIRST_ID + nodes)
        },
        "mgmt_net": {"cidr": MGMT[0], "cidr2": MGMT[1]},
        "pod_net": {"cidr": PODS[0], "cidr2": PODS[1]},
        "service_net": {"cidr": SERVICES[0], "cidr2": SERVICES[1]},
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    # Keep the order above (general, topology, networks); ruamel types the attribute as None.
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


# --- running and timing ----------------------------------------------------------------------


@contextmanager
def bytecode_cache(*, source: bool = False) -> Iterator[None]:
    """Let the measured processes load compiled bytecode, as from an installed package, from a temporary
    PYTHONPYCACHEPREFIX (not the checkout), even where PYTHONDONTWRITEBYTECODE is set; `source`: never."""
    saved = {k: os.environ.get(k) for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    with tempfile.TemporaryDirectory(prefix="lazyjack-pycache-") as cache:
        if source:
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = cache
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def lazyjack_env() -> dict[str, str]:
    """The environment for lazyjack: this checkout's package first, no sudo user (no kubeconfig copy)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env.pop("SUDO_USER", None)
    return env


def timed(argv: Sequence[str], *, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchFailed(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}")
    return elapsed, result


def median_time(argv: Sequence[str], *, env: dict[str, str], runs: int, warm_up: bool = True) -> float:
    if warm_up:
        timed(argv, env=env)  # fills the page cache and the bytecode cache (bytecode_cache); not counted
    return statistics.median(timed(argv, env=env)[0] for _ in range(runs))


# --- a node in a namespace -------------------------------------------------------------------


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=60).stdout


@dataclass
class Sandbox:
    """A network namespace with eth1 (a veth whose peer stays inside) and a --root directory."""

    netns: str
    root: Path

    def lazyjack(self, config: Path, host: str, *args: str) -> float:
        argv = [
            "nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-m", "lazyjack",
            "--config", str(config), "--host", host, "--root", str(self.root), *args,
        ]  # fmt: skip
        return timed(argv, env=lazyjack_env())[0]

    def static_routes(self) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = []
        for family in ("-4", "-6"):
            routes += json.loads(sh("ip", "-n", self.netns, "-j", family, "route", "show", "proto", "static"))
        return routes

    def global_addresses(self) -> list[str]:
        info = json.loads(sh("ip", "-n", self.netns, "-j", "addr", "show", "dev", "eth1"))[0]
        return [a["local"] for a in info["addr_info"] if a.get("scope") == "global"]


@contextmanager
def sandbox(workdir: Path, tag: str) -> Iterator[Sandbox]:
    netns = f"ljb-{uuid.uuid4().hex[:8]}-{tag}"
    root = workdir / netns
    sh("ip", "netns", "add", netns)
    try:
        sh("ip", "-n", netns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
        for link in ("lo", "eth1p"):
            sh("ip", "-n", netns, "link", "set", link, "up")
        # Addresses usable at once: no duplicate address detection on this private link.
        sh("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.eth1.accept_dad=0")
        for sub in ("etc", "var/lib", "tmp"):
            (root / sub).mkdir(parents=True)
        (root / "etc/hosts").write_text(HOSTS)
        (root / "etc/resolv.conf").write_text(RESOLV)
        yield Sandbox(netns, root)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False, timeout=60)


def pod_route_count(routes: list[dict[str, Any]]) -> int:
    pods = [ipaddress.ip_network(p) for p in PODS]
    count = 0
    for route in routes:
        dst = route.get("dst", "")
        if "/" not in dst:
            continue
        network = ipaddress.ip_network(dst)
        if any(network.version == p.version and network.subnet_of(p) for p in pods):  # type: ignore[arg-type]
            count += 1
    return count


NODE_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("prepare", ("prepare",)),
    ("up", ("up", "--skip-phases", "kubelet,kubeadm")),
    ("down", ("down", "--skip-phases", "kubeadm")),
    ("clean", ("clean",)),
)


def node_cycle(box: Sandbox, config: Path, nodes: int) -> dict[str, float]:
    """prepare, up, down, clean on the master; check routes and files after each; the times."""
    host = node_name(FIRST_ID)
    expected = {"prepare": 0, "up": 2 * (nodes - 1), "down": 0, "clean": 0}
    times: dict[str, float] = {}
    for label, args in NODE_COMMANDS:
        times[label] = box.lazyjack(config, host, *args)
        count = pod_route_count(box.static_routes())
        if count != expected[label]:
            raise BenchFailed(f"{nodes} nodes: after {label}, {count} pod routes instead of {expected[label]}")
    if box.global_addresses() or box.static_routes() or (box.root / "etc/hosts").read_text() != HOSTS:
        raise BenchFailed(f"{nodes} nodes: clean did not restore the node (addresses, routes or /etc/hosts)")
    return times


# --- report ----------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    seconds: float | None
    runs: int
    goal: str = ""
    verdict: str = ""
    note: str = ""


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "ok" if ok else "**MISSED**"


def linear(times: dict[int, float]) -> tuple[bool, str]:
    """Whether the cost per extra node stays flat from 16-64 to 64-254 nodes, and the figures."""
    small, mid, large = SIZES
    first = (times[mid] - times[small]) / (mid - small)
    second = (times[large] - times[mid]) / (large - mid)
    ok = second <= LINEAR_FACTOR * max(first, 0.0) + NOISE
    return ok, f"{first * 1000:.2f} ms/node ({small}→{mid}), {second * 1000:.2f} ms/node ({mid}→{large})"


def table(rows: list[Row]) -> str:
    lines = [
        "| measurement | median | runs | goal | verdict | note |",
        "|---|---:|---:|---|---|---|",
    ]
    lines += [f"| {r.what} | {fmt(r.seconds)} | {r.runs} | {r.goal} | {r.verdict} | {r.note} |" for r in rows]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds through the finally blocks that delete the namespaces


@dataclass(frozen=True)
class Runs:
    """How many times each figure is measured."""

    startup: int
    validate: int
    node: int
    warm_up: bool = True


FULL = Runs(startup=20, validate=10, node=5)
QUICK = Runs(startup=3, validate=1, node=1, warm_up=False)


def run(runs: Runs) -> list[Row]:
    env = lazyjack_env()
    py = sys.executable
    rows: list[Row] = []

    def median(argv: list[str], count: int) -> float:
        return median_time(argv, env=env, runs=count, warm_up=runs.warm_up)

    bare = median([py, "-c", "pass"], runs.startup)
    rows.append(Row("`python -c pass` (bare interpreter)", bare, runs.startup))
    version = median([py, "-m", "lazyjack", "version"], runs.startup)
    ratio = version / bare
    rows.append(
        Row(
            "`lazyjack version`",
            version,
            runs.startup,
            f"≤ {VERSION_RATIO_GOAL:g}× bare",
            verdict(ratio <= VERSION_RATIO_GOAL),
            f"{ratio:.1f}× bare",
        )
    )
    example = median([py, "-m", "lazyjack", "validate", "--config", str(EXAMPLE)], runs.startup)
    rows.append(Row("`lazyjack validate` (ipv6 example)", example, runs.startup, "", "", f"{example / bare:.1f}× bare"))

    with tempfile.TemporaryDirectory(prefix="lazyjack-bench-") as tmp:
        workdir = Path(tmp)
        configs = {}
        for n in SIZES:
            configs[n] = workdir / f"cluster-{n}.yaml"
            configs[n].write_text(generate_config(n))
        validate = {
            n: median([py, "-m", "lazyjack", "validate", "--config", str(configs[n])], runs.validate) for n in SIZES
        }
        for n in SIZES:
            goal = f"≤ {VALIDATE_254_GOAL:g} s" if n == 254 else ""
            rows.append(
                Row(
                    f"`validate`, {n} nodes dual-stack",
                    validate[n],
                    runs.validate,
                    goal,
                    verdict(validate[n] <= VALIDATE_254_GOAL) if n == 254 else "",
                )
            )
        ok, note = linear(validate)
        rows.append(Row("`validate` growth", None, runs.validate, "linear", verdict(ok), note))

        if os.geteuid() != 0:
            rows.append(Row("node commands in a namespace", None, 0, "", "skipped", "needs root"))
            return rows
        cycles: dict[int, dict[str, float]] = {}
        for n in SIZES:
            with sandbox(workdir, str(n)) as box:
                samples = [node_cycle(box, configs[n], n) for _ in range(runs.node)]
            cycles[n] = {label: statistics.median(s[label] for s in samples) for label, _ in NODE_COMMANDS}
        for label, args in NODE_COMMANDS:
            for n in SIZES:
                routes = 2 * (n - 1) if label == "up" else 0
                goal = f"≤ {UP_506_GOAL:g} s" if label == "up" and n == 254 else ""
                ok = cycles[n][label] <= UP_506_GOAL
                note = f"{routes} pod routes verified" if label == "up" else ""
                rows.append(
                    Row(
                        f"`{' '.join(args)}`, {n} nodes",
                        cycles[n][label],
                        runs.node,
                        goal,
                        verdict(ok) if goal else "",
                        note,
                    )
                )
            ok, note = linear({n: cycles[n][label] for n in SIZES})
            rows.append(Row(f"`{label}` growth", None, runs.node, "linear", verdict(ok), note))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run of each (three of start-up), no warm-up: a smoke test, not figures to quote",
    )
    args = parser.parse_args(argv)
    runs = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with bytecode_cache():
            rows = run(runs)
    except BenchFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; namespaces and files removed", file=sys.stderr)
        return 130
    if args.quick:
        print("(--quick: single runs without warm-up; the figures are indicative only)\n")
    print(table(rows))
    print(
        f"\nGrowth: the cost of one more node from {SIZES[1]} to {SIZES[2]} nodes against that from {SIZES[0]} to "
        f"{SIZES[1]}; linear when at most {LINEAR_FACTOR:g}× (plus {NOISE * 1000:g} ms/node for noise); a purely "
        "quadratic cost gives 4×."
    )
    missed = [r.what for r in rows if r.verdict == "**MISSED**"]
    print()
    print("goals missed: " + ", ".join(missed) if missed else "all goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
