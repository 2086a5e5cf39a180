"""The node side of `lazyjack cluster`: the config hand-out as root, 0600, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lazyjack.commands.nodeside import push_config, read_private_file
from lazyjack.errors import HostError

DATA = b"general:\n    mode: ipv4\n"


def test_written_once_root_0600(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "lazyjack" / "config.yaml"
    assert push_config(DATA, path, dry_run=False) is True
    st = path.stat()
    assert path.read_bytes() == DATA and st.st_mode & 0o777 == 0o600 and st.st_uid == 0
    assert path.parent.stat().st_mode & 0o777 == 0o755
    assert push_config(DATA, path, dry_run=False) is False
    assert push_config(DATA + b"# more\n", path, dry_run=False) is True
    assert path.read_bytes() == DATA + b"# more\n"
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left


def test_same_bytes_but_loose_mode_is_fixed(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(DATA)
    path.chmod(0o644)
    assert push_config(DATA, path, dry_run=False) is True
    assert path.stat().st_mode & 0o777 == 0o600


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.yaml"
    assert push_config(DATA, path, dry_run=True) is True
    assert not path.parent.exists()
    (tmp_path / "new").mkdir()
    path.write_bytes(b"old")
    path.chmod(0o600)
    assert push_config(DATA, path, dry_run=True) is True
    assert path.read_bytes() == b"old"


def test_link_at_the_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "config.yaml"
    path.symlink_to(victim)
    with pytest.raises(HostError, match="is a symbolic link"):
        push_config(DATA, path, dry_run=False)
    assert victim.read_bytes() == b"precious" and path.is_symlink()
    with pytest.raises(HostError, match="is a symbolic link"):
        read_private_file(path)


def test_link_as_the_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "lazyjack").symlink_to(real)
    with pytest.raises(HostError, match="'lazyjack' is a symbolic link or not a directory"):
        push_config(DATA, tmp_path / "lazyjack" / "config.yaml", dry_run=False)
    assert list(real.iterdir()) == []


def test_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(HostError, match="writable by root only"):
        push_config(DATA, shared / "config.yaml", dry_run=False)
    os.chown(shared, 1000, 1000)
    shared.chmod(0o755)
    with pytest.raises(HostError, match="owned by uid 1000"):
        push_config(DATA, shared / "config.yaml", dry_run=False)
    assert list(shared.iterdir()) == []


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert read_private_file(tmp_path / "nothing" / "config.yaml") is None
