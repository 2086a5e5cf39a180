"""Files under a root directory: chroot-like lookup, atomic writes that keep owner and mode."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from lazyjack.errors import FileOperationFailed, HostError
from lazyjack.host.files import Files


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    return tmp_path


@pytest.fixture
def files(root: Path) -> Files:
    return Files(root)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Lookup --------------------------------------------------------------------------------------


def test_host_paths_map_under_the_root(files: Files, root: Path) -> None:
    assert files.resolve("/etc/hosts") == root / "etc" / "hosts"
    assert files.resolve("/etc/../etc/./hosts") == root / "etc" / "hosts"
    assert files.resolve("/") == root


@pytest.mark.parametrize("path", ["/..", "/etc/../../x", "/../../../etc/passwd"])
def test_paths_leading_outside_the_root_are_refused(files: Files, path: str) -> None:
    with pytest.raises(HostError, match="outside the root"):
        files.read_bytes(path)


def test_relative_paths_are_refused(files: Files) -> None:
    with pytest.raises(HostError, match="must be absolute"):
        files.read_bytes("etc/hosts")


def test_an_absolute_symlink_is_followed_inside_the_root(files: Files, root: Path) -> None:
    (root / "run" / "systemd").mkdir(parents=True)
    (root / "run" / "systemd" / "resolv.conf").write_bytes(b"nameserver fd00:10::100\n")
    (root / "etc" / "resolv.conf").symlink_to("/run/systemd/resolv.conf")
    assert files.read_bytes("/etc/resolv.conf") == b"nameserver fd00:10::100\n"
    assert files.resolve("/etc/resolv.conf") == root / "run" / "systemd" / "resolv.conf"
    assert files.resolve("/etc/resolv.conf", follow=False) == root / "etc" / "resolv.conf"
    assert files.is_symlink("/etc/resolv.conf")


def test_a_symlink_leading_outside_the_root_is_refused(files: Files, root: Path) -> None:
    (root / "etc" / "escape").symlink_to("../../..")
    with pytest.raises(HostError, match="outside the root"):
        files.read_bytes("/etc/escape/etc/passwd")


def test_a_symlink_loop_is_eloop(files: Files, root: Path) -> None:
    (root / "etc" / "a").symlink_to("b")
    (root / "etc" / "b").symlink_to("a")
    with pytest.raises(FileOperationFailed) as caught:
        files.read_bytes("/etc/a")
    assert caught.value.code == errno.ELOOP


def test_root_slash_is_the_real_filesystem() -> None:
    assert Files(Path("/")).resolve("/proc/self") == Path("/proc") / str(os.getpid())


# Reading -------------------------------------------------------------------------------------


def test_reading(files: Files) -> None:
    assert files.read_bytes("/etc/hosts") == b"127.0.0.1 localhost\n"
    assert files.read_text("/etc/hosts") == "127.0.0.1 localhost\n"
    assert files.read_bytes("/etc/missing") is None
    assert files.read_text("/etc/missing") is None
    assert files.exists("/etc/hosts")
    assert not files.exists("/etc/missing")
    assert files.stat("/etc/missing") is None
    info = files.stat("/etc/hosts")
    assert info is not None and info.st_size == 20


def test_a_dangling_symlink_does_not_exist_but_is_a_symlink(files: Files, root: Path) -> None:
    (root / "etc" / "dangling").symlink_to("/nowhere")
    assert not files.exists("/etc/dangling")
    assert files.is_symlink("/etc/dangling")


def test_text_that_is_not_utf8_is_a_host_error(files: Files, root: Path) -> None:
    (root / "etc" / "latin1").write_bytes(b"caf\xe9\n")
    with pytest.raises(HostError, match="not utf-8 text"):
        files.read_text("/etc/latin1")


def test_an_unreadable_path_is_named(files: Files, root: Path) -> None:
    with pytest.raises(FileOperationFailed) as caught:
        files.read_bytes("/etc")
    assert caught.value.path == "/etc"
    assert caught.value.code == errno.EISDIR
    assert f"cannot read /etc (under root {root})" in str(caught.value)


# Writing -------------------------------------------------------------------------------------


def test_write_atomic_creates_with_default_mode_and_parents(files: Files, root: Path) -> None:
    files.write_atomic("/etc/cni/net.d/00-lazyjack.conflist", b"{}\n")
    target = root / "etc" / "cni" / "net.d" / "00-lazyjack.conflist"
    assert target.read_bytes() == b"{}\n"
    assert mode_of(target) == 0o644
    assert mode_of(root / "etc" / "cni") == 0o755
    assert mode_of(root / "etc" / "cni" / "net.d") == 0o755


def test_write_atomic_gives_a_new_file_the_mode_asked(files: Files, root: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        files.write_atomic("/etc/kubernetes/pki/token", b"secret", mode=0o600)
        files.write_atomic("/etc/kubernetes/readable", b"x", mode=0o644)
    finally:
        os.umask(old_umask)
    assert mode_of(root / "etc/kubernetes/pki/token") == 0o600
    assert mode_of(root / "etc/kubernetes/readable") == 0o644
    assert mode_of(root / "etc/kubernetes/pki") == 0o755


def test_write_atomic_keeps_an_existing_files_mode_and_owner(files: Files, root: Path) -> None:
    hosts = root / "etc" / "hosts"
    os.chmod(hosts, 0o640)
    before = hosts.stat()
    files.write_atomic("/etc/hosts", b"fd00:20::2 my-master\n", mode=0o600)
    after = hosts.stat()
    assert hosts.read_bytes() == b"fd00:20::2 my-master\n"
    assert mode_of(hosts) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # replaced by rename, not rewritten in place


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_write_atomic_keeps_another_owner(files: Files, root: Path) -> None:
    os.chown(root / "etc" / "hosts", 1234, 5678)
    files.write_atomic("/etc/hosts", b"new\n")
    info = (root / "etc" / "hosts").stat()
    assert (info.st_uid, info.st_gid) == (1234, 5678)


def test_write_atomic_leaves_no_temp_file(files: Files, root: Path) -> None:
    files.write_atomic("/etc/hosts", b"new\n")
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["hosts"]


def test_write_atomic_through_a_symlink_replaces_the_target(files: Files, root: Path) -> None:
    (root / "run").mkdir()
    (root / "run" / "resolv.conf").write_bytes(b"old\n")
    (root / "etc" / "resolv.conf").symlink_to("../run/resolv.conf")
    files.write_atomic("/etc/resolv.conf", b"new\n")
    assert (root / "etc" / "resolv.conf").is_symlink()
    assert (root / "run" / "resolv.conf").read_bytes() == b"new\n"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(files: Files, root: Path) -> None:
    (root / "etc" / "dir").mkdir()
    with pytest.raises(FileOperationFailed) as caught:
        files.write_atomic("/etc/dir", b"x")
    assert caught.value.code == errno.EISDIR
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["dir", "hosts"]


def test_makedirs_sets_the_exact_mode(files: Files, root: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        files.makedirs("/var/lib/lazyjack", 0o700)
        files.makedirs("/var/lib/lazyjack", 0o700)
    finally:
        os.umask(old_umask)
    # Only the directory asked for is restricted; the parents made on the way get the usual 0755.
    assert mode_of(root / "var") == mode_of(root / "var" / "lib") == 0o755
    assert mode_of(root / "var" / "lib" / "lazyjack") == 0o700


def test_makedirs_over_a_file_fails(files: Files) -> None:
    with pytest.raises(FileOperationFailed) as caught:
        files.makedirs("/etc/hosts/d")
    assert caught.value.code == errno.ENOTDIR


# Other changes -------------------------------------------------------------------------------


def test_remove_twice(files: Files, root: Path) -> None:
    assert files.remove("/etc/hosts") is True
    assert files.remove("/etc/hosts") is False
    assert not (root / "etc" / "hosts").exists()


def test_listdir_and_rmdir(files: Files, root: Path) -> None:
    files.write_atomic("/etc/cni/net.d/b.conflist", b"{}")
    files.write_atomic("/etc/cni/net.d/a.conflist", b"{}")
    assert files.listdir("/etc/cni/net.d") == ["a.conflist", "b.conflist"]
    with pytest.raises(FileOperationFailed) as not_empty:
        files.rmdir("/etc/cni/net.d")
    assert not_empty.value.code == errno.ENOTEMPTY
    files.remove("/etc/cni/net.d/a.conflist")
    files.remove("/etc/cni/net.d/b.conflist")
    assert files.listdir("/etc/cni/net.d") == []
    assert files.rmdir("/etc/cni/net.d") is True
    assert files.rmdir("/etc/cni/net.d") is False
    assert not (root / "etc" / "cni" / "net.d").exists()
    with pytest.raises(FileOperationFailed) as missing:
        files.listdir("/etc/cni/net.d")
    assert missing.value.code == errno.ENOENT


def test_remove_a_symlink_keeps_its_target(files: Files, root: Path) -> None:
    (root / "etc" / "link").symlink_to("hosts")
    assert files.remove("/etc/link") is True
    assert (root / "etc" / "hosts").exists()


def test_chmod_and_chown(files: Files, root: Path) -> None:
    files.chmod("/etc/hosts", 0o600)
    assert mode_of(root / "etc" / "hosts") == 0o600
    files.chown("/etc/hosts", os.getuid(), os.getgid())
    with pytest.raises(FileOperationFailed) as caught:
        files.chmod("/etc/missing", 0o600)
    assert caught.value.code == errno.ENOENT


def test_copy_takes_the_source_mode_or_the_one_asked(files: Files, root: Path) -> None:
    os.chmod(root / "etc" / "hosts", 0o640)
    files.copy("/etc/hosts", "/tmp/hosts")
    files.copy("/etc/hosts", "/tmp/hosts.private", mode=0o600)
    assert (root / "tmp" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert mode_of(root / "tmp" / "hosts") == 0o640
    assert mode_of(root / "tmp" / "hosts.private") == 0o600
    with pytest.raises(FileOperationFailed) as caught:
        files.copy("/etc/missing", "/tmp/x")
    assert caught.value.code == errno.ENOENT


def test_backup_once_keeps_the_original(files: Files, root: Path) -> None:
    os.chmod(root / "etc" / "hosts", 0o640)
    assert files.backup("/etc/hosts") is True
    files.write_atomic("/etc/hosts", b"edited\n")
    assert files.backup("/etc/hosts") is False
    assert (root / "etc" / "hosts.bak").read_bytes() == b"127.0.0.1 localhost\n"
    assert mode_of(root / "etc" / "hosts.bak") == 0o640
    assert files.backup("/etc/missing") is False
    assert files.backup("/etc/hosts", suffix=".lazyjack") is True
    assert (root / "etc" / "hosts.lazyjack").read_bytes() == b"edited\n"


def test_write_secret_is_0600_whatever_the_file_had_and_keeps_the_owner(files: Files, root: Path) -> None:
    files.write_atomic("/etc/kubernetes/admin.conf", b"old\n", mode=0o644)
    os.chown(root / "etc/kubernetes/admin.conf", 1234, 2345)
    files.write_secret("/etc/kubernetes/admin.conf", b"token\n")
    info = (root / "etc/kubernetes/admin.conf").stat()
    assert (mode_of(root / "etc/kubernetes/admin.conf"), info.st_uid, info.st_gid) == (0o600, 1234, 2345)
    files.write_secret("/etc/kubernetes/new.key", b"key\n")
    assert mode_of(root / "etc/kubernetes/new.key") == 0o600
