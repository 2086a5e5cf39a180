"""lazyjack: prepare bare-metal hosts for a kubeadm cluster (IPv6, IPv4, dual-stack) and undo it."""

__version__ = "2.0.0.dev0"
