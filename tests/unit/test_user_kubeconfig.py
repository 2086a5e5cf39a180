"""The invoking user's kubeconfig is written as that user and never through a link in their home.

A user allowed to `sudo lazyjack` controls their home: a link at ~/.kube/config or ~/.kube to a file
of root's (/etc/shadow) must not get root to overwrite it or give it to them. These tests switch to
a real unprivileged uid (65534) with a home under the test's root, so they need root (CI is root).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from stepkit import FakeNode, differences, make_node

from fake_host import FixedUsers
from lazyjack.errors import HostError
from lazyjack.host.users import User, UserFiles
from lazyjack.steps.base import Context
from lazyjack.steps.engine import StepFailed, apply_steps
from lazyjack.steps.kube import ADMIN_CONF, UserKubeconfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root (CI runs as root)")

UID = GID = 65534
ALICE = User("alice", UID, GID, "/home/alice")
ADMIN = "apiVersion: v1\nkind: Config\n# admin of the cluster\n"
SHADOW = "root:$6$secret:19000:0:99999:7:::\n"


def _node(tmp_path: Path, user: User = ALICE) -> FakeNode:
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    fake.host.users = FixedUsers([user])
    home = fake.root / user.home.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, user.uid, user.gid)
    home.chmod(0o750)
    fake.write(ADMIN_CONF, ADMIN)
    fake.write("/etc/shadow", SHADOW)
    (fake.root / "etc/shadow").chmod(0o640)
    return fake


def _step(fake: FakeNode, user: str = "alice") -> tuple[UserKubeconfig, Context]:
    return UserKubeconfig(user), fake.context(invoking_user=user)


def _shadow(fake: FakeNode) -> tuple[str, int, int, int]:
    info = (fake.root / "etc/shadow").lstat()
    return (fake.root / "etc/shadow").read_text(), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_the_kubeconfig_is_written_as_the_user_0600_in_a_0700_directory(tmp_path: Path) -> None:
    fake = _node(tmp_path)
    step, ctx = _step(fake)
    assert step.plan(ctx).changes == ("copy /etc/kubernetes/admin.conf to ~alice/.kube/config (as alice)",)
    record = step.apply(ctx)
    config, kube = fake.root / "home/alice/.kube/config", fake.root / "home/alice/.kube"
    assert config.read_text() == ADMIN
    assert (config.stat().st_uid, config.stat().st_gid, stat.S_IMODE(config.stat().st_mode)) == (UID, GID, 0o600)
    assert (kube.stat().st_uid, stat.S_IMODE(kube.stat().st_mode)) == (UID, 0o700)
    assert record["uid"] == UID and record["created_dirs"] == ["/home/alice/.kube"]
    assert step.plan(ctx).reason == "~alice/.kube/config is up to date"
    assert UserKubeconfig.revert(ctx, record).changes == ("removed ~alice/.kube/config",)
    assert not kube.exists()
    assert UserKubeconfig.revert(ctx, record).reason == "already removed"


@pytest.mark.parametrize("link", [".kube/config", ".kube"])
def test_a_link_in_the_users_home_is_refused_and_its_target_untouched(tmp_path: Path, link: str) -> None:
    fake = _node(tmp_path)
    home = fake.root / "home/alice"
    target = fake.root / ("etc/shadow" if link == ".kube/config" else "etc")
    if link == ".kube/config":
        (home / ".kube").mkdir(mode=0o700)
        os.chown(home / ".kube", UID, GID)
    (home / link).symlink_to(target)
    os.lchown(home / link, UID, GID)
    etc_before = sorted(p.name for p in (fake.root / "etc").iterdir())
    shadow_before = _shadow(fake)
    step, ctx = _step(fake)
    with pytest.raises(HostError, match=rf"~alice/.kube/config \(as alice\): {link.split('/')[-1]} is a symbolic "
                                        "link; lazyjack does not (follow|write through) it"):
        step.plan(ctx)
    with pytest.raises(HostError, match="is a symbolic link"):
        step.apply(ctx)
    assert _shadow(fake) == shadow_before
    assert sorted(p.name for p in (fake.root / "etc").iterdir()) == etc_before
    assert (home / link).is_symlink()


def test_a_link_made_after_the_plan_is_still_refused(tmp_path: Path) -> None:
    fake = _node(tmp_path)
    step, ctx = _step(fake)
    assert step.plan(ctx).needed
    kube = fake.root / "home/alice/.kube"
    kube.mkdir(mode=0o700)
    os.chown(kube, UID, GID)
    (kube / "config").symlink_to(fake.root / "etc/shadow")
    before = _shadow(fake)
    with pytest.raises(HostError, match="config is a symbolic link; lazyjack does not follow it"):
        step.apply(ctx)
    # The write itself refuses too (a link made between the read and the write).
    with pytest.raises(HostError, match="config is a symbolic link; lazyjack does not write through it"):
        UserFiles(ALICE, fake.root / "home/alice").write(".kube/config", b"x")
    assert _shadow(fake) == before
    assert sorted(p.name for p in kube.iterdir()) == ["config"]  # no temp file left


def test_a_run_with_a_link_in_the_home_stops_before_any_change(tmp_path: Path) -> None:
    fake = _node(tmp_path)
    (fake.root / "home/alice/.kube").symlink_to(fake.root / "etc")
    before = fake.snapshot()
    ctx = fake.context(invoking_user="alice")
    from lazyjack.commands.node import preflight, up_steps

    steps = up_steps(ctx)
    assert any("kubeconfig of alice: ~alice/.kube/config (as alice): .kube is a symbolic link" in e
               for e in preflight(ctx, "up", steps).errors)
    with pytest.raises(StepFailed):
        apply_steps(ctx, [s for s in steps if isinstance(s, UserKubeconfig)], command="up", journal=fake.journal())
    assert differences(before, fake.snapshot()) == []


def test_a_home_that_is_not_the_users_is_refused(tmp_path: Path) -> None:
    fake = _node(tmp_path)
    os.chown(fake.root / "home/alice", 0, 0)
    step, ctx = _step(fake)
    with pytest.raises(HostError, match=r"belongs to uid 0, not to alice \(65534\); lazyjack writes nothing there"):
        step.plan(ctx)


def test_an_earlier_kubeconfig_of_the_user_comes_back(tmp_path: Path) -> None:
    fake = _node(tmp_path)
    files = UserFiles(ALICE, fake.root / "home/alice")
    assert files.write(".kube/config", b"mine\n") == [".kube"]
    step, ctx = _step(fake)
    record = step.apply(ctx)
    assert record["created_dirs"] == [] and (fake.root / "home/alice/.kube/config").read_text() == ADMIN
    assert UserKubeconfig.revert(ctx, record).changes == ("restored ~alice/.kube/config",)
    config = fake.root / "home/alice/.kube/config"
    assert config.read_text() == "mine\n" and config.stat().st_uid == UID


def test_the_system_users_nobody_gets_no_write_through_a_link(tmp_path: Path) -> None:
    """The same through the machine's own account database (nobody, home /nonexistent under the test's root)."""
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.fail("this machine has no user 'nobody'")
    fake = make_node(tmp_path, "ipv4.yaml", "master")
    home = fake.root / nobody.pw_dir.lstrip("/")
    (home / ".kube").mkdir(parents=True, mode=0o700)
    for path in (home, home / ".kube"):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    fake.write(ADMIN_CONF, ADMIN)
    fake.write("/etc/shadow", SHADOW)
    (fake.root / "etc/shadow").chmod(0o640)
    (home / ".kube/config").symlink_to("/etc/shadow")  # absolute: inside the root, as on the host
    before = _shadow(fake)
    step, ctx = _step(fake, "nobody")
    with pytest.raises(HostError):
        step.apply(ctx)
    assert _shadow(fake) == before
