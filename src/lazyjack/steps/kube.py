"""Kubernetes steps: kubelet restart, CA files for kubeadm, kubeadm init/join/reset, the user's kubeconfig."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lazyjack.errors import HostError
from lazyjack.host.users import User, UserFiles
from lazyjack.steps.base import Context, Outcome, Record, Status, Step
from lazyjack.steps.files import b64, unb64
from lazyjack.steps.records import KubeconfigRecord
from lazyjack.steps.shapes import Action

PKI_DIR = "/etc/kubernetes/pki"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
# What kubeadm init or join leaves (also when it fails half-way) and reset takes away; lazyjack
# writes none of it. The directories count when they hold something: packages create them empty.
KUBEADM_LEFTOVERS = (
    "/etc/kubernetes/manifests",
    ADMIN_CONF,
    KUBELET_CONF,
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/etcd",
)


def kubeadm_conf_path(ctx: Context) -> str:
    return f"{ctx.work_area.rstrip('/')}/kubeadm.conf"


def _progress(ctx: Context, what: str) -> Callable[[float], None]:
    def report(elapsed: float) -> None:
        ctx.report(f"      {what}: still running, {elapsed:.0f}s")

    return report


def _run_kubeadm(ctx: Context, args: list[str], *, what: str) -> str:
    argv = ["kubeadm", *args]
    result = ctx.host.proc.run(
        argv, timeout=ctx.config.kubeadm_timeout, on_progress=_progress(ctx, what), progress_interval=10.0
    )
    return result.stdout


@dataclass
class KubeletRestart(Action):
    """systemd reloads units (the drop-in) and restarts kubelet; nothing to undo."""

    kind = "kubelet-restart"
    nothing_to_undo = "a restart is not undone"

    @property
    def title(self) -> str:
        return "kubelet restart"

    def done(self, ctx: Context) -> str | None:
        if ctx.host.files.exists(KUBELET_CONF):
            return f"kubelet already runs with kubeadm's configuration ({KUBELET_CONF})"
        return None

    def commands(self, ctx: Context) -> list[str]:
        return ["systemctl daemon-reload", "systemctl restart kubelet"]

    def run(self, ctx: Context) -> Record:
        ctx.host.proc.run(["systemctl", "daemon-reload"], timeout=60)
        ctx.host.proc.run(["systemctl", "restart", "kubelet"], timeout=120)
        return {}


@dataclass
class KubeadmInit(Action):
    """`kubeadm init --config <work-area>/kubeadm.conf` on the master."""

    kind = "kubeadm-init"
    subcommand: ClassVar[str] = "init"
    undo = "kubeadm reset -f"
    nothing_to_undo = "kubeadm left nothing to reset (no manifests, kubeconfigs or etcd data)"

    @property
    def title(self) -> str:
        return f"kubeadm {self.subcommand}"

    def done(self, ctx: Context) -> str | None:
        if ctx.host.files.exists(APISERVER_MANIFEST):
            return f"the control plane exists ({APISERVER_MANIFEST}); `lazyjack down` resets it"
        return None

    def commands(self, ctx: Context) -> list[str]:
        return [f"kubeadm {self.subcommand} --config {ctx.real_path(kubeadm_conf_path(ctx))}"]

    def run(self, ctx: Context) -> Record:
        config = str(ctx.real_path(kubeadm_conf_path(ctx)))
        if not ctx.host.files.exists(kubeadm_conf_path(ctx)):
            raise HostError(f"{config} does not exist; run `lazyjack prepare` first")
        _run_kubeadm(ctx, [self.subcommand, "--config", config], what=self.title)
        return {}

    @classmethod
    def leftovers(cls, ctx: Context) -> bool:
        """Whether kubeadm left something for reset to take away (KUBEADM_LEFTOVERS)."""
        files = ctx.host.files
        for path in KUBEADM_LEFTOVERS:
            info = files.stat(path)
            if info is not None and (not stat.S_ISDIR(info.st_mode) or files.listdir(path)):
                return True
        return False

    @classmethod
    def run_undo(cls, ctx: Context) -> None:
        _run_kubeadm(ctx, ["reset", "-f"], what="kubeadm reset")

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        # From kubeadm's files only: status never calls kubeadm (slow, and it may hang).
        if cls.leftovers(ctx):
            return Status.ok("kubeadm's configuration is in place; kubelet starts it at boot")
        return Status.missing(f"kubeadm's files are gone ({', '.join(KUBEADM_LEFTOVERS[:3])}, ...)",
                              fix="restore does not run kubeadm: `lazyjack down`, then `lazyjack up`")


@dataclass
class KubeadmJoin(KubeadmInit):
    """`kubeadm join --config <work-area>/kubeadm.conf` on a minion."""

    kind = "kubeadm-join"
    subcommand: ClassVar[str] = "join"

    def done(self, ctx: Context) -> str | None:
        if ctx.host.files.exists(KUBELET_CONF):
            return f"this node has joined ({KUBELET_CONF}); `lazyjack down` resets it"
        return None


#: Where the invoking user's kubeconfig goes, relative to their home.
KUBECONFIG = ".kube/config"


@dataclass
class UserKubeconfig(Step):
    """After init under sudo: admin.conf copied to the invoking user's ~/.kube/config, 0600.

    Written as that user (their uid and gids, in a child process) and never through a symbolic
    link in their home: a user who may run `sudo lazyjack` must not get root to write, or chown,
    the file a link of theirs points at. The file is theirs because they wrote it.
    """

    kind = "kubeconfig"
    record_model = KubeconfigRecord
    user: str

    @property
    def title(self) -> str:
        return f"kubeconfig of {self.user}"

    def _home(self, ctx: Context) -> UserFiles:
        found = ctx.host.users.lookup(self.user)
        if found is None:
            raise HostError(f"user {self.user!r} (from SUDO_USER) does not exist")
        return UserFiles(found, ctx.host.files.resolve(found.home))

    def plan(self, ctx: Context) -> Outcome:
        home = self._home(ctx)
        admin = ctx.host.files.read_bytes(ADMIN_CONF)
        if admin is not None and home.read(KUBECONFIG) == admin:
            return Outcome.noop(f"{home.where(KUBECONFIG)} is up to date")
        return Outcome.change(f"copy {ADMIN_CONF} to {home.where(KUBECONFIG)} (as {self.user})")

    def apply(self, ctx: Context) -> Record:
        home = self._home(ctx)
        admin = ctx.host.files.read_bytes(ADMIN_CONF)
        if admin is None:
            raise HostError(f"{ctx.real_path(ADMIN_CONF)} does not exist; did kubeadm init succeed?")
        original = home.read(KUBECONFIG)
        created = home.write(KUBECONFIG, admin, mode=0o600, dir_mode=0o700)
        user, base = home.user, home.user.home.rstrip("/")
        return {"user": user.name, "uid": user.uid, "gid": user.gid, "home": user.home,
                "path": f"{base}/{KUBECONFIG}", "original": b64(original),
                "created_dirs": [f"{base}/{d}" for d in created], "summary": self.title}

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        home, relative = _home_of(ctx, record)  # read as the user, as it was written
        if home.read(relative) is not None:
            return Status.ok(f"{home.where(relative)} exists")
        return Status.missing(f"{home.where(relative)} is gone", fix="`lazyjack up` on the master copies it again")

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        home, relative = _home_of(ctx, record)
        original = unb64(record["original"])
        changes = []
        if original is None:
            if home.remove(relative):
                changes.append(f"removed {home.where(relative)}")
        elif home.read(relative) != original:
            home.write(relative, original)
            changes.append(f"restored {home.where(relative)}")
        base = home.user.home.rstrip("/")
        created = record.get("created_dirs") or ([record["created_dir"]] if record.get("created_dir") else [])
        for directory in reversed(created):  # outermost first in the record
            home.rmdir(directory.removeprefix(f"{base}/"))
        if changes:
            return Outcome.change(*changes)
        return Outcome.noop("already removed" if original is None else f"{home.where(relative)} already as before")


def _home_of(ctx: Context, record: Record) -> tuple[UserFiles, str]:
    """The user's files the record names, and the kubeconfig's path in them."""
    path = str(record["path"])
    if "uid" in record:
        user = User(record["user"], record["uid"], record["gid"], record["home"])
    else:
        # A record of an earlier version: the owner of the directory that holds .kube is the user.
        home = path.rsplit("/", 2)[0] or "/"
        info = ctx.host.files.stat(home)
        if info is None:
            raise HostError(f"{ctx.real_path(home)}, the home the journal names for {path}, does not exist")
        user = User(f"uid {info.st_uid}", info.st_uid, info.st_gid, home)
    base = user.home.rstrip("/")
    return UserFiles(user, ctx.host.files.resolve(user.home)), path.removeprefix(f"{base}/")
