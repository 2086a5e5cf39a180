"""Fixtures for end-to-end tests: real daemons (named, tayga) in throwaway network namespaces.

They need root; without it the directory is skipped, with the reason shown. A missing
program is a failure, not a skip: CI installs them (scripts/bootstrap), and a skipped
end-to-end test would hide that the DNS64/NAT64 path was never exercised.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NOT_ROOT = "tests/e2e create network namespaces and run named and tayga: run them as root"
PROGRAMS = {
    "named": "bind9",
    "unbound": "unbound",
    "dig": "bind9-dnsutils",
    "tayga": "tayga",
    "iptables": "iptables",
    "ip6tables": "iptables",
    "curl": "curl",
    "ping": "iputils-ping",
    "ip": "iproute2",
    "nsenter": "util-linux",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.root)
            item.add_marker(pytest.mark.e2e)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason=NOT_ROOT))


@pytest.fixture(scope="session")
def e2e_programs() -> None:
    """Fails (never skips) when a program the end-to-end tests drive is missing."""
    missing = sorted({f"{program} ({package})" for program, package in PROGRAMS.items() if shutil.which(program) is None})
    if missing:
        pytest.fail(f"missing for tests/e2e: {', '.join(missing)}; run scripts/bootstrap", pytrace=False)
