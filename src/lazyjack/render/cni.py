"""CNI network configuration list (bridge or ptp with host-local IPAM) for a node's pod subnets."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Literal

# Runtimes load the alphabetically first file in /etc/cni/net.d, so the "00-" prefix
# makes ours win over any "10-*.conflist" another installer may have left behind.
CONFLIST_NAME = "00-lazyjack.conflist"

CNI_VERSION = "1.0.0"

# The CNI spec's rule for network names: alphanumeric first, then alphanumerics, "_", ".", "-".
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

_DEFAULT_ROUTE = {4: "0.0.0.0/0", 6: "::/0"}


def render_conflist(
    *,
    plugin: Literal["bridge", "ptp"],
    ranges: Sequence[tuple[IPv4Network | IPv6Network, IPv4Address | IPv6Address]],
    mtu: int,
    name: str = "lazyjack",
) -> str:
    """Return the conflist JSON for one node: one (subnet, gateway) pair per address family.

    The order of ``ranges`` is kept, so the first family is the one pods list first.
    """
    if not _NETWORK_NAME.fullmatch(name):
        raise ValueError(
            f"CNI network name {name!r} is not valid: it must start with a letter or digit"
            " and contain only letters, digits, '_', '.' and '-'"
        )
    if not ranges:
        raise ValueError("CNI ranges are empty: give one (subnet, gateway) pair per family")
    families = [subnet.version for subnet, _ in ranges]
    if len(set(families)) != len(families):
        raise ValueError(
            f"CNI ranges {_describe(ranges)} repeat an address family: give at most one"
            " IPv4 and one IPv6 pair"
        )
    for subnet, gateway in ranges:
        # host-local accepts such a gateway and pods then get a default route to an address
        # that is not on their link; refuse it here instead.
        if gateway.version != subnet.version or gateway not in subnet:
            raise ValueError(f"CNI gateway {gateway} is not inside its subnet {subnet}")

    ipam: dict[str, Any] = {
        "type": "host-local",
        # One inner list per family: host-local hands out one address per inner list.
        "ranges": [
            [{"subnet": str(subnet), "gateway": str(gateway)}] for subnet, gateway in ranges
        ],
    }
    plugin_conf: dict[str, Any]
    if plugin == "bridge":
        plugin_conf = {
            "type": "bridge",
            # br0 is the name lazyjack 1.x used; `down` removes it by that name.
            "bridge": "br0",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "mtu": mtu,
            "ipam": ipam,
        }
    elif plugin == "ptp":
        # ptp sets no default route of its own: IPAM lists one per family. (For bridge,
        # isDefaultGateway adds them; listing them in IPAM too makes the plugin fail with EEXIST.)
        ipam["routes"] = [{"dst": _DEFAULT_ROUTE[version]} for version in families]
        plugin_conf = {"type": "ptp", "ipMasq": True, "mtu": mtu, "ipam": ipam}
    else:
        # Literal does not stop a caller that skips type checking (e.g. a value from YAML).
        raise ValueError(f"CNI plugin {plugin!r} is not supported: use 'bridge' or 'ptp'")

    conflist = {"cniVersion": CNI_VERSION, "name": name, "plugins": [plugin_conf]}
    return json.dumps(conflist, indent=2) + "\n"


def _describe(
    ranges: Sequence[tuple[IPv4Network | IPv6Network, IPv4Address | IPv6Address]],
) -> str:
    return ", ".join(f"{subnet} via {gateway}" for subnet, gateway in ranges)
