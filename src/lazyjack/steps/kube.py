"""Kubernetes steps: kubelet restart, CA files for kubeadm, kubeadm init/join/reset, the user's kubeconfig."""

from __future__ import annotations

import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Outcome, Record, Step
from lazyjack.steps.files import b64, put_back, unb64
from lazyjack.steps.records import KubeconfigRecord
from lazyjack.steps.shapes import Action, make_parents, remove_created_dirs

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


@dataclass
class KubeadmJoin(KubeadmInit):
    """`kubeadm join --config <work-area>/kubeadm.conf` on a minion."""

    kind = "kubeadm-join"
    subcommand: ClassVar[str] = "join"

    def done(self, ctx: Context) -> str | None:
        if ctx.host.files.exists(KUBELET_CONF):
            return f"this node has joined ({KUBELET_CONF}); `lazyjack down` resets it"
        return None


@dataclass
class UserKubeconfig(Step):
    """After init under sudo: admin.conf copied to the invoking user's ~/.kube/config, owned by them."""

    kind = "kubeconfig"
    record_model = KubeconfigRecord
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
        created = make_parents(ctx, path, mode=0o700, owner=(uid, gid))
        try:
            files.write_atomic(path, admin, mode=0o600)
            files.chown(path, uid, gid)
        except BaseException:
            # Leave nothing half-done: the journal has no record of this step to undo it.
            put_back(files, path, original)
            remove_created_dirs(ctx, created)
            raise
        return {"path": path, "original": b64(original), "created_dirs": created, "summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        path, original = record["path"], unb64(record["original"])
        done = put_back(ctx.host.files, path, original)
        # Records of earlier versions name one created directory.
        remove_created_dirs(ctx, record.get("created_dirs") or ([record["created_dir"]] if record.get("created_dir") else []))
        if done:
            return Outcome.change(done)
        return Outcome.noop("already removed" if original is None else f"{path} already as before")
