"""Fixtures for tests against the real kernel, each inside a throwaway network namespace.

These tests need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); without it the whole directory is
skipped, with the reason shown. Every namespace made here is deleted, also when a test fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PREFIX = "ljt-"  # so that a namespace left by a crashed run is recognisable
NOT_ROOT = "tests/netns create network namespaces and veth links: run them as root"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.root)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason=NOT_ROOT))


AddVeth = Callable[..., None]


def _add_veth(netns: str, name: str, peer: str, *, up: bool = True) -> None:
    from pyroute2 import IPRoute

    with IPRoute(netns=netns, flags=0) as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=peer)
        if up:
            for end in (name, peer):
                ipr.link("set", index=ipr.link("get", ifname=end)[0]["index"], state="up")


@pytest.fixture
def netns() -> Iterator[str]:
    """The name of a new, empty network namespace; deleted afterwards."""
    from pyroute2 import netns as namespaces

    name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    namespaces.create(name)
    try:
        yield name
    finally:
        namespaces.remove(name)


@pytest.fixture
def add_veth(netns: str) -> AddVeth:
    """add_veth(name, peer, *, up=True): create a veth pair in `netns` (gone with it)."""

    def add(name: str, peer: str, *, up: bool = True) -> None:
        _add_veth(netns, name, peer, up=up)

    return add


@pytest.fixture
def veth_pair(add_veth: AddVeth) -> tuple[str, str]:
    """Names of a veth pair in `netns`, both ends up: ("ljt0", "ljt1")."""
    add_veth("ljt0", "ljt1")
    return ("ljt0", "ljt1")
