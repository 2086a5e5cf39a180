"""systemd drop-in for kubelet that carries the cluster DNS arguments of lazyjack 1.x."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

DROPIN_PATH = "/etc/systemd/system/kubelet.service.d/20-extra-dns-args.conf"

# A DNS name: dot-separated labels of letters, digits and inner hyphens.
_DOMAIN = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def render_kubelet_dropin(
    *, dns_ip: IPv4Address | IPv6Address, cluster_domain: str = "cluster.local"
) -> str:
    """Return the drop-in that sets KUBELET_DNS_ARGS to ``dns_ip`` and ``cluster_domain``.

    kubeadm's kubelet unit has ignored this variable since Kubernetes 1.11; the file is
    still written because users of 1.x look for it, and older units do read it.
    """
    if not _DOMAIN.fullmatch(cluster_domain):
        raise ValueError(
            f"cluster_domain {cluster_domain!r} is not a DNS name: use dot-separated labels"
            " of letters, digits and hyphens, such as 'cluster.local'"
        )
    lines = [
        "# Written by lazyjack; `lazyjack clean` removes this file.",
        "# Cluster DNS and the node IP are set in the kubeadm configuration",
        "# (KubeletConfiguration.clusterDNS, nodeRegistration.kubeletExtraArgs node-ip),",
        "# which is where current kubelets read them. KUBELET_DNS_ARGS below is kept for",
        "# kubelet units that still read it (lazyjack 1.x compatibility).",
        "[Service]",
        f'Environment="KUBELET_DNS_ARGS=--cluster-dns={dns_ip} --cluster-domain={cluster_domain}"',
    ]
    return "\n".join(lines) + "\n"
