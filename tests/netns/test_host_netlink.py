"""Netlink against the real kernel in a namespace, and FakeNetlink held to the same answers.

Every test taking `net` runs twice: on a veth pair in a fresh namespace, and on the fake
kernel with the same links. Links: ljt0/ljt1 (up), ljt2/ljt3 (down).
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from ipaddress import ip_address, ip_interface, ip_network

import pytest

from fake_host import FakeNetlink
from lazyjack.addresses import IPAddr, IPIface, IPNet
from lazyjack.errors import NetlinkFailed
from lazyjack.host.netlink import Netlink, RouteInfo

V6_ADDR = ip_interface("fd00:20::1/64")
V4_ADDR = ip_interface("10.192.0.1/16")
V6_GW = ip_address("fd00:20::3")
V4_GW = ip_address("10.192.0.3")
V6_DST = ip_network("fd00:40:0:0:3::/80")
V4_DST = ip_network("198.51.100.0/24")


@pytest.fixture(params=["kernel", "fake"])
def net(request: pytest.FixtureRequest) -> Iterator[Netlink]:
    if request.param == "kernel":
        add_veth = request.getfixturevalue("add_veth")
        add_veth("ljt0", "ljt1")
        add_veth("ljt2", "ljt3", up=False)
        with Netlink(request.getfixturevalue("netns")) as nl:
            yield nl
    else:
        fake = FakeNetlink()
        fake.add_link("ljt0", peer="ljt1")
        fake.add_link("ljt2", peer="ljt3", up=False)
        yield fake


@pytest.fixture
def addressed(net: Netlink) -> Netlink:
    """`net` with V6_ADDR and V4_ADDR on ljt0, so that V6_GW and V4_GW are on-link."""
    assert net.add_address("ljt0", V6_ADDR, nodad=True)
    assert net.add_address("ljt0", V4_ADDR)
    return net


def refused(code: int, call: Callable[[], object]) -> NetlinkFailed:
    """Run call, which must raise NetlinkFailed with this errno; returns the error."""
    with pytest.raises(NetlinkFailed) as caught:
        call()
    assert caught.value.code == code, str(caught.value)
    return caught.value


# Links ---------------------------------------------------------------------------------------


def test_links_are_listed_and_looked_up(net: Netlink) -> None:
    assert {"lo", "ljt0", "ljt1", "ljt2", "ljt3"} <= set(net.link_names())
    assert net.link_exists("ljt0")
    assert not net.link_exists("ljt9")
    assert net.link_index("ljt0") != net.link_index("ljt1")


def test_a_missing_link_is_enodev(net: Netlink) -> None:
    for call in (
        lambda: net.link_index("ljt9"),
        lambda: net.get_mtu("ljt9"),
        lambda: net.set_mtu("ljt9", 1400),
        lambda: net.link_up("ljt9"),
        lambda: net.add_address("ljt9", V6_ADDR, nodad=True),
        lambda: net.add_route(V6_DST, None, dev="ljt9"),
    ):
        assert "ljt9" in str(refused(errno.ENODEV, call))


def test_a_name_longer_than_the_kernel_allows_is_erange(net: Netlink) -> None:
    refused(errno.ERANGE, lambda: net.link_exists("ljt-much-too-long-name"))


def test_mtu_is_read_and_set(net: Netlink) -> None:
    assert net.get_mtu("ljt0") == 1500
    net.set_mtu("ljt0", 1450)
    assert net.get_mtu("ljt0") == 1450
    net.set_mtu("ljt0", 1450)
    assert net.get_mtu("ljt0") == 1450


def test_an_impossible_mtu_is_einval(net: Netlink) -> None:
    refused(errno.EINVAL, lambda: net.set_mtu("ljt0", 10))
    assert net.get_mtu("ljt0") == 1500


def test_an_mtu_below_1280_drops_ipv6(addressed: Netlink) -> None:
    addressed.set_mtu("ljt0", 1279)
    assert addressed.addresses("ljt0") == [V4_ADDR]
    refused(errno.EINVAL, lambda: addressed.add_address("ljt0", V6_ADDR, nodad=True))


def test_link_up(net: Netlink) -> None:
    assert not net.is_up("ljt2")
    net.link_up("ljt2")
    assert net.is_up("ljt2")
    net.link_up("ljt2")
    assert net.is_up("ljt2")


def test_link_down_drops_routes_and_ipv6_addresses(addressed: Netlink) -> None:
    addressed.add_route(V6_DST, V6_GW)
    addressed.add_route(V4_DST, V4_GW)
    addressed.link_down("ljt0")
    assert not addressed.is_up("ljt0")
    assert addressed.addresses("ljt0") == [V4_ADDR]
    assert addressed.routes() == []
    assert addressed.route(V4_ADDR.network) is None
    addressed.link_down("ljt0")
    addressed.link_up("ljt0")
    # Only the IPv4 connected route comes back.
    assert addressed.route(V4_ADDR.network) == RouteInfo(V4_ADDR.network, None, "ljt0")
    assert addressed.routes() == []


def test_delete_link_twice_takes_the_veth_peer_too(net: Netlink) -> None:
    assert net.delete_link("ljt0") is True
    assert net.delete_link("ljt0") is False
    assert not net.link_exists("ljt0")
    assert not net.link_exists("ljt1")


# Addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("iface", [V6_ADDR, V4_ADDR], ids=["ipv6", "ipv4"])
def test_add_address_twice_then_delete_twice(net: Netlink, iface: IPIface) -> None:
    assert net.add_address("ljt0", iface, nodad=True) is True
    assert net.add_address("ljt0", iface, nodad=True) is False
    assert net.addresses("ljt0") == [iface]
    assert net.del_address("ljt0", iface) is True
    assert net.del_address("ljt0", iface) is False
    assert net.addresses("ljt0") == []


def test_addresses_leave_out_link_local_and_host_scope(addressed: Netlink) -> None:
    assert sorted(map(str, addressed.addresses("ljt0"))) == [str(V4_ADDR), str(V6_ADDR)]
    assert addressed.addresses("lo") == []


def test_ipv6_address_with_another_prefix_length_conflicts(addressed: Netlink) -> None:
    other_prefix = ip_interface("fd00:20::1/80")
    error = refused(errno.EEXIST, lambda: addressed.add_address("ljt0", other_prefix, nodad=True))
    assert str(V6_ADDR) in str(error)


def test_ipv4_address_with_another_prefix_length_is_another_address(addressed: Netlink) -> None:
    other = ip_interface("10.192.0.1/24")
    assert addressed.add_address("ljt0", other) is True
    assert set(addressed.addresses("ljt0")) == {V6_ADDR, V4_ADDR, other}
    assert addressed.del_address("ljt0", ip_interface("10.192.0.1/20")) is False


def test_deleting_an_ipv4_primary_deletes_its_secondaries(net: Netlink) -> None:
    primary, secondary = ip_interface("198.51.100.1/24"), ip_interface("198.51.100.2/24")
    net.add_address("ljt0", primary)
    net.add_address("ljt0", secondary)
    assert net.del_address("ljt0", primary) is True
    assert net.addresses("ljt0") == []
    assert net.del_address("ljt0", secondary) is False


def test_deleting_an_address_of_a_missing_link_is_a_no_op(net: Netlink) -> None:
    assert net.del_address("ljt9", V6_ADDR) is False


# Routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dst", "gw"), [(V6_DST, V6_GW), (V4_DST, V4_GW)], ids=["ipv6", "ipv4"])
def test_add_route_twice_then_delete_twice(addressed: Netlink, dst: IPNet, gw: IPAddr) -> None:
    assert addressed.route(dst) is None
    assert addressed.add_route(dst, gw) is True
    assert addressed.add_route(dst, gw) is False
    assert addressed.add_route(dst, gw, dev="ljt0") is False
    expected = RouteInfo(dst, gw, "ljt0")
    assert addressed.route(dst) == expected
    family = socket.AF_INET6 if dst.version == 6 else socket.AF_INET
    assert addressed.routes(family) == [expected]
    assert addressed.del_route(dst, gw) is True
    assert addressed.del_route(dst, gw) is False
    assert addressed.route(dst) is None


def test_routes_leave_out_the_kernels_own(addressed: Netlink) -> None:
    assert addressed.routes() == []
    assert addressed.route(V6_ADDR.network) == RouteInfo(V6_ADDR.network, None, "ljt0")
    assert addressed.route(V4_ADDR.network) == RouteInfo(V4_ADDR.network, None, "ljt0")


@pytest.mark.parametrize(("dst", "gw"), [(V6_DST, V6_GW), (V4_DST, V4_GW)], ids=["ipv6", "ipv4"])
def test_a_route_with_another_gateway_conflicts(addressed: Netlink, dst: IPNet, gw: IPAddr) -> None:
    addressed.add_route(dst, gw)
    error = refused(errno.EEXIST, lambda: addressed.add_route(dst, gw + 1))
    assert f"{dst} via {gw} dev ljt0" in str(error)
    assert addressed.del_route(dst, gw + 1) is False
    assert addressed.route(dst) == RouteInfo(dst, gw, "ljt0")


def test_a_gateway_off_link_is_unreachable(addressed: Netlink) -> None:
    refused(errno.EHOSTUNREACH, lambda: addressed.add_route(V6_DST, ip_address("fd00:99::1")))
    refused(errno.ENETUNREACH, lambda: addressed.add_route(V4_DST, ip_address("10.99.0.1")))
    # On-link, but through another link than the one named:
    refused(errno.EHOSTUNREACH, lambda: addressed.add_route(V6_DST, V6_GW, dev="ljt1"))
    refused(errno.ENETUNREACH, lambda: addressed.add_route(V4_DST, V4_GW, dev="ljt1"))


@pytest.mark.parametrize("dst", [V6_DST, V4_DST], ids=["ipv6", "ipv4"])
def test_on_link_route_twice_then_delete_twice(net: Netlink, dst: IPNet) -> None:
    assert net.add_route(dst, None, dev="ljt0") is True
    assert net.add_route(dst, None, dev="ljt0") is False
    assert net.route(dst) == RouteInfo(dst, None, "ljt0")
    refused(errno.ENETDOWN, lambda: net.add_route(dst, None, dev="ljt2"))
    assert net.del_route(dst, None, dev="ljt0") is True
    assert net.del_route(dst, None, dev="ljt0") is False


def test_a_gateway_reachable_through_an_on_link_route(net: Netlink) -> None:
    net.add_route(ip_network("fd00:30::/64"), None, dev="ljt0")
    assert net.add_route(V6_DST, ip_address("fd00:30::5")) is True
    assert net.route(V6_DST) == RouteInfo(V6_DST, ip_address("fd00:30::5"), "ljt0")


def test_link_local_gateway_needs_a_device(net: Netlink) -> None:
    gw = ip_address("fe80::1")
    refused(errno.EINVAL, lambda: net.add_route(V6_DST, gw))
    assert net.add_route(V6_DST, gw, dev="ljt0") is True


def test_deleting_a_route_through_a_missing_link_is_a_no_op(addressed: Netlink) -> None:
    assert addressed.del_route(V6_DST, V6_GW, dev="ljt9") is False


def test_default_route_dev(addressed: Netlink) -> None:
    assert addressed.default_route_dev(socket.AF_INET6) is None
    addressed.add_route(ip_network("::/0"), V6_GW)
    addressed.add_route(ip_network("0.0.0.0/0"), V4_GW)
    assert addressed.default_route_dev(socket.AF_INET6) == "ljt0"
    assert addressed.default_route_dev(socket.AF_INET) == "ljt0"


def test_routes_of_a_deleted_link_are_gone(addressed: Netlink) -> None:
    addressed.add_route(V6_DST, V6_GW)
    addressed.delete_link("ljt0")
    assert addressed.route(V6_DST) is None
    assert addressed.routes() == []


class _Counting:
    """Passes every kernel request through and counts them by name."""

    def __init__(self, kernel: object) -> None:
        self.kernel = kernel
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.kernel, name)
        if not callable(attr):
            return attr

        def counted(*args: object, **kwargs: object) -> object:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def test_500_routes_in_a_batch(addressed: Netlink) -> None:
    subnets = ip_network("fd00:40::/64").subnets(new_prefix=80)
    batch = [RouteInfo(next(subnets), V6_GW, "ljt0") for _ in range(500)]
    v4_subnets = ip_network("10.192.128.0/17").subnets(new_prefix=24)
    batch += [RouteInfo(next(v4_subnets), V4_GW) for _ in range(20)]
    counting = _Counting(addressed._kernel)
    addressed._kernel = counting  # type: ignore[assignment]

    def requests(call: Callable[[], object]) -> Counter[str]:
        counting.calls.clear()
        call()
        return Counter(counting.calls)

    added = requests(lambda: addressed.add_routes(batch))
    assert addressed.add_routes(batch) == [False] * len(batch)
    present = {(r.dst, r.gateway) for r in addressed.routes()}
    assert present == {(r.dst, r.gateway) for r in batch}
    deleted = requests(lambda: addressed.del_routes(batch))
    assert addressed.del_routes(batch) == [False] * len(batch)
    assert addressed.routes() == []
    # One request per route and a bounded number of lookups for the whole batch: no table dump and
    # no link lookup per route (what made `up` quadratic in the node count).
    assert added["route_add"] == len(batch)
    assert deleted["route_del"] == len(batch)
    for calls in (added, deleted):
        lookups = sum(n for name, n in calls.items() if name not in ("route_add", "route_del"))
        assert lookups <= 4, calls


def test_a_batch_stops_at_the_first_failure(addressed: Netlink) -> None:
    good, bad, after = (ip_network(f"fd00:40:0:0:{i}::/80") for i in (1, 2, 3))
    off_link = ip_address("fd00:99::1")
    batch = [RouteInfo(good, V6_GW), RouteInfo(bad, off_link), RouteInfo(after, V6_GW)]
    refused(errno.EHOSTUNREACH, lambda: addressed.add_routes(batch))
    assert [r.dst for r in addressed.routes()] == [good]
    assert addressed.del_routes(batch) == [True, False, False]


# The real socket only ------------------------------------------------------------------------


def test_a_missing_namespace_is_an_error_and_is_not_created() -> None:
    name = f"ljt-missing-{uuid.uuid4().hex[:8]}"
    with Netlink(name) as nl:
        error = refused(errno.ENOENT, nl.link_names)
    assert name in str(error)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    assert name not in listed.stdout.split()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_one_socket_serves_every_request(netns: str, veth_pair: tuple[str, str]) -> None:
    before = _open_fds()
    with Netlink(netns) as nl:
        nl.link_names()
        opened = _open_fds()
        assert opened > before
        for i in range(20):
            nl.add_address(veth_pair[0], ip_interface(f"fd00:20::{i + 1}/64"), nodad=True)
            nl.routes()
        assert _open_fds() == opened
    assert _open_fds() == before
