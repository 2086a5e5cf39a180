"""kubeadm configuration files: InitConfiguration and friends for the master, JoinConfiguration for minions.

The values are derived once (`derive`), then one builder per kubeadm config API
version shapes them into documents, which are dumped as YAML from data structures.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from lazyjack.addresses import IPAddr, IPNet
from lazyjack.config.model import Config
from lazyjack.config.plan import (
    KUBEADM_API_VERSIONS,
    Plan,
    kubernetes_minor,
)

API_PORT = 6443
CLUSTER_DOMAIN = "cluster.local"
IMAGE_REPOSITORY = "registry.k8s.io"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBEPROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
TOKEN_GROUPS = ["system:bootstrappers:kubeadm:default-node-token"]
TOKEN_USAGES = ["signing", "authentication"]

Doc = dict[str, Any]


@dataclass(frozen=True)
class KubeadmValues:
    """Everything the kubeadm documents need, derived from the config and plan for one node."""

    api: str
    kubernetes_version: str | None
    minor: int | None
    node_name: str
    node_ips: tuple[IPAddr, ...]
    advertise_address: IPAddr
    ipv6_only: bool
    pod_subnets: tuple[IPNet, ...]
    service_subnets: tuple[IPNet, ...]
    dns_ip: IPAddr
    token: str
    ca_cert_hash: str | None
    insecure: bool
    cri_socket: str

    @property
    def api_endpoint(self) -> str:
        host = f"[{self.advertise_address}]" if isinstance(self.advertise_address, IPv6Address) else str(
            self.advertise_address
        )
        return f"{host}:{API_PORT}"

    @property
    def taint_key(self) -> str:
        """kubeadm taints the control plane with `control-plane` from 1.25 (`master` before)."""
        if self.minor is None:
            return "node-role.kubernetes.io/control-plane" if self.api == "v1beta4" else "node-role.kubernetes.io/master"
        return "node-role.kubernetes.io/control-plane" if self.minor >= 25 else "node-role.kubernetes.io/master"

    @property
    def node_ip(self) -> str:
        return ",".join(str(ip) for ip in self.node_ips)


def derive(config: Config, plan: Plan, *, node_name: str, api: str, minor: int | None = None) -> KubeadmValues:
    """Collect the values for `node_name`; `api` is the kubeadm config API version (e.g. "v1beta4")."""
    if api not in KUBEADM_API_VERSIONS:
        raise ValueError(f"unknown kubeadm config API version {api!r}; known: {', '.join(KUBEADM_API_VERSIONS)}")
    node = plan.nodes[node_name]
    service_family = config.service[0].version
    # The service family's address first: kubelet takes the first node-ip as primary.
    ips = sorted((a.ip for a in node.management), key=lambda ip: ip.version != service_family)
    version = config.general.kubernetes_version
    return KubeadmValues(
        api=api,
        kubernetes_version=version,
        minor=minor if minor is not None else (kubernetes_minor(version) if version else None),
        node_name=node_name,
        node_ips=tuple(ips),
        advertise_address=plan.api_advertise_address,
        ipv6_only=config.mode == "ipv6",
        pod_subnets=config.pod,
        service_subnets=config.service,
        dns_ip=plan.dns_service_ip,
        token=config.token,
        ca_cert_hash=config.ca_cert_hash,
        insecure=config.general.insecure,
        cri_socket=config.general.cri_socket,
    )


# --- pieces shared by several versions -------------------------------------------------


def _join(nets: tuple[IPNet, ...]) -> str:
    return ",".join(str(n) for n in nets)


def _args(values: dict[str, str], *, listed: bool) -> Any:
    """extraArgs: a mapping before v1beta4, a list of {name, value} from v1beta4."""
    if listed:
        return [{"name": k, "value": v} for k, v in values.items()]
    return dict(values)


def _apiserver_args(v: KubeadmValues) -> dict[str, str]:
    return {"bind-address": "::"} if v.ipv6_only else {}


def _controller_manager_args(v: KubeadmValues) -> dict[str, str]:
    """Node CIDR mask sizes match lazyjack's per-node pod subnets (8 bits longer than the pod network)."""
    args: dict[str, str] = {}
    if v.ipv6_only:
        args["bind-address"] = "::"
    if len(v.pod_subnets) == 1:
        args["node-cidr-mask-size"] = str(v.pod_subnets[0].prefixlen + 8)
    else:
        for net in v.pod_subnets:
            args[f"node-cidr-mask-size-ipv{net.version}"] = str(net.prefixlen + 8)
    return args


def _scheduler_args(v: KubeadmValues) -> dict[str, str]:
    return {"bind-address": "::"} if v.ipv6_only else {}


def _component_args(v: KubeadmValues) -> list[tuple[str, dict[str, str]]]:
    """(component, its extra args) for the control-plane components that need any."""
    components = (
        ("apiServer", _apiserver_args(v)),
        ("controllerManager", _controller_manager_args(v)),
        ("scheduler", _scheduler_args(v)),
    )
    return [(name, args) for name, args in components if args]


def _flat_args(doc: Doc, v: KubeadmValues) -> None:
    """v1alpha2/v1alpha3 keep extra args at the top: apiServerExtraArgs and so on."""
    for component, args in _component_args(v):
        doc[f"{component}ExtraArgs"] = args


def _bootstrap_tokens(v: KubeadmValues) -> list[Doc]:
    return [{"token": v.token, "ttl": "0s", "usages": list(TOKEN_USAGES), "groups": list(TOKEN_GROUPS)}]


def _node_registration(v: KubeadmValues, *, listed: bool, master: bool) -> Doc:
    reg: Doc = {
        "name": v.node_name,
        "criSocket": v.cri_socket,
        "kubeletExtraArgs": _args({"node-ip": v.node_ip}, listed=listed),
    }
    if master:
        reg["taints"] = [{"key": v.taint_key, "effect": "NoSchedule"}]
    return reg


def _networking(v: KubeadmValues) -> Doc:
    return {"podSubnet": _join(v.pod_subnets), "serviceSubnet": _join(v.service_subnets), "dnsDomain": CLUSTER_DOMAIN}


def _kubelet(v: KubeadmValues) -> Doc:
    doc: Doc = {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "clusterDNS": [str(v.dns_ip)],
        "clusterDomain": CLUSTER_DOMAIN,
    }
    if v.ipv6_only:
        doc["address"] = "::"
    if v.api in ("v1beta3", "v1beta4"):  # Kubernetes 1.22+: kubelet and kubeadm agree on systemd
        doc["cgroupDriver"] = "systemd"
    return doc


def _kubeproxy(v: KubeadmValues) -> Doc:
    doc: Doc = {"apiVersion": KUBEPROXY_API, "kind": "KubeProxyConfiguration", "clusterCIDR": _join(v.pod_subnets)}
    if v.ipv6_only:
        doc["bindAddress"] = "::"
    return doc


def _version_key(doc: Doc, v: KubeadmValues) -> None:
    if v.kubernetes_version:
        doc["kubernetesVersion"] = v.kubernetes_version


def _discovery_token(v: KubeadmValues) -> Doc:
    token: Doc = {"token": v.token, "apiServerEndpoint": v.api_endpoint}
    if v.insecure or v.ca_cert_hash is None:
        token["unsafeSkipCAVerification"] = True
    else:
        token["caCertHashes"] = [v.ca_cert_hash]
    return token


# --- one builder per API version -------------------------------------------------------


def _init_and_cluster(v: KubeadmValues, *, endpoint: str, listed: bool) -> tuple[Doc, Doc]:
    """InitConfiguration (the API endpoint under `endpoint`) and the start of ClusterConfiguration."""
    group = f"kubeadm.k8s.io/{v.api}"
    init: Doc = {
        "apiVersion": group,
        "kind": "InitConfiguration",
        "bootstrapTokens": _bootstrap_tokens(v),
        endpoint: {"advertiseAddress": str(v.advertise_address), "bindPort": API_PORT},
        "nodeRegistration": _node_registration(v, listed=listed, master=True),
    }
    cluster: Doc = {"apiVersion": group, "kind": "ClusterConfiguration"}
    _version_key(cluster, v)
    return init, cluster


def _master_beta(v: KubeadmValues) -> list[Doc]:
    """v1beta1 .. v1beta4: Init + Cluster + Kubelet + KubeProxy documents."""
    listed = v.api == "v1beta4"
    init, cluster = _init_and_cluster(v, endpoint="localAPIEndpoint", listed=listed)
    if v.api in ("v1beta3", "v1beta4"):
        cluster["imageRepository"] = IMAGE_REPOSITORY
    cluster["networking"] = _networking(v)
    for component, args in _component_args(v):
        cluster[component] = {"extraArgs": _args(args, listed=listed)}
    return [init, cluster, _kubelet(v), _kubeproxy(v)]


def _master_v1alpha3(v: KubeadmValues) -> list[Doc]:
    init, cluster = _init_and_cluster(v, endpoint="apiEndpoint", listed=False)
    cluster["networking"] = _networking(v)
    _flat_args(cluster, v)
    return [init, cluster, _kubelet(v), _kubeproxy(v)]


def _master_v1alpha2(v: KubeadmValues) -> list[Doc]:
    """Kubernetes 1.11: one MasterConfiguration with kubelet and kube-proxy settings inside."""
    kubelet = {k: val for k, val in _kubelet(v).items() if k not in ("apiVersion", "kind")}
    proxy = {k: val for k, val in _kubeproxy(v).items() if k not in ("apiVersion", "kind")}
    master: Doc = {
        "apiVersion": "kubeadm.k8s.io/v1alpha2",
        "kind": "MasterConfiguration",
        "api": {"advertiseAddress": str(v.advertise_address), "bindPort": API_PORT},
        "bootstrapTokens": _bootstrap_tokens(v),
        "nodeRegistration": _node_registration(v, listed=False, master=True),
        "networking": _networking(v),
    }
    _version_key(master, v)
    _flat_args(master, v)
    master["kubeletConfiguration"] = {"baseConfig": kubelet}
    master["kubeProxy"] = {"config": proxy}
    return [master]


def _join_beta(v: KubeadmValues) -> list[Doc]:
    return [
        {
            "apiVersion": f"kubeadm.k8s.io/{v.api}",
            "kind": "JoinConfiguration",
            "discovery": {"bootstrapToken": _discovery_token(v)},
            "nodeRegistration": _node_registration(v, listed=v.api == "v1beta4", master=False),
        }
    ]


def _join_alpha(v: KubeadmValues) -> list[Doc]:
    """v1alpha2 NodeConfiguration and v1alpha3 JoinConfiguration keep discovery fields at the top."""
    doc: Doc = {
        "apiVersion": f"kubeadm.k8s.io/{v.api}",
        "kind": "NodeConfiguration" if v.api == "v1alpha2" else "JoinConfiguration",
        "token": v.token,
        "discoveryTokenAPIServers": [v.api_endpoint],
    }
    if v.insecure or v.ca_cert_hash is None:
        doc["discoveryTokenUnsafeSkipCAVerification"] = True
    else:
        doc["discoveryTokenCACertHashes"] = [v.ca_cert_hash]
    doc["nodeRegistration"] = _node_registration(v, listed=False, master=False)
    return [doc]


_MASTER: dict[str, Callable[[KubeadmValues], list[Doc]]] = {
    "v1alpha2": _master_v1alpha2,
    "v1alpha3": _master_v1alpha3,
    "v1beta1": _master_beta,
    "v1beta2": _master_beta,
    "v1beta3": _master_beta,
    "v1beta4": _master_beta,
}
_JOIN: dict[str, Callable[[KubeadmValues], list[Doc]]] = {
    "v1alpha2": _join_alpha,
    "v1alpha3": _join_alpha,
    "v1beta1": _join_beta,
    "v1beta2": _join_beta,
    "v1beta3": _join_beta,
    "v1beta4": _join_beta,
}


def documents(values: KubeadmValues, *, master: bool) -> list[Doc]:
    """The kubeadm documents for a master (init) or a minion (join)."""
    return (_MASTER if master else _JOIN)[values.api](values)


def dump_documents(docs: list[Doc]) -> str:
    """Multi-document YAML, keys in the order built."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    yaml.explicit_start = True
    yaml.dump_all(docs, stream)
    header = "# kubeadm configuration written by lazyjack prepare; edit it before `lazyjack up` to customise.\n"
    return header + stream.getvalue()


def render_kubeadm_config(config: Config, plan: Plan, *, node_name: str, api: str, minor: int | None = None) -> str:
    """The kubeadm config file for `node_name`: init documents on the master, join elsewhere.

    `minor` is the Kubernetes minor version kubeadm reported, when known (it picks the taint key).
    """
    values = derive(config, plan, node_name=node_name, api=api, minor=minor)
    return dump_documents(documents(values, master=plan.nodes[node_name].is_master))
