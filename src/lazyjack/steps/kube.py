"""Kubernetes steps: kubelet restart, CA files for kubeadm, kubeadm init/join/reset, the user's kubeconfig."""

from __future__ import annotations

import base64
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Outcome, Record, Step
from lazyjack.steps.files import missing_dirs, remove_created_dirs

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
class KubeletRestart(Step):
    """systemd reloads units (the drop-in) and restarts kubelet; nothing to undo."""

    kind = "kubelet-restart"

    @property
    def title(self) -> str:
        return "kubelet restart"

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.files.exists(KUBELET_CONF):
            return Outcome.noop(f"kubelet already runs with kubeadm's configuration ({KUBELET_CONF})")
        return Outcome.change("systemctl daemon-reload", "systemctl restart kubelet")

    def apply(self, ctx: Context) -> Record:
        ctx.host.proc.run(["systemctl", "daemon-reload"], timeout=60)
        ctx.host.proc.run(["systemctl", "restart", "kubelet"], timeout=120)
        return {"summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        return Outcome.noop("a restart is not undone")


@dataclass
class KubeadmInit(Step):
    """`kubeadm init --config <work-area>/kubeadm.conf` on the master."""

    kind = "kubeadm-init"
    subcommand: ClassVar[str] = "init"

    @property
    def title(self) -> str:
        return "kubeadm init"

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.files.exists(APISERVER_MANIFEST):
            return Outcome.noop(f"the control plane exists ({APISERVER_MANIFEST}); `lazyjack down` resets it")
        return Outcome.change(f"kubeadm init --config {ctx.real_path(kubeadm_conf_path(ctx))}")

    def apply(self, ctx: Context) -> Record:
        config = str(ctx.real_path(kubeadm_conf_path(ctx)))
        if not ctx.host.files.exists(kubeadm_conf_path(ctx)):
            raise HostError(f"{config} does not exist; run `lazyjack prepare` first")
        _run_kubeadm(ctx, [self.subcommand, "--config", config], what=self.title)
        return {"summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        if not _kubeadm_leftovers(ctx):
            return Outcome.noop("kubeadm left nothing to reset (no manifests, kubeconfigs or etcd data)")
        _run_kubeadm(ctx, ["reset", "-f"], what="kubeadm reset")
        return Outcome.change("kubeadm reset -f")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change("kubeadm reset -f")

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {})

    def plan_remove(self, ctx: Context) -> Outcome:
        if not _kubeadm_leftovers(ctx):
            return Outcome.noop("kubeadm left nothing to reset (no manifests, kubeconfigs or etcd data)")
        return Outcome.change("kubeadm reset -f")


def _kubeadm_leftovers(ctx: Context) -> list[str]:
    files = ctx.host.files
    found = []
    for path in KUBEADM_LEFTOVERS:
        info = files.stat(path)
        if info is not None and (not stat.S_ISDIR(info.st_mode) or files.listdir(path)):
            found.append(path)
    return found


@dataclass
class KubeadmJoin(KubeadmInit):
    """`kubeadm join --config <work-area>/kubeadm.conf` on a minion."""

    kind = "kubeadm-join"
    subcommand: ClassVar[str] = "join"

    @property
    def title(self) -> str:
        return "kubeadm join"

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.files.exists(KUBELET_CONF):
            return Outcome.noop(f"this node has joined ({KUBELET_CONF}); `lazyjack down` resets it")
        return Outcome.change(f"kubeadm join --config {ctx.real_path(kubeadm_conf_path(ctx))}")



@dataclass
class UserKubeconfig(Step):
    """After init under sudo: admin.conf copied to the invoking user's ~/.kube/config, owned by them."""

    kind = "kubeconfig"
    user: str

    @property
    def title(self) -> str:
        return f"kubeconfig of {self.user}"

    def _target(self) -> tuple[str, int, int]:
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            raise HostError(f"user {self.user!r} (from SUDO_USER) does not exist") from None
        return f"{entry.pw_dir.rstrip('/')}/.kube/config", entry.pw_uid, entry.pw_gid

    def plan(self, ctx: Context) -> Outcome:
        path, _, _ = self._target()
        admin = ctx.host.files.read_bytes(ADMIN_CONF)
        if admin is not None and ctx.host.files.read_bytes(path) == admin:
            return Outcome.noop(f"{path} is up to date")
        return Outcome.change(f"copy {ADMIN_CONF} to {path}")

    def apply(self, ctx: Context) -> Record:
        files = ctx.host.files
        path, uid, gid = self._target()
        admin = files.read_bytes(ADMIN_CONF)
        if admin is None:
            raise HostError(f"{ctx.real_path(ADMIN_CONF)} does not exist; did kubeadm init succeed?")
        original = files.read_bytes(path)
        created = missing_dirs(ctx, path)
        try:
            for directory in created:
                files.makedirs(directory, mode=0o700)
                files.chown(directory, uid, gid)
            files.write_atomic(path, admin, mode=0o600)
            files.chown(path, uid, gid)
        except BaseException:
            # Leave nothing half-done: the journal has no record of this step to undo it.
            _restore(ctx, path, original, created)
            raise
        return {
            "path": path,
            "original": None if original is None else base64.b64encode(original).decode(),
            "created_dirs": created,
            "summary": self.title,
        }

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        path = record["path"]
        original = None if record["original"] is None else base64.b64decode(record["original"])
        # Records of earlier versions name one created directory.
        created = record.get("created_dirs") or ([record["created_dir"]] if record.get("created_dir") else [])
        changes = _restore(ctx, path, original, created)
        if changes:
            return Outcome.change(*changes)
        return Outcome.noop("already removed" if original is None else f"{path} already as before")


def _restore(ctx: Context, path: str, original: bytes | None, created_dirs: list[str]) -> list[str]:
    """Put back the user's kubeconfig as it was (absent or `original`), and remove directories made for it."""
    files = ctx.host.files
    changes = []
    if original is None:
        if files.remove(path):
            changes.append(f"removed {path}")
    elif files.read_bytes(path) != original:
        files.write_atomic(path, original)
        changes.append(f"restored {path}")
    remove_created_dirs(ctx, created_dirs)
    return changes
