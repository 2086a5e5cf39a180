"""The fakes behave like the host: FakeNetlink answers with the kernel's errno, FakeSysctl
refuses unknown keys, FakeRunner fails the way Runner fails. (tests/netns runs the netlink
tests on both the real kernel and FakeNetlink; these run without privileges.)"""

from __future__ import annotations

import errno
from collections.abc import Callable
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path

import pytest

from fake_host import FAULT_POINTS, FakeNetlink, FakeRunner, FakeSysctl, fake_host
from lazyjack.errors import CommandFailed, HostError, NetlinkFailed
from lazyjack.host import Host
from lazyjack.host.netlink import Netlink, RouteInfo

V6_ADDR = ip_interface("fd00:20::1/64")
V4_ADDR = ip_interface("10.192.0.1/16")
V6_GW = ip_address("fd00:20::3")
V4_GW = ip_address("10.192.0.3")
V6_DST = ip_network("fd00:40:0:0:3::/80")
V4_DST = ip_network("198.51.100.0/24")


@pytest.fixture
def net() -> FakeNetlink:
    """eth1 (up) with V6_ADDR and V4_ADDR; eth2 down, no address."""
    fake = FakeNetlink()
    fake.add_link("eth1")
    fake.add_link("eth2", up=False)
    fake.add_address("eth1", V6_ADDR, nodad=True)
    fake.add_address("eth1", V4_ADDR)
    return fake


def refused(code: int, call: Callable[[], object]) -> NetlinkFailed:
    with pytest.raises(NetlinkFailed) as caught:
        call()
    assert caught.value.code == code, str(caught.value)
    return caught.value


# What the kernel answers, as (call, errno); checked against Linux in tests/netns.
REFUSALS: list[tuple[str, Callable[[Netlink], object], int]] = [
    ("missing link", lambda n: n.link_index("eth9"), errno.ENODEV),
    ("mtu of missing link", lambda n: n.set_mtu("eth9", 1400), errno.ENODEV),
    ("name too long", lambda n: n.link_exists("a-very-long-link-name"), errno.ERANGE),
    ("mtu out of range", lambda n: n.set_mtu("eth1", 67), errno.EINVAL),
    ("ipv6 prefix clash", lambda n: n.add_address("eth1", ip_interface("fd00:20::1/80")), errno.EEXIST),
    ("route conflict", lambda n: n.add_route(ip_network("fd00:40::/72"), V6_GW + 1), errno.EEXIST),
    ("ipv4 gw off-link", lambda n: n.add_route(V4_DST, ip_address("10.99.0.1")), errno.ENETUNREACH),
    ("ipv6 gw off-link", lambda n: n.add_route(V6_DST, ip_address("fd00:99::1")), errno.EHOSTUNREACH),
    ("gw on another link", lambda n: n.add_route(V6_DST, V6_GW, dev="eth2"), errno.EHOSTUNREACH),
    ("route via down link", lambda n: n.add_route(V6_DST, None, dev="eth2"), errno.ENETDOWN),
    ("ll gw without dev", lambda n: n.add_route(V6_DST, ip_address("fe80::1")), errno.EINVAL),
    ("own address as gw", lambda n: n.add_route(V6_DST, V6_ADDR.ip), errno.EINVAL),
    ("ipv4 over connected", lambda n: n.add_route(V4_ADDR.network, V4_GW), errno.EEXIST),
]


@pytest.mark.parametrize(("call", "code"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_the_fake_kernel_refuses_like_linux(net: FakeNetlink, call: Callable[[Netlink], object], code: int) -> None:
    net.add_route(ip_network("fd00:40::/72"), V6_GW)
    before = (net.kernel.routes.copy(), {i: link.addresses.copy() for i, link in net.kernel.links.items()})
    refused(code, lambda: call(net))
    after = (net.kernel.routes, {i: link.addresses for i, link in net.kernel.links.items()})
    assert after == before


# What is already there (or already gone) is a no-op, as (first call, repeat) -> (True, False).
REPEATS: list[tuple[str, Callable[[Netlink], bool]]] = [
    ("add ipv6 address", lambda n: n.add_address("eth1", ip_interface("fd00:20::9/64"))),
    ("add ipv4 address", lambda n: n.add_address("eth1", ip_interface("10.192.0.9/16"))),
    ("delete address", lambda n: n.del_address("eth1", V6_ADDR)),
    ("add route", lambda n: n.add_route(V6_DST, V6_GW)),
    ("add on-link route", lambda n: n.add_route(V4_DST, None, dev="eth1")),
    ("delete on-link route", lambda n: n.del_route(V6_ADDR.network, None, dev="eth1")),
    ("delete link", lambda n: n.delete_link("eth2")),
]


@pytest.mark.parametrize("call", [c[1] for c in REPEATS], ids=[c[0] for c in REPEATS])
def test_a_repeated_change_is_a_no_op(net: FakeNetlink, call: Callable[[Netlink], bool]) -> None:
    assert call(net) is True
    assert call(net) is False


def test_gone_things_are_already_deleted(net: FakeNetlink) -> None:
    assert net.del_route(V6_DST, V6_GW) is False
    assert net.del_address("eth1", ip_interface("fd00:20::9/64")) is False
    assert net.del_address("eth9", V6_ADDR) is False
    assert net.del_route(V6_DST, V6_GW, dev="eth9") is False


def test_lo_exists_with_host_scope_addresses_only(net: FakeNetlink) -> None:
    assert net.link_names() == ["lo", "eth1", "eth2"]
    assert net.is_up("lo")
    assert net.addresses("lo") == []


def test_connected_routes_follow_addresses_and_link_state(net: FakeNetlink) -> None:
    assert net.route(V6_ADDR.network) == RouteInfo(V6_ADDR.network, None, "eth1")
    eth2_addr = ip_interface("fd00:21::1/64")
    net.add_address("eth2", eth2_addr)
    assert net.route(eth2_addr.network) is None  # eth2 is down
    net.link_up("eth2")
    assert net.route(eth2_addr.network) == RouteInfo(eth2_addr.network, None, "eth2")
    net.del_address("eth2", eth2_addr)
    assert net.route(eth2_addr.network) is None
    assert net.routes() == []  # connected routes are not "configured"


def test_an_ipv6_route_may_shadow_a_connected_one(net: FakeNetlink) -> None:
    # Different metrics (256 for connected, 1024 for user routes): no conflict in IPv6.
    assert net.add_route(V6_ADDR.network, V6_GW) is True
    assert net.route(V6_ADDR.network) == RouteInfo(V6_ADDR.network, None, "eth1")
    assert net.routes() == [RouteInfo(V6_ADDR.network, V6_GW, "eth1")]


def test_mtu_below_1280_tears_down_ipv6(net: FakeNetlink) -> None:
    net.add_route(V6_DST, V6_GW)
    net.set_mtu("eth1", 1200)
    assert net.addresses("eth1") == [V4_ADDR]
    assert net.route(V6_DST) is None
    refused(errno.ENODEV, lambda: net.add_route(V6_DST, None, dev="eth1"))


def test_deleting_a_veth_deletes_its_peer_and_their_routes() -> None:
    net = FakeNetlink()
    net.add_link("veth0", peer="veth1")
    net.add_route(V6_DST, None, dev="veth1")
    assert net.delete_link("veth0") is True
    assert not net.link_exists("veth1")
    assert net.route(V6_DST) is None


def test_conflict_message_names_the_route_in_place(net: FakeNetlink) -> None:
    net.add_route(V6_DST, V6_GW)
    error = refused(errno.EEXIST, lambda: net.add_route(V6_DST, V6_GW + 1, dev="eth1"))
    assert str(error) == (
        f"add route {V6_DST} via {V6_GW + 1} dev eth1: File exists (EEXIST): "
        f"the main table already has {V6_DST} via {V6_GW} dev eth1"
    )
    assert error.operation == f"add route {V6_DST} via {V6_GW + 1} dev eth1"


def test_default_route_dev_picks_the_lowest_metric(net: FakeNetlink) -> None:
    import socket

    assert net.default_route_dev(socket.AF_INET) is None
    net.add_route(ip_network("0.0.0.0/0"), V4_GW)
    assert net.default_route_dev(socket.AF_INET) == "eth1"
    assert net.default_route_dev(socket.AF_INET6) is None


def test_programming_errors_are_value_errors(net: FakeNetlink) -> None:
    with pytest.raises(ValueError, match="gateway, a device or both"):
        net.add_route(V6_DST, None)
    with pytest.raises(ValueError, match="not IPv6"):
        net.add_route(V6_DST, V4_GW)


# Fault injection -----------------------------------------------------------------------------


def test_an_injected_fault_fails_once_and_changes_nothing(net: FakeNetlink) -> None:
    net.fail_next("add_route", errno.EPERM)
    error = refused(errno.EPERM, lambda: net.add_route(V6_DST, V6_GW))
    assert "add route" in str(error) and "EPERM" in str(error)
    assert net.route(V6_DST) is None
    assert net.add_route(V6_DST, V6_GW) is True


def test_a_fault_after_n_requests_fails_a_batch_half_way(net: FakeNetlink) -> None:
    batch = [RouteInfo(d, V6_GW) for d in ip_network("fd00:40::/72").subnets(new_prefix=80)][:4]
    net.fail_next("add_routes", errno.ENOBUFS, after=2)
    refused(errno.ENOBUFS, lambda: net.add_routes(batch))
    assert [r.dst for r in net.routes()] == [batch[0].dst, batch[1].dst]
    assert net.del_routes(batch) == [True, True, False, False]


def test_faults_go_through_the_same_idempotency_rules(net: FakeNetlink) -> None:
    # A delete answered with "already gone" is a no-op, whoever says so.
    net.fail_next("del_address", errno.EADDRNOTAVAIL)
    assert net.del_address("eth1", V6_ADDR) is False
    assert V6_ADDR in net.addresses("eth1")


def test_faults_are_named_by_operation(net: FakeNetlink) -> None:
    with pytest.raises(ValueError, match="add_routez"):
        net.fail_next("add_routez", errno.EPERM)
    public = {n for n in dir(Netlink) if not n.startswith("_") and callable(getattr(Netlink, n))}
    assert public - {"close"} == set(FAULT_POINTS)


def test_a_fault_on_lookup_strikes_every_method_that_looks_up(net: FakeNetlink) -> None:
    net.fail_next("link_index", errno.EPERM)
    refused(errno.EPERM, lambda: net.get_mtu("eth1"))
    assert net.get_mtu("eth1") == 1500


# FakeSysctl ----------------------------------------------------------------------------------


def test_fake_sysctl_reads_and_writes_known_keys() -> None:
    sysctl = FakeSysctl({"net.ipv6.conf.all.forwarding": "0", "net.ipv4.conf.eth0/100.rp_filter": "1"})
    assert sysctl.get("net.ipv6.conf.all.forwarding") == "0"
    sysctl.set("net.ipv6.conf.all.forwarding", "1")
    assert sysctl.get("net/ipv6/conf/all/forwarding") == "1"
    assert sysctl.get("net/ipv4/conf/eth0.100/rp_filter") == "1"
    assert sysctl.writes == [("net.ipv6.conf.all.forwarding", "1")]
    assert sysctl.values["net.ipv6.conf.all.forwarding"] == "1"


def test_fake_sysctl_refuses_unknown_keys() -> None:
    sysctl = FakeSysctl({"net.ipv4.ip_forward": "0"})
    with pytest.raises(HostError, match=r"net\.ipv6\.conf\.eth9\.forwarding does not exist"):
        sysctl.get("net.ipv6.conf.eth9.forwarding")
    with pytest.raises(HostError, match="does not exist"):
        sysctl.set("net.ipv6.conf.eth9.forwarding", "1")
    assert sysctl.writes == []


# FakeRunner ----------------------------------------------------------------------------------


def test_fake_runner_answers_from_the_longest_matching_script() -> None:
    runner = FakeRunner()
    runner.script(["kubeadm"], stdout="generic\n")
    runner.script(["kubeadm", "token", "create"], stdout="abcdef.0123456789abcdef\n")
    done = runner.run(["kubeadm", "token", "create", "--ttl", "0"], timeout=30)
    assert done.stdout == "abcdef.0123456789abcdef\n"
    assert runner.run(["kubeadm", "version"], timeout=30).stdout == "generic\n"
    assert runner.argvs() == [["kubeadm", "token", "create", "--ttl", "0"], ["kubeadm", "version"]]
    assert runner.which("kubeadm") == "/usr/bin/kubeadm"
    assert runner.which("kubelet") is None


def test_fake_runner_records_input_env_and_timeout() -> None:
    runner = FakeRunner()
    runner.script(["kubeadm", "init"])
    runner.run(["kubeadm", "init"], timeout=600, input=b"cfg", env={"KUBECONFIG": "/x"})
    call = runner.calls[0]
    assert (call.timeout, call.input, call.env) == (600, b"cfg", {"KUBECONFIG": "/x"})


def test_fake_runner_fails_like_the_runner() -> None:
    runner = FakeRunner(installed=["systemctl"])
    runner.script(["kubeadm", "reset"], returncode=1, stderr="boom\n")
    runner.script(["kubeadm", "init"], duration=700)

    with pytest.raises(CommandFailed) as missing:
        runner.run(["kubectl", "get", "nodes"], timeout=10)
    assert missing.value.returncode is None and "not found on PATH" in str(missing.value)

    with pytest.raises(CommandFailed) as failed:
        runner.run(["kubeadm", "reset", "-f"], timeout=10)
    assert failed.value.returncode == 1 and failed.value.output == "boom\n"
    assert runner.run(["kubeadm", "reset", "-f"], timeout=10, check=False).returncode == 1

    with pytest.raises(CommandFailed, match="timed out after 600s"):
        runner.run(["kubeadm", "init"], timeout=600)

    with pytest.raises(AssertionError, match="nothing scripted"):
        runner.run(["systemctl", "restart", "kubelet"], timeout=10)


def test_fake_runner_reports_progress_over_the_scripted_duration() -> None:
    runner = FakeRunner()
    runner.script(["kubeadm", "init"], duration=12)
    seen: list[float] = []
    runner.run(["kubeadm", "init"], timeout=600, on_progress=seen.append)
    assert seen == [5.0, 10.0]


def test_fake_runner_scripts_can_be_used_up() -> None:
    runner = FakeRunner()
    runner.script(["systemctl", "is-active", "kubelet"], returncode=3, times=1)
    runner.script(["systemctl", "is-active", "kubelet"], returncode=0)
    codes = [runner.run(["systemctl", "is-active", "kubelet"], timeout=5, check=False).returncode]
    codes.append(runner.run(["systemctl", "is-active", "kubelet"], timeout=5).returncode)
    assert codes == [3, 0]


def test_fake_host_bundles_the_fakes(tmp_path: Path) -> None:
    net = FakeNetlink()
    host = fake_host(tmp_path, net=net)
    assert isinstance(host, Host)
    assert host.net is net
    host.files.write_atomic("/etc/hosts", b"127.0.0.1 localhost\n")
    assert (tmp_path / "etc" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"
