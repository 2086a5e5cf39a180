"""Run a program in a private mount namespace with fresh tmpfs mounts: `python docker_mountns.py DIR... -- ARGV`.

podman (4.x) keeps its network state (netavark's address allocations, aardvark-dns) in
/run/containers/networks whatever --root and --runroot say; the end-to-end tests give their
podman service a private, empty one, so that they neither see nor leave state of the host's.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

CLONE_NEWNS = 0x00020000


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    directories, command = argv[:split], argv[split + 1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        print(f"unshare(CLONE_NEWNS): {os.strerror(error)}", file=sys.stderr)
        return 1
    # Nothing mounted here may reach the host's mount namespace.
    subprocess.run(["mount", "--make-rprivate", "/"], check=True, timeout=30)
    for directory in directories:
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", directory], check=True, timeout=30)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
