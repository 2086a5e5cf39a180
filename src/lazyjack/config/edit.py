"""Writing values back into a configuration file, keeping its comments, key order and layout (init, lab)."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

from lazyjack.errors import FileOperationFailed
from lazyjack.host.files import replace_file

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
    the mode it had. A symbolic link is followed: its target is replaced and the link stays.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
        st = path.stat()
    except OSError as e:
        raise FileOperationFailed("read", str(path), e.errno or errno.EIO) from e
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
    # Only root can give the file to its owner; anyone else writes it as their own, as before.
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
    try:
        replace_file(path, out.getvalue().encode("utf-8"), mode=stat.S_IMODE(st.st_mode) if mode is None else mode,
                     owner=owner)
    except OSError as e:
        raise FileOperationFailed("write", str(path), e.errno or errno.EIO) from e
    return stat.S_IMODE(st.st_mode)
