"""Kubernetes steps: kubelet restart, CA files for kubeadm, kubeadm init/join/reset, the user's kubeconfig."""

from __future__ import annotations

import base64
import pwd
from collections.abc import Callable
from dataclasses import dataclass

from lazyjack.errors import HostError
from lazyjack.steps.base import Context, Outcome, Record, Step

PKI_DIR = "/etc/kubernetes/pki"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"


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
        _run_kubeadm(ctx, ["init", "--config", config], what="kubeadm init")
        return {"summary": self.title}

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        _run_kubeadm(ctx, ["reset", "-f"], what="kubeadm reset")
        return Outcome.change("kubeadm reset -f")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change("kubeadm reset -f")

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {})

    def plan_remove(self, ctx: Context) -> Outcome:
        return Outcome.change("kubeadm reset -f")


@dataclass
class KubeadmJoin(KubeadmInit):
    """`kubeadm join --config <work-area>/kubeadm.conf` on a minion."""

    kind = "kubeadm-join"

    @property
    def title(self) -> str:
        return "kubeadm join"

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.files.exists(KUBELET_CONF):
            return Outcome.noop(f"this node has joined ({KUBELET_CONF}); `lazyjack down` resets it")
        return Outcome.change(f"kubeadm join --config {ctx.real_path(kubeadm_conf_path(ctx))}")

    def apply(self, ctx: Context) -> Record:
        config = str(ctx.real_path(kubeadm_conf_path(ctx)))
        if not ctx.host.files.exists(kubeadm_conf_path(ctx)):
            raise HostError(f"{config} does not exist; run `lazyjack prepare` first")
        _run_kubeadm(ctx, ["join", "--config", config], what="kubeadm join")
        return {"summary": self.title}


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
        directory = path.rsplit("/", 1)[0]
        created_dir = not files.exists(directory)
        if created_dir:
            files.makedirs(directory, mode=0o700)
            files.chown(directory, uid, gid)
        files.write_atomic(path, admin, mode=0o600)
        files.chown(path, uid, gid)
        return {
            "path": path,
            "original": None if original is None else base64.b64encode(original).decode(),
            "created_dir": directory if created_dir else None,
            "summary": self.title,
        }

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        files = ctx.host.files
        if record["original"] is not None:
            files.write_atomic(record["path"], base64.b64decode(record["original"]))
            return Outcome.change(f"restored {record['path']}")
        changes = [f"removed {record['path']}"] if files.remove(record["path"]) else []
        if record.get("created_dir") and files.exists(record["created_dir"]) and not files.listdir(record["created_dir"]):
            files.rmdir(record["created_dir"])
        return Outcome.change(*changes) if changes else Outcome.noop("already removed")
