"""Typed schema of the configuration file: sections, keys, defaults and value types.

Only the shape of each value is checked here (an integer, a CIDR, one of a few words);
relations between values live in `lazyjack.config.rules`.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Literal

# lazyjack uses no pydantic plugins. Without this, the first model pydantic builds looks for
# plugins in the entry points of every installed package, which costs every command that reads
# a config milliseconds of start-up. A value the user set is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from lazyjack.addresses import IPAddr, IPNet

DEFAULT_WORK_AREA = "/tmp/lazyjack"
DEFAULT_CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
DEFAULT_KUBEADM_TIMEOUT = "10m"
#: The DNS64 server programs lazyjack can run, and the default container image of each.
DEFAULT_DNS64_IMAGES = {"bind9": "lazyjack/bind9:latest", "unbound": "lazyjack/unbound:latest"}
DEFAULT_NAT64_IMAGE = "lazyjack/tayga:latest"


#: YAML value types as a user reading their file names them; bool before int, which it subclasses.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a decimal number"),
    (str, "text"),
    (dict, "a mapping"),
    (list, "a list"),
    (type(None), "empty"),
)


def describe(value: object) -> str:
    """Name a YAML value's type the way a user reading their file would."""
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def _need_text(value: object, example: str) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "lj_type",
            "must be text such as {example}, got {kind}",
            {"example": example, "kind": describe(value)},
        )
    return value.strip()


def _no_zone(text: str) -> None:
    # ipaddress accepts an IPv6 zone index ("fe80::1%eth0"), and anything may follow the '%'; none of the
    # files or commands lazyjack writes an address into can use one.
    if "%" in text:
        raise PydanticCustomError("lj_zone", "has a zone index (%...); lazyjack's addresses and networks take none")


def _cidr(value: object) -> IPNet:
    text = _need_text(value, '"fd00:20::/64" or "10.192.0.0/16"')
    _no_zone(text)
    if "/" not in text:
        raise PydanticCustomError("lj_cidr", "needs a prefix length, for example {example}", {"example": f"{text}/64"})
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PydanticCustomError("lj_cidr", "is not a valid CIDR ({reason})", {"reason": str(exc)}) from None
    raise PydanticCustomError("lj_cidr", "has host bits set; the network is {network}", {"network": str(loose)})


def _ip(value: object) -> IPAddr:
    text = _need_text(value, '"fd00:10::100" or "172.18.0.200"')
    _no_zone(text)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        hint = " (an address, not a CIDR)" if "/" in text else ""
        raise PydanticCustomError("lj_ip", "is not a valid IP address{hint}", {"hint": hint}) from None


def _duration(value: object) -> str | int:
    # One validator instead of `str | int`: a union reports one error per member, at
    # paths like `kubeadm-timeout.str`.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PydanticCustomError(
            "lj_type", "must be a duration such as '10m' or a number of seconds, got {kind}", {"kind": describe(value)}
        )
    return value


Cidr = Annotated[IPNet, PlainValidator(_cidr)]
IP = Annotated[IPAddr, PlainValidator(_ip)]
Duration = Annotated[str | int, PlainValidator(_duration)]


class Section(BaseModel):
    """A mapping in the file: unknown keys are errors, no type coercion ("2" is not 2)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, frozen=True)


class General(Section):
    token: str | None = None
    token_cert_hash: str | None = Field(None, alias="token-cert-hash")
    plugin: Literal["bridge", "ptp"] | None = None
    work_area: str = Field(DEFAULT_WORK_AREA, alias="work-area")
    mode: Literal["ipv6", "ipv4", "dual-stack"] = "ipv6"
    kubernetes_version: str | None = Field(None, alias="kubernetes-version")
    insecure: bool = False
    cri_socket: str = Field(DEFAULT_CRI_SOCKET, alias="cri-socket")
    kubeadm_timeout: Duration = Field(DEFAULT_KUBEADM_TIMEOUT, alias="kubeadm-timeout")
    dns64_nat64_runtime: Literal["docker", "podman", "native"] = Field("docker", alias="dns64-nat64-runtime")
    ssh_user: str | None = Field(None, alias="ssh-user")


class Node(Section):
    interface: str
    opmodes: str
    id: int
    ssh_host: str | None = Field(None, alias="ssh-host")


class SupportNet(Section):
    cidr: Cidr
    v4cidr: Cidr


class MgmtNet(Section):
    cidr: Cidr
    cidr2: Cidr | None = None


class PodNet(Section):
    cidr: Cidr
    cidr2: Cidr | None = None
    mtu: int | None = None


class ServiceNet(Section):
    cidr: Cidr
    cidr2: Cidr | None = None


class Nat64(Section):
    # The NAT64 server's keys: required (by the rules) when a node has opmode nat64.
    v4_cidr: Cidr | None = None
    v4_ip: IP | None = None
    ip: IP | None = None
    image: str = DEFAULT_NAT64_IMAGE
    # The site's own NAT64 instead: the nodes route dns64.cidr via this address.
    external_gateway: IP | None = Field(None, alias="external-gateway")


class Dns64(Section):
    cidr: Cidr
    # The DNS64 server's keys: required (by the rules) when a node has opmode dns64.
    remote_server: IP | None = None
    ip: IP | None = None
    allow_aaaa_use: bool | None = None
    allow_ipv6_use: bool | None = None  # lazyjack 1.x spelling, kept as an alias
    server: Literal["bind9", "unbound"] = "bind9"
    image: str | None = None  # default: DEFAULT_DNS64_IMAGES[server]
    # The site's own DNS64 server instead: the nodes' first nameserver, reached on the management
    # network or through the router external-via (on the management network).
    external_server: IP | None = Field(None, alias="external-server")
    external_via: IP | None = Field(None, alias="external-via")

    @property
    def server_image(self) -> str:
        """The container image of the DNS64 server: `image`, or the default one for `server`."""
        return self.image or DEFAULT_DNS64_IMAGES[self.server]


#: Top-level key -> section model (topology is a mapping of node name -> Node).
SECTIONS: dict[str, type[Section]] = {
    "general": General,
    "support_net": SupportNet,
    "mgmt_net": MgmtNet,
    "pod_net": PodNet,
    "service_net": ServiceNet,
    "nat64": Nat64,
    "dns64": Dns64,
}
TOP_LEVEL_KEYS = ("general", "topology", *list(SECTIONS)[1:], "plugin")
