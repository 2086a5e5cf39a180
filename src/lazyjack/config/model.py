"""The validated configuration: typed sections plus values resolved from defaults and aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lazyjack.addresses import IPNet
from lazyjack.config.egress import Dns64Server, Egress, Nat64Gateway, SupportNetwork
from lazyjack.config.nodes import NodeSpec

if TYPE_CHECKING:
    # Annotations only: the steps, the plan and the lab use a Config without pydantic, which only
    # reading a file needs (config.load, config.rules).
    from lazyjack.config.load import Source
    from lazyjack.config.schema import General

Plugin = Literal["bridge", "ptp"]
DEFAULT_INSECURE_TOKEN = "abcdef.abcdefghijklmnop"
#: pod_net.mtu when the file does not set it.
DEFAULT_MTU = 1500


@dataclass(frozen=True)
class Config:
    """A configuration that passed every rule."""

    general: General
    mode: str
    plugin: Plugin
    nodes: dict[str, NodeSpec]
    mgmt: tuple[IPNet, ...]
    pod: tuple[IPNet, ...]
    service: tuple[IPNet, ...]
    mtu: int = DEFAULT_MTU
    #: ipv6 mode: the support network, DNS64 and NAT64 in the types validation proved; None otherwise.
    egress: Egress | None = None
    kubeadm_timeout: float = 600.0
    warnings: tuple[str, ...] = ()
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def work_area(self) -> str:
        return self.general.work_area

    # The parts of `egress` by their section names; None outside ipv6 mode.

    @property
    def support_net(self) -> SupportNetwork | None:
        return self.egress.support if self.egress else None

    @property
    def nat64(self) -> Nat64Gateway | None:
        return self.egress.nat64 if self.egress else None

    @property
    def dns64(self) -> Dns64Server | None:
        return self.egress.dns64 if self.egress else None

    @property
    def allow_aaaa(self) -> bool:
        """dns64.allow_aaaa_use (or its 1.x name allow_ipv6_use): real AAAA records are used when they exist."""
        return self.egress.dns64.allow_aaaa if self.egress and self.egress.dns64 else False

    @property
    def token(self) -> str:
        """The bootstrap token kubeadm uses: the configured one, or kubeadm's default when insecure."""
        if self.general.token and is_set(self.general.token):
            return self.general.token
        return DEFAULT_INSECURE_TOKEN

    @property
    def ca_cert_hash(self) -> str | None:
        """`sha256:<hex>` for kubeadm, or None when not set."""
        value = self.general.token_cert_hash
        if not value or not is_set(value):
            return None
        return value if value.startswith("sha256:") else f"sha256:{value}"

    @property
    def families(self) -> tuple[int, ...]:
        """IP versions in use on the management network, in the file's order."""
        return tuple(n.version for n in self.mgmt)


def is_set(value: str) -> bool:
    """False for the placeholders of the sample config (`<provide-token>`)."""
    text = value.strip()
    return bool(text) and not (text.startswith("<") and text.endswith(">"))
