"""Commands: for each lazyjack command, what it does for this host's roles."""

#: Phases of `up` that `--skip-phases` accepts (also honoured by down), for hosts where
#: kubelet or kubeadm are managed otherwise.
UP_PHASES = {
    "cni": "write the CNI configuration",
    "routes": "add routes to the other nodes' pod subnets",
    "kubelet": "systemctl daemon-reload and restart kubelet",
    "kubeadm": "kubeadm init (master) / join (minion), and reset at down",
}
