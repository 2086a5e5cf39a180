"""Writing the config back (init, cluster, lab): never through a link, and as the user who controls its directory.

`sudo lazyjack init --config ~/k8s/cluster.yaml` runs as root on a path the user controls: had they
swapped ~/k8s for a link to /etc after lazyjack resolved the path, root would have written /etc/cluster.yaml
(or /etc/crontab, for a config named so). These switch to a real unprivileged uid, so they need root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lazyjack.config.edit import update_config_file, write_config
from lazyjack.errors import HostError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root (CI runs as root)")
UID = GID = 65534
TEXT = "general:\n    mode: ipv6\n"


def _users_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(mode=0o750)
    os.chown(home, UID, GID)
    return home


def test_a_directory_swapped_for_a_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    home = _users_dir(tmp_path)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "crontab").write_text("* * * * * root /bin/true\n")
    (home / "k8s").symlink_to(etc)  # was a directory when the path was resolved
    with pytest.raises(HostError, match="'k8s' is a symbolic link or not a directory; lazyjack does not follow it"):
        write_config(home / "k8s" / "crontab", b"general: {}\n", mode=0o600)
    assert (etc / "crontab").read_text() == "* * * * * root /bin/true\n"
    assert sorted(p.name for p in etc.iterdir()) == ["crontab"]


def test_a_file_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    home = _users_dir(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:x\n")
    (home / "cluster.yaml").symlink_to(secret)
    with pytest.raises(HostError, match=r"cluster\.yaml is a symbolic link; lazyjack does not write through it"):
        write_config(home / "cluster.yaml", b"general: {}\n", mode=0o600)
    assert secret.read_text() == "root:x\n"


def test_a_config_in_a_users_directory_is_written_as_that_user(tmp_path: Path) -> None:
    home = _users_dir(tmp_path)
    config = home / "cluster.yaml"
    config.write_text(TEXT)
    os.chown(config, UID, GID)
    assert update_config_file(config, {"token": "abcdef.0123456789abcdef"}, mode=0o600) == 0o644
    info = config.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (UID, GID, 0o600)
    assert "token: abcdef.0123456789abcdef" in config.read_text()
    # As the user: where they may not write, nor may lazyjack for them (root could).
    home.chmod(0o550)
    with pytest.raises(HostError, match=r"cluster.yaml \(as uid 65534\): Permission denied"):
        update_config_file(config, {"token": "zzzzzz.0123456789abcdef"})
    assert "abcdef.0123456789abcdef" in config.read_text()


def test_a_config_of_roots_in_roots_directory_keeps_its_owner(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(TEXT)
    os.chown(config, 1234, 2345)
    update_config_file(config, {"mode": "ipv4"})
    info = config.stat()
    assert (info.st_uid, info.st_gid) == (1234, 2345) and "mode: ipv4" in config.read_text()


def test_a_directory_swapped_while_the_config_is_edited_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race itself: the user swaps their directory for a link between lazyjack's read and its write."""
    import ruamel.yaml.util

    home = _users_dir(tmp_path)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "crontab").write_text("* * * * * root /bin/true\n")
    (home / "k8s").mkdir()
    os.chown(home / "k8s", UID, GID)
    config = home / "k8s" / "crontab"
    config.write_text(TEXT)
    os.chown(config, UID, GID)
    real_guess = ruamel.yaml.util.load_yaml_guess_indent

    def swap_then_guess(text: str) -> object:
        (home / "k8s").rename(home / "k8s.away")
        (home / "k8s").symlink_to(etc)
        return real_guess(text)

    monkeypatch.setattr(ruamel.yaml.util, "load_yaml_guess_indent", swap_then_guess)
    with pytest.raises(HostError, match="'k8s' is a symbolic link"):
        update_config_file(config, {"token": "abcdef.0123456789abcdef"}, mode=0o600)
    assert (etc / "crontab").read_text() == "* * * * * root /bin/true\n"
    assert sorted(p.name for p in etc.iterdir()) == ["crontab"]
