"""kubeadm config renderer: every API version, mode and role against the kubeadm API field trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from kubeadm_schema import check_stream
from lazyjack.config import Config, load_config
from lazyjack.config.plan import KUBEADM_API_VERSIONS, build_plan, kubeadm_api_for
from lazyjack.render.kubeadm import derive, documents, render_kubeadm_config

EXAMPLES = Path(__file__).parents[2] / "src" / "lazyjack" / "examples"
VERSION_OF_API = {
    "v1alpha2": "v1.11.0",
    "v1alpha3": "v1.12.0",
    "v1beta1": "v1.13.0",
    "v1beta2": "v1.18.3",
    "v1beta3": "v1.28.0",
    "v1beta4": "v1.31.0",
}


def _config(example: str, tmp_path: Path, *, version: str = "v1.31.0", extra: str = "") -> Config:
    text = (EXAMPLES / example).read_text().replace("kubernetes-version: v1.31.0", f"kubernetes-version: {version}")
    path = tmp_path / "config.yaml"
    path.write_text(text + extra)
    return load_config(path)


def _load_all(text: str) -> list[dict[str, object]]:
    return [d for d in YAML(typ="safe").load_all(text) if d is not None]


@pytest.mark.parametrize("api", KUBEADM_API_VERSIONS)
@pytest.mark.parametrize("example", ["ipv6.yaml", "ipv4.yaml", "dual-stack.yaml"])
def test_every_version_mode_and_role_matches_the_kubeadm_types(api: str, example: str, tmp_path: Path) -> None:
    config = _config(example, tmp_path, version=VERSION_OF_API[api])
    plan = build_plan(config)
    assert kubeadm_api_for(VERSION_OF_API[api]) == api
    for name in plan.nodes:
        if not plan.nodes[name].is_cluster_node:
            continue
        text = render_kubeadm_config(config, plan, node_name=name, api=api)
        assert check_stream(text) == [], f"{example} {api} {name}"


def test_v1beta4_master_documents_ipv6(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path)
    plan = build_plan(config)
    docs = _load_all(render_kubeadm_config(config, plan, node_name="my-master", api="v1beta4"))
    assert [d["kind"] for d in docs] == [
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ]
    init, cluster, kubelet, proxy = docs
    assert init["localAPIEndpoint"] == {"advertiseAddress": "fd00:20::2", "bindPort": 6443}
    reg = init["nodeRegistration"]
    assert reg["kubeletExtraArgs"] == [{"name": "node-ip", "value": "fd00:20::2"}]
    assert reg["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert reg["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    assert cluster["networking"] == {
        "podSubnet": "fd00:40::/72",
        "serviceSubnet": "fd00:30::/110",
        "dnsDomain": "cluster.local",
    }
    assert cluster["apiServer"]["extraArgs"] == [{"name": "bind-address", "value": "::"}]
    assert {"name": "bind-address", "value": "::"} in cluster["controllerManager"]["extraArgs"]
    assert {"name": "node-cidr-mask-size", "value": "80"} in cluster["controllerManager"]["extraArgs"]
    assert cluster["scheduler"]["extraArgs"] == [{"name": "bind-address", "value": "::"}]
    assert cluster["imageRepository"] == "registry.k8s.io"
    assert kubelet["clusterDNS"] == ["fd00:30::a"]
    assert kubelet["cgroupDriver"] == "systemd"
    assert proxy["bindAddress"] == "::"
    # Options lazyjack 1.x passed that newer API servers reject.
    text = render_kubeadm_config(config, plan, node_name="my-master", api="v1beta4")
    assert "insecure-port" not in text and "insecure-bind-address" not in text


def test_v1beta3_uses_maps_and_version_taint(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path, version="v1.23.4")
    plan = build_plan(config)
    init, cluster, kubelet, _ = _load_all(render_kubeadm_config(config, plan, node_name="my-master", api="v1beta3"))
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "fd00:20::2"}
    assert init["nodeRegistration"]["taints"][0]["key"] == "node-role.kubernetes.io/master"
    assert cluster["apiServer"]["extraArgs"] == {"bind-address": "::"}
    assert kubelet["cgroupDriver"] == "systemd"


def test_before_1_22_kubelet_keeps_its_cgroup_driver(tmp_path: Path) -> None:
    config = _config("ipv4.yaml", tmp_path, version="v1.18.3")
    plan = build_plan(config)
    docs = _load_all(render_kubeadm_config(config, plan, node_name="master", api="v1beta2"))
    assert "cgroupDriver" not in docs[2]
    assert "bind-address" not in str(docs[1])  # IPv4 keeps the components' defaults


def test_dual_stack_subnets_and_node_ip(tmp_path: Path) -> None:
    config = _config("dual-stack.yaml", tmp_path)
    plan = build_plan(config)
    init, cluster, _, proxy = _load_all(render_kubeadm_config(config, plan, node_name="master", api="v1beta4"))
    assert cluster["networking"]["podSubnet"] == "fd00:40::/72,10.244.0.0/16"
    assert cluster["networking"]["serviceSubnet"] == "fd00:30::/110,10.96.0.0/12"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "fd00:20::2,10.192.0.2"}]
    masks = {a["name"]: a["value"] for a in cluster["controllerManager"]["extraArgs"]}
    assert masks == {"node-cidr-mask-size-ipv6": "80", "node-cidr-mask-size-ipv4": "24"}
    assert proxy["clusterCIDR"] == "fd00:40::/72,10.244.0.0/16"


def test_dual_stack_ipv4_service_family_first(tmp_path: Path) -> None:
    config = _config("dual-stack.yaml", tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    text = text.replace("cidr: fd00:30::/110\n    cidr2: 10.96.0.0/12", "cidr: 10.96.0.0/12\n    cidr2: fd00:30::/110")
    (tmp_path / "config.yaml").write_text(text)
    config = load_config(tmp_path / "config.yaml")
    plan = build_plan(config)
    init = _load_all(render_kubeadm_config(config, plan, node_name="minion", api="v1beta4"))[0]
    assert init["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.192.0.2:6443"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.192.0.3,fd00:20::3"}]


def test_join_with_ca_hash_and_insecure(tmp_path: Path) -> None:
    secure = _config(
        "ipv6.yaml",
        tmp_path,
        extra="",
    )
    text = (tmp_path / "config.yaml").read_text().replace("insecure: true", "insecure: false")
    text = text.replace(
        "general:\n",
        "general:\n    token: 7f3k2a.0123456789abcdef\n    token-cert-hash: " + "ab" * 32 + "\n",
    )
    (tmp_path / "config.yaml").write_text(text)
    secure = load_config(tmp_path / "config.yaml")
    plan = build_plan(secure)
    join = _load_all(render_kubeadm_config(secure, plan, node_name="a-minion", api="v1beta4"))[0]
    assert join["discovery"]["bootstrapToken"] == {
        "token": "7f3k2a.0123456789abcdef",
        "apiServerEndpoint": "[fd00:20::2]:6443",
        "caCertHashes": ["sha256:" + "ab" * 32],
    }
    assert "taints" not in join["nodeRegistration"]
    insecure = _config("ipv6.yaml", tmp_path / "..")
    plan = build_plan(insecure)
    join = _load_all(render_kubeadm_config(insecure, plan, node_name="a-minion", api="v1beta4"))[0]
    assert join["discovery"]["bootstrapToken"]["token"] == "abcdef.abcdefghijklmnop"
    assert join["discovery"]["bootstrapToken"]["unsafeSkipCAVerification"] is True


def test_v1alpha2_is_one_master_configuration(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path, version="v1.11.2")
    plan = build_plan(config)
    (master,) = _load_all(render_kubeadm_config(config, plan, node_name="my-master", api="v1alpha2"))
    assert master["kind"] == "MasterConfiguration"
    assert master["api"]["advertiseAddress"] == "fd00:20::2"
    assert master["kubeletConfiguration"]["baseConfig"]["clusterDNS"] == ["fd00:30::a"]
    (node,) = _load_all(render_kubeadm_config(config, plan, node_name="a-minion", api="v1alpha2"))
    assert node["kind"] == "NodeConfiguration"
    assert node["discoveryTokenAPIServers"] == ["[fd00:20::2]:6443"]


def test_hex_ids_reach_the_kubeadm_config(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path)
    text = (tmp_path / "config.yaml").read_text().replace("id: 2", "id: 10").replace("id: 3", "id: 171")
    (tmp_path / "config.yaml").write_text(text)
    config = load_config(tmp_path / "config.yaml")
    plan = build_plan(config)
    values = derive(config, plan, node_name="a-minion", api="v1beta4")
    assert values.api_endpoint == "[fd00:20::a]:6443"
    (join,) = documents(values, master=False)
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "fd00:20::ab"}]


def test_unknown_api_version_is_refused(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path)
    with pytest.raises(ValueError, match="v9"):
        derive(config, build_plan(config), node_name="my-master", api="v9")


def test_installed_kubeadm_minor_picks_the_taint_key(tmp_path: Path) -> None:
    config = _config("ipv6.yaml", tmp_path)
    text = (tmp_path / "config.yaml").read_text().replace("    kubernetes-version: v1.31.0\n", "")
    (tmp_path / "config.yaml").write_text(text)
    config = load_config(tmp_path / "config.yaml")
    plan = build_plan(config)
    for minor, key in ((28, "node-role.kubernetes.io/control-plane"), (23, "node-role.kubernetes.io/master")):
        init = _load_all(render_kubeadm_config(config, plan, node_name="my-master", api="v1beta3", minor=minor))[0]
        assert init["nodeRegistration"]["taints"][0]["key"] == key
