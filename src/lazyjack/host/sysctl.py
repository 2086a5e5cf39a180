"""Kernel parameters (sysctl) read and written through /proc/sys."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Protocol

from lazyjack.errors import HostError


class SysctlAPI(Protocol):
    """What steps use: read and write one parameter by its dotted name."""

    def get(self, name: str) -> str: ...
    def set(self, name: str, value: str) -> None: ...


def sysctl_parts(name: str) -> list[str]:
    """Split a parameter name into path components, as sysctl(8) reads names.

    The first separator found, '.' or '/', separates components; the other character
    stands for a dot inside a component, so that "net.ipv4.conf.eth0/100.forwarding" and
    "net/ipv4/conf/eth0.100/forwarding" both name the VLAN link eth0.100.
    """
    dot, slash = name.find("."), name.find("/")
    slash_first = slash != -1 and (dot == -1 or slash < dot)
    sep, other = ("/", ".") if slash_first else (".", "/")
    parts = [p.replace(other, ".") for p in name.split(sep)]
    if not name or any(p in ("", ".", "..") for p in parts):
        raise HostError(f"sysctl name {name!r} is not valid: expected a name like net.ipv4.ip_forward")
    return parts


class Sysctl:
    """Kernel parameters under `proc_sys` (tests point it at a directory of their own)."""

    def __init__(self, proc_sys: Path = Path("/proc/sys")) -> None:
        self.proc_sys = proc_sys

    def path(self, name: str) -> Path:
        return self.proc_sys.joinpath(*sysctl_parts(name))

    def get(self, name: str) -> str:
        """The value with surrounding whitespace removed; HostError when the key is missing."""
        path = self.path(name)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise self._error(name, path, "read", e) from e

    def set(self, name: str, value: str) -> None:
        """Write the value; a missing key is an error, never created (as in /proc/sys)."""
        path = self.path(name)
        try:
            # No O_CREAT: the kernel decides which keys exist. One write() call, because
            # procfs parses what each write() carries.
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, f"{value}\n".encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise self._error(name, path, f"set to {value!r}", e) from e

    @staticmethod
    def _error(name: str, path: Path, action: str, err: OSError) -> HostError:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return HostError(f"sysctl {name} does not exist (no {path})")
        return HostError(f"sysctl {name} could not be {action}: {err.strerror} ({path})")
