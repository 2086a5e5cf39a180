"""bench/run.py --quick runs to the end, prints its table, and leaves no namespace behind (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def _bench_namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listing.splitlines() if line.startswith("ljb-")}


def test_quick_benchmark_prints_its_table() -> None:
    before = _bench_namespaces()
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "| measurement | median | runs | goal | verdict | note |" in lines
    rows = [line for line in lines if line.startswith("| ")]
    for expected in (
        "`lazyjack version`",
        "`validate`, 254 nodes dual-stack",
        "`up --skip-phases kubelet,kubeadm`, 254 nodes",
        "`clean`, 16 nodes",
    ):
        assert any(expected in row for row in rows), expected
    assert any("506 pod routes verified" in row for row in rows)
    assert _bench_namespaces() <= before
