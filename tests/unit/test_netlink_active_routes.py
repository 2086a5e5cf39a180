"""Netlink.active_routes answers as route() does for each destination, from a single dump of the table."""

from __future__ import annotations

import errno
from ipaddress import ip_address, ip_interface, ip_network

import pytest

from fake_host import FakeNetlink
from lazyjack.errors import NetlinkFailed
from lazyjack.host.netlink import RouteInfo

GW = ip_address("fd00:20::3")
OTHER_GW = ip_address("fd00:20::4")
DSTS = list(ip_network("fd00:40::/72").subnets(new_prefix=80))[2:5]


@pytest.fixture
def net() -> FakeNetlink:
    fake = FakeNetlink()
    fake.add_link("eth1")
    fake.add_address("eth1", ip_interface("fd00:20::2/64"), nodad=True)
    fake.add_route(DSTS[0], GW, dev="eth1")
    fake.add_route(DSTS[1], OTHER_GW)
    return fake


def test_same_answers_as_route(net: FakeNetlink) -> None:
    found = net.active_routes(DSTS)
    assert found == {dst: net.route(dst) for dst in DSTS}
    assert found[DSTS[0]] == RouteInfo(DSTS[0], GW, "eth1")
    assert found[DSTS[1]] is not None and found[DSTS[1]].gateway == OTHER_GW
    assert found[DSTS[2]] is None


def test_one_dump_for_all_destinations(net: FakeNetlink) -> None:
    # The second dump would be refused: answering for three destinations must not need it.
    net.fail_next("active_routes", errno.ENOBUFS, after=1)
    assert len(net.active_routes(DSTS)) == 3
    with pytest.raises(NetlinkFailed) as caught:
        net.active_routes(DSTS)
    assert caught.value.code == errno.ENOBUFS


def test_no_destinations_no_request(net: FakeNetlink) -> None:
    net.fail_next("active_routes", errno.EPERM)
    assert net.active_routes([]) == {}
