"""Tests for the CNI conflist renderer: exact text for one case, parsed structure for the rest."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import pytest

from lazyjack.render.cni import CONFLIST_NAME, render_conflist

V6 = (IPv6Network("fd00:40:0:0:2::/80"), IPv6Address("fd00:40::2:0:0:1"))
V4 = (IPv4Network("10.244.2.0/24"), IPv4Address("10.244.2.1"))


def _ipam(*ranges: tuple[str, str]) -> dict[str, Any]:
    default = {4: "0.0.0.0/0", 6: "::/0"}
    return {
        "type": "host-local",
        "ranges": [[{"subnet": subnet, "gateway": gateway}] for subnet, gateway in ranges],
        "routes": [{"dst": default[ip_network(subnet).version]} for subnet, _ in ranges],
    }


def test_conflist_name_sorts_before_other_installers_files() -> None:
    assert CONFLIST_NAME.endswith(".conflist")
    assert sorted([CONFLIST_NAME, "10-bridge.conflist", "10-containerd-net.conflist"])[0] == (
        CONFLIST_NAME
    )


def test_bridge_ipv6_exact_text() -> None:
    expected = """\
{
  "cniVersion": "1.0.0",
  "name": "lazyjack",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "br0",
      "isGateway": true,
      "isDefaultGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "mtu": 9000,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [
            {
              "subnet": "fd00:40:0:0:2::/80",
              "gateway": "fd00:40::2:0:0:1"
            }
          ]
        ]
      }
    }
  ]
}
"""
    assert render_conflist(plugin="bridge", ranges=[V6], mtu=9000) == expected


@pytest.mark.parametrize(
    ("ranges", "expected_ipam"),
    [
        ([V6], _ipam(("fd00:40:0:0:2::/80", "fd00:40::2:0:0:1"))),
        ([V4], _ipam(("10.244.2.0/24", "10.244.2.1"))),
        (
            [V4, V6],
            _ipam(("10.244.2.0/24", "10.244.2.1"), ("fd00:40:0:0:2::/80", "fd00:40::2:0:0:1")),
        ),
        (
            [V6, V4],
            _ipam(("fd00:40:0:0:2::/80", "fd00:40::2:0:0:1"), ("10.244.2.0/24", "10.244.2.1")),
        ),
    ],
    ids=["ipv6", "ipv4", "dual-ipv4-first", "dual-ipv6-first"],
)
@pytest.mark.parametrize("plugin", ["bridge", "ptp"])
def test_structure_for_each_plugin_and_family_order(
    plugin: str,
    ranges: list[tuple[IPv4Network | IPv6Network, IPv4Address | IPv6Address]],
    expected_ipam: dict[str, Any],
) -> None:
    rendered = render_conflist(plugin=plugin, ranges=ranges, mtu=1500)  # type: ignore[arg-type]

    if plugin == "bridge":
        expected_plugin: dict[str, Any] = {
            "type": "bridge",
            "bridge": "br0",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "mtu": 1500,
            # isDefaultGateway adds the default routes; IPAM routes too would fail with EEXIST.
            "ipam": {k: v for k, v in expected_ipam.items() if k != "routes"},
        }
    else:
        expected_plugin = {"type": "ptp", "ipMasq": True, "mtu": 1500, "ipam": expected_ipam}
    assert json.loads(rendered) == {
        "cniVersion": "1.0.0",
        "name": "lazyjack",
        "plugins": [expected_plugin],
    }
    assert rendered.endswith("}\n")


def test_ptp_keeps_key_order_and_custom_name() -> None:
    parsed = json.loads(render_conflist(plugin="ptp", ranges=[V4], mtu=1400, name="lab-net.1"))
    assert parsed["name"] == "lab-net.1"
    assert list(parsed["plugins"][0]) == ["type", "ipMasq", "mtu", "ipam"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ranges": []}, "empty"),
        ({"ranges": [V4, V4]}, "repeat an address family"),
        ({"ranges": [(V4[0], ip_address("10.245.0.1"))]}, "not inside its subnet"),
        ({"ranges": [(V6[0], V4[1])]}, "not inside its subnet"),
        ({"ranges": [V4], "name": "-bad"}, "network name"),
        ({"ranges": [V4], "name": "has space"}, "network name"),
        ({"ranges": [V4], "plugin": "macvlan"}, "not supported"),
    ],
    ids=[
        "empty",
        "same-family-twice",
        "gateway-outside",
        "gateway-other-family",
        "name-dash",
        "name-space",
        "unknown-plugin",
    ],
)
def test_rejects_what_a_plugin_would_refuse(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"plugin": "bridge", "mtu": 1500, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        render_conflist(**arguments)
