#!/usr/bin/env python3
"""Start-up of lazyjack: `lazyjack version` against the bare interpreter, and what `prepare` spends importing.

Measured as whole processes of this interpreter (sys.executable) with this checkout's src/
first on PYTHONPATH:

- `python -c pass` and `python -m lazyjack version`, in turns (A B A B ...), after a warm-up:
  the median wall and CPU time (user + sys) of each and the median of the pairwise ratios,
  held to the goal of at most 3x the bare interpreter;
- `prepare` of the master of a generated 16-node dual-stack config, inside a throwaway network
  namespace with a --root sandbox (root only), run with `python -X importtime`, then `clean`:
  the median wall time of prepare and of its imports, by package (pyroute2, pydantic, ruamel,
  lazyjack itself, the rest).

The modules are loaded from compiled bytecode, as from an installed package: the measured
processes write and read it in a temporary PYTHONPYCACHEPREFIX (not in the checkout), even
where PYTHONDONTWRITEBYTECODE is set. --source leaves bytecode off, so every run compiles
lazyjack's modules again (what a checkout run with PYTHONDONTWRITEBYTECODE=1 pays).

Usage: sudo python3 bench/startup.py [--runs N] [--source]. Exit status 0, or 1 when a command
failed; a missed goal is reported, not failed.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from run import (
    FIRST_ID,
    VERSION_RATIO_GOAL,
    BenchFailed,
    _on_sigterm,
    bytecode_cache,
    generate_config,
    lazyjack_env,
    node_name,
    sandbox,
)

NODES = 16
#: Libraries whose imports (with all they import) are reported on a line of their own, by package.
LIBRARIES = {"pyroute2": "pyroute2", "pydantic": "pydantic", "pydantic_core": "pydantic", "ruamel": "ruamel.yaml",
             "cryptography": "cryptography"}
OTHERS = "lazyjack and the standard library"


def measured(argv: Sequence[str], *, env: dict[str, str]) -> tuple[float, float, str]:
    """Run argv to its end: (wall seconds, CPU seconds of the child, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise BenchFailed(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stderr


def startup(env: dict[str, str], runs: int) -> list[str]:
    py = sys.executable
    bare, version = [py, "-c", "pass"], [py, "-m", "lazyjack", "version"]
    for argv in (bare, version):
        measured(argv, env=env)  # warm-up: page cache, bytecode
    samples: dict[str, list[tuple[float, float]]] = {"bare": [], "version": []}
    for _ in range(runs):
        samples["bare"].append(measured(bare, env=env)[:2])
        samples["version"].append(measured(version, env=env)[:2])
    wall = {k: statistics.median(w for w, _ in v) for k, v in samples.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
    ratio = statistics.median(v[0] / b[0] for v, b in zip(samples["version"], samples["bare"], strict=True))
    cpu_ratio = statistics.median(
        v[1] / b[1] for v, b in zip(samples["version"], samples["bare"], strict=True) if b[1] > 0
    )
    verdict = "ok" if ratio <= VERSION_RATIO_GOAL else "**MISSED**"
    return [
        "| measurement | wall (median) | CPU (median) | runs | goal | verdict | note |",
        "|---|---:|---:|---:|---|---|---|",
        f"| `python -c pass` | {wall['bare'] * 1000:.1f} ms | {cpu['bare'] * 1000:.1f} ms | {runs} |  |  |  |",
        f"| `lazyjack version` | {wall['version'] * 1000:.1f} ms | {cpu['version'] * 1000:.1f} ms | {runs} "
        f"| ≤ {VERSION_RATIO_GOAL:g}× bare | {verdict} | {ratio:.2f}× bare (wall), {cpu_ratio:.2f}× (CPU), "
        "medians of the pairs |",
    ]


def import_times(stderr: str) -> dict[str, float]:
    """Seconds spent importing, from a `-X importtime` log, by the library that caused each import:
    a module counts for the nearest of LIBRARIES among itself and the imports that led to it
    (asyncio for pyroute2 when pyroute2 imported it), else for lazyjack and the standard library."""
    entries: list[tuple[int, str, int]] = []  # (depth, module, own microseconds), in the log's order
    for line in stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        name = fields[2][1:]
        entries.append(((len(name) - len(name.lstrip(" "))) // 2, name.strip(), int(fields[0])))
    # The log lists an import after those it caused, one level deeper: walk it backwards.
    totals: dict[str, float] = defaultdict(float)
    owners: list[str | None] = []  # the library of each open ancestor, by depth
    for depth, module, micro in reversed(entries):
        del owners[depth:]
        top = module.split(".")[0]
        owner = LIBRARIES.get(top) or (owners[-1] if owners else None)
        owners.append(owner)
        totals[owner or OTHERS] += micro / 1e6
    return totals


def prepare_imports(env: dict[str, str], runs: int) -> list[str]:
    if os.geteuid() != 0:
        return ["(prepare in a namespace: skipped, needs root)"]
    host = node_name(FIRST_ID)
    walls: list[float] = []
    imports: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="lazyjack-startup-") as tmp:
        config = Path(tmp) / "cluster.yaml"
        config.write_text(generate_config(NODES))
        with sandbox(Path(tmp), "startup") as box:

            def lazyjack(*args: str, importtime: bool = False) -> tuple[float, float, str]:
                flags = ["-X", "importtime"] if importtime else []
                argv = ["nsenter", f"--net=/run/netns/{box.netns}", sys.executable, *flags, "-m", "lazyjack",
                        "--config", str(config), "--host", host, "--root", str(box.root), *args]
                return measured(argv, env=env)

            lazyjack("prepare")  # warm-up
            lazyjack("clean")
            for _ in range(runs):
                wall, _cpu, stderr = lazyjack("prepare", importtime=True)
                walls.append(wall)
                for package, seconds in import_times(stderr).items():
                    imports[package].append(seconds)
                lazyjack("clean")
    total = statistics.median(walls)
    rows = [
        f"`prepare`, master of {NODES} nodes (under `-X importtime`): {total * 1000:.0f} ms median wall, {runs} runs",
        "",
        "| imported | median | share of prepare |",
        "|---|---:|---:|",
    ]
    spent = {package: statistics.median(values + [0.0] * (runs - len(values))) for package, values in imports.items()}
    for package, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        rows.append(f"| {package} | {seconds * 1000:.0f} ms | {seconds / total:.0%} |")
    rows.append(f"| all imports | {sum(spent.values()) * 1000:.0f} ms | {sum(spent.values()) / total:.0%} |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each (default 20)")
    parser.add_argument("--source", action="store_true", help="no bytecode: every run compiles lazyjack's modules")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    with bytecode_cache(source=args.source):
        env = lazyjack_env()
        try:
            lines = startup(env, args.runs)
            lines += ["", *prepare_imports(env, max(args.runs // 4, 3))]
        except BenchFailed as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench: interrupted; namespaces and files removed", file=sys.stderr)
            return 130
    print("bytecode: " + ("off (every run compiles lazyjack)" if args.source else "cached, as installed"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
