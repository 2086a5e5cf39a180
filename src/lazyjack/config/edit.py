"""Writing values back into a configuration file, keeping its comments, key order and layout (init, lab)."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

from lazyjack.errors import FileOperationFailed
from lazyjack.host.files import open_directory, write_at

#: The mode of a configuration that holds the bootstrap token (as kubeadm keeps its own token files).
SECRET_MODE = 0o600


def config_mode(path: Path) -> int:
    """The permission bits of the configuration file (a symbolic link followed)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError as e:
        raise FileOperationFailed("read", str(path), e.errno or errno.EIO) from e


def restrict_config_mode(path: Path, mode: int) -> int:
    """Give the configuration file `mode` (a symbolic link followed); returns the mode it had."""
    was = config_mode(path)
    try:
        os.chmod(path, mode)
    except OSError as e:
        raise FileOperationFailed("chmod", str(path), e.errno or errno.EIO) from e
    return was


def update_config_file(path: Path, general: dict[str, str], *, mode: int | None = None) -> int:
    """Set keys of the general section, keeping comments, key order, indentation and owner; atomic.

    The file keeps its mode, or gets `mode` (init: 0600, the file then holds a secret). Returns
    the mode it had. A symbolic link given as `path` is followed once: its target is replaced and
    the link stays. The write never follows a link after that (`write_config`).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    real = path.resolve()
    try:
        text = real.read_text(encoding="utf-8")
        st = real.stat()
    except OSError as e:
        raise FileOperationFailed("read", str(real), e.errno or errno.EIO) from e
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # Keep the file's own indentation and never fold the 64-digit hash onto a second line.
    yaml.width = 4096
    yaml.indent(mapping=indent, sequence=indent, offset=block_seq_indent)
    document = yaml.load(text)
    section = document.get("general")
    if section is None:
        # No section, or an empty `general:`: insert one first (replaces the empty one in place).
        section = CommentedMap()
        document.insert(0, "general", section)
    for key, value in general.items():
        section[key] = value
    out = io.StringIO()
    yaml.dump(document, out)
    write_config(real, out.getvalue().encode("utf-8"), mode=stat.S_IMODE(st.st_mode) if mode is None else mode)
    return stat.S_IMODE(st.st_mode)


def write_config(real: Path, data: bytes, *, mode: int) -> None:
    """Replace the configuration file at `real` (a path without links) with `data` and `mode`, keeping its owner.

    Its directory is opened without following a link (one swapped in since the path was
    resolved is refused). Root writes there only when no one else controls it: in a directory of a
    user (their home), or one anybody may write in (/tmp) holding a file of theirs, the write
    happens as that user (`UserFiles`), so a link they plant cannot turn it into root's write
    elsewhere (~/k8s -> /etc would put root's `crontab` there).
    """
    from lazyjack.host.users import User, UserFiles

    try:
        dirfd = open_directory(real.parent)
    except OSError as e:
        raise FileOperationFailed("write", str(real), e.errno or errno.EIO) from e
    try:
        directory = os.fstat(dirfd)
        try:
            current = os.stat(real.name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        shared = directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        owner = directory.st_uid if directory.st_uid != 0 else (current.st_uid if current is not None and shared else 0)
        me = os.geteuid()
        if owner in (0, me) or me != 0:
            # Root's own directory (or not root at all: nothing to hand over); the file keeps its owner.
            keep = (current.st_uid, current.st_gid) if current is not None and me == 0 else None
            try:
                write_at(dirfd, real.name, data, mode=mode, owner=keep)
            except OSError as e:
                raise FileOperationFailed("write", str(real), e.errno or errno.EIO) from e
            return
    finally:
        os.close(dirfd)
    gid = current.st_gid if current is not None and current.st_uid == owner else directory.st_gid
    user = User(f"uid {owner}", owner, gid, str(real.parent))
    UserFiles(user, real.parent, owned=directory.st_uid == owner).write(real.name, data, mode=mode)
