"""`lazyjack lab`: a config's whole topology on this machine, in network namespaces, running the real commands.

Like kind for kubeadm: one namespace per node (`lj-<node>`) on a management switch, a simulated
IPv4 internet for the DNS64/NAT64 node, `--root` sandboxes for the nodes' files, and the real
`lazyjack init/prepare/up/down/clean` run inside. Nothing here is imported by the other commands.
"""

from __future__ import annotations

from collections.abc import Callable

from lazyjack.errors import HostError

#: Receives one line of progress at a time; the CLI prints it.
Report = Callable[[str], None]


class LabError(HostError):
    """The lab could not be built, checked or removed; the message says what and how to go on."""
