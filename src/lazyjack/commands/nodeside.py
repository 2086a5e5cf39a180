"""What `lazyjack cluster` runs on a node besides the node commands: facts, and the config hand-out.

These are the hidden `lazyjack _node facts|push-config|read-config` commands. Each answers with
one JSON object on stdout, so the cluster reads values, never message text. The new config
comes on stdin: pre-flight and `--dry-run` see it without anything being written on the node.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lazyjack import __version__
from lazyjack.errors import FileOperationFailed, HostError
from lazyjack.host.files import open_directory, write_at

NOTHING, PREPARED, UP = "nothing", "prepared", "up"
CONFIG_MODE = 0o600
NEW_DIR_MODE = 0o755


@dataclass(frozen=True)
class Facts:
    """What pre-flight and `cluster status` need to know about a node."""

    version: str
    hostname: str
    interface: str
    interface_exists: bool
    applied: str
    config: str  # "same", "differs" or "missing": the node's copy against the one on stdin

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "hostname": self.hostname, "interface": self.interface,
                "interface_exists": self.interface_exists, "applied": self.applied, "config": self.config}


def applied_state(root: Path, *, host: str) -> str:
    """nothing, prepared or up: what the node's journal records."""
    from lazyjack.host.files import Files
    from lazyjack.steps.journal import Journal

    journal = Journal.load(Files(root), host=host)
    if journal.of("up"):
        return UP
    return PREPARED if journal.of("prepare") else NOTHING


def interface_exists(name: str) -> bool:
    """The link exists in this process's network namespace (sysfs may show another one's)."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def gather_facts(*, new_config: bytes, host: str, root: Path, config_path: Path) -> Facts:
    """Facts of this node; `new_config` (validated first) is the config the cluster is about to use."""
    from lazyjack.config.load import parse_config
    from lazyjack.config.rules import validate

    config = validate(parse_config(new_config, name="<the cluster's config>"), host=host, require_token=False)
    interface = config.nodes[host].interface
    current = read_private_file(config_path)
    state = "missing" if current is None else ("same" if current == new_config else "differs")
    return Facts(version=__version__, hostname=socket.gethostname(), interface=interface,
                 interface_exists=interface_exists(interface), applied=applied_state(root, host=host), config=state)


# --- the config file: no link followed, root's, 0600 ---------------------------------------


def _open_dir(path: PurePosixPath, *, create: bool) -> int:
    """A descriptor of directory `path`, no link followed; missing directories made (0755) when `create`."""
    return open_directory(path, create_mode=NEW_DIR_MODE if create else None)


def _check_dir(fd: int, path: PurePosixPath) -> None:
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HostError(f"{path} is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}; the config "
                        "directory must be root's and writable by root only (chown root: and chmod go-w it)")


def read_private_file(path: Path) -> bytes | None:
    """The file's bytes, or None when it (or its directory) does not exist; links are refused."""
    target = PurePosixPath(path)
    try:
        dirfd = _open_dir(target.parent, create=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FileOperationFailed("read", str(path), e.errno or errno.EIO) from e
    try:
        fd = os.open(target.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HostError(f"{path} is a symbolic link; the config must be a regular file") from None
        raise FileOperationFailed("read", str(path), e.errno or errno.EIO) from e
    finally:
        os.close(dirfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise HostError(f"{path} is not a regular file")
        return f.read()


def push_config(data: bytes, path: Path, *, dry_run: bool) -> bool:
    """Make `path` hold exactly `data`, root's, mode 0600; True when it had to be written.

    Written atomically (a temp file in the same directory, fsync, rename), never through a link.
    """
    target = PurePosixPath(path)
    if os.geteuid() != 0 and not dry_run:
        raise HostError(f"writing {path} needs root (cluster runs this through sudo -n for a non-root ssh-user)")
    try:
        dirfd = _open_dir(target.parent, create=not dry_run)
    except FileNotFoundError:
        return True  # dry run: the directory would be made
    except OSError as e:
        raise FileOperationFailed("write", str(path), e.errno or errno.EIO) from e
    try:
        _check_dir(dirfd, target.parent)
        current, st = _read_at(dirfd, target.name, path)
        if current == data and st is not None and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == CONFIG_MODE:
            return False
        if dry_run:
            return True
        try:
            _write_at(dirfd, target.name, data)
        except OSError as e:
            raise FileOperationFailed("write", str(path), e.errno or errno.EIO) from e
        return True
    finally:
        os.close(dirfd)


def _read_at(dirfd: int, name: str, path: Path) -> tuple[bytes | None, os.stat_result | None]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HostError(f"{path} is a symbolic link; remove it (the config is written as a regular file)") from None
        raise FileOperationFailed("read", str(path), e.errno or errno.EIO) from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise HostError(f"{path} is not a regular file; move it away")
        return f.read(), st


def _write_at(dirfd: int, name: str, data: bytes) -> None:
    write_at(dirfd, name, data, mode=CONFIG_MODE, owner=(0, 0))
