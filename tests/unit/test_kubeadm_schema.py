"""Tests for the kubeadm config checker in tests/kubeadm_schema.py and its data file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubeadm_schema import check_document, check_stream, load_api

KUBELET = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "::"
healthzBindAddress: "::1"
cgroupDriver: systemd
clusterDNS:
- fd00:1234::a
- 10.96.0.10
clusterDomain: cluster.local
failSwapOn: false
authentication:
  webhook:
    enabled: true
"""

KUBE_PROXY = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: "::"
healthzBindAddress: "[::]:10256"
metricsBindAddress: "[::1]:10249"
clusterCIDR: fd00:40::/72,10.244.0.0/16
mode: iptables
"""

V1BETA3 = f"""\
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.abcdefghijklmnop
  ttl: 0s
  usages: [signing, authentication]
  groups: ["system:bootstrappers:kubeadm:default-node-token"]
  description: lazyjack token
localAPIEndpoint:
  advertiseAddress: fd00:20::2
  bindPort: 6443
nodeRegistration:
  name: master
  criSocket: unix:///var/run/containerd/containerd.sock
  taints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
  kubeletExtraArgs:
    node-ip: fd00:20::2,10.20.0.2
  ignorePreflightErrors: [Swap]
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.2
imageRepository: registry.k8s.io
certificatesDir: /etc/kubernetes/pki
controlPlaneEndpoint: "[fd00:20::2]:6443"
networking:
  podSubnet: fd00:40::/72,10.244.0.0/16
  serviceSubnet: fd00:30::/110,10.96.0.0/12
  dnsDomain: cluster.local
apiServer:
  certSANs: [fd00:20::2, master]
  extraArgs:
    bind-address: "::"
controllerManager:
  extraArgs:
    node-cidr-mask-size-ipv6: "80"
scheduler:
  extraArgs:
    bind-address: "::"
etcd:
  local:
    dataDir: /var/lib/etcd
    extraArgs:
      listen-metrics-urls: http://[::1]:2381
    serverCertSANs: [fd00:20::2]
---
{KUBELET}---
{KUBE_PROXY}"""

V1BETA4 = f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.abcdefghijklmnop
  ttl: 24h0m0s
localAPIEndpoint:
  advertiseAddress: fd00:20::2
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  taints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
  kubeletExtraArgs:
  - name: node-ip
    value: fd00:20::2,10.20.0.2
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
imageRepository: registry.k8s.io
networking:
  podSubnet: fd00:40::/72,10.244.0.0/16
  serviceSubnet: fd00:30::/110,10.96.0.0/12
apiServer:
  certSANs: [fd00:20::2]
  extraArgs:
  - name: bind-address
    value: "::"
controllerManager:
  extraArgs:
  - name: node-cidr-mask-size-ipv6
    value: "80"
scheduler:
  extraArgs: []
etcd:
  local:
    dataDir: /var/lib/etcd
    extraArgs:
    - name: listen-metrics-urls
      value: http://[::1]:2381
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
nodeRegistration:
  kubeletExtraArgs:
  - name: node-ip
    value: fd00:20::3
discovery:
  bootstrapToken:
    token: abcdef.abcdefghijklmnop
    apiServerEndpoint: "[fd00:20::2]:6443"
    caCertHashes: ["sha256:0123"]
  tlsBootstrapToken: abcdef.abcdefghijklmnop
timeouts:
  discovery: 5m0s
---
{KUBELET}---
{KUBE_PROXY}"""

V1BETA1 = """\
apiVersion: kubeadm.k8s.io/v1beta1
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.abcdefghijklmnop
localAPIEndpoint:
  advertiseAddress: fd00:20::2
nodeRegistration:
  kubeletExtraArgs:
    node-ip: fd00:20::2
---
apiVersion: kubeadm.k8s.io/v1beta1
kind: ClusterConfiguration
kubernetesVersion: v1.13.0
networking:
  podSubnet: fd00:40::/72
  serviceSubnet: fd00:30::/110
apiServer:
  extraArgs:
    bind-address: "::"
---
apiVersion: kubeadm.k8s.io/v1beta1
kind: JoinConfiguration
discovery:
  bootstrapToken:
    token: abcdef.abcdefghijklmnop
    apiServerEndpoint: "[fd00:20::2]:6443"
    unsafeSkipCAVerification: true
  timeout: 5m0s
"""


@pytest.mark.parametrize("text", [V1BETA1, V1BETA3, V1BETA4], ids=["v1beta1", "v1beta3", "v1beta4"])
def test_valid_streams_have_no_problems(text: str) -> None:
    assert check_stream(text) == []


def test_old_flat_layouts_are_accepted() -> None:
    master = {
        "apiVersion": "kubeadm.k8s.io/v1alpha2",
        "kind": "MasterConfiguration",
        "api": {"advertiseAddress": "fd00:20::2", "bindPort": 6443},
        "apiServerExtraArgs": {"bind-address": "::"},
        "kubeProxy": {"config": {"mode": "iptables"}},
    }
    join = {
        "apiVersion": "kubeadm.k8s.io/v1alpha3",
        "kind": "JoinConfiguration",
        "token": "abcdef.abcdefghijklmnop",
        "discoveryTokenAPIServers": ["[fd00:20::2]:6443"],
        "discoveryTokenUnsafeSkipCAVerification": True,
    }
    assert check_document(master) == []
    assert check_document(join) == []


def test_unknown_field() -> None:
    doc = {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration", "foo": 1}
    assert check_document(doc) == ["InitConfiguration.foo: unknown field"]


def test_misplaced_field() -> None:
    doc = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "advertiseAddress": "fd00:20::2",
        "networking": {"podSubnet": "fd00:40::/72", "bindPort": 6443},
    }
    assert check_document(doc) == [
        "ClusterConfiguration.advertiseAddress: unknown field",
        "ClusterConfiguration.networking.bindPort: unknown field",
    ]


def test_v1beta4_extra_args_must_be_a_list() -> None:
    doc = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {"extraArgs": {"bind-address": "::"}},
    }
    assert check_document(doc) == [
        "ClusterConfiguration.apiServer.extraArgs: expected list of {name, value}, got mapping"
    ]


def test_v1beta3_extra_args_must_be_a_mapping() -> None:
    doc = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "InitConfiguration",
        "nodeRegistration": {"kubeletExtraArgs": [{"name": "node-ip", "value": "::1"}]},
    }
    assert check_document(doc) == [
        "InitConfiguration.nodeRegistration.kubeletExtraArgs: expected map[string]string, got list"
    ]


def test_scalar_types_are_checked() -> None:
    text = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  bindPort: "6443"
nodeRegistration:
  kubeletExtraArgs:
  - name: fail-swap-on
    value: false
"""
    assert check_stream(text) == [
        "document 1: InitConfiguration.localAPIEndpoint.bindPort: expected int, got string",
        "document 1: InitConfiguration.nodeRegistration.kubeletExtraArgs[0].value: "
        "expected string, got bool",
    ]


def test_unknown_api_version_and_kind() -> None:
    assert check_document({"apiVersion": "kubeadm.k8s.io/v9", "kind": "InitConfiguration"}) == [
        "InitConfiguration: unknown apiVersion 'kubeadm.k8s.io/v9'"
    ]
    problems = check_document({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "Master"})
    assert len(problems) == 1
    assert problems[0].startswith("Master: unknown kind for kubeadm.k8s.io/v1beta3")
    assert check_document({"kind": "InitConfiguration"}) == [
        "InitConfiguration: missing or invalid apiVersion"
    ]


def test_stream_reports_document_number_and_yaml_errors() -> None:
    text = f"{KUBELET}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nx: 1\n"
    assert check_stream(text) == ["document 2: JoinConfiguration.x: unknown field"]
    assert check_stream("a: [1\n")[0].startswith("YAML error:")


def test_data_covers_every_version_with_sources() -> None:
    api = load_api()
    three = {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration"}
    expected = {
        "kubeadm.k8s.io/v1alpha2": {"MasterConfiguration", "NodeConfiguration"},
        "kubeadm.k8s.io/v1alpha3": three,
        "kubeadm.k8s.io/v1beta1": three,
        "kubeadm.k8s.io/v1beta2": three,
        "kubeadm.k8s.io/v1beta3": three,
        "kubeadm.k8s.io/v1beta4": three,
        "kubelet.config.k8s.io/v1beta1": {"KubeletConfiguration"},
        "kubeproxy.config.k8s.io/v1alpha1": {"KubeProxyConfiguration"},
    }
    for version, kinds in expected.items():
        assert kinds <= set(api[version]), version
        assert any("commit" in s for s in api["_sources"][version]), version
