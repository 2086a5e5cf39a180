"""`lazyjack cluster ACTION` from the command line's options: endpoints per node, the run, clean-up."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lazyjack.cluster.orchestrate import ClusterRun, Endpoint, Options, Outcome, Report, status
from lazyjack.cluster.ssh import SshTransport
from lazyjack.cluster.transport import LocalTransport
from lazyjack.config.model import Config
from lazyjack.errors import UsageError

DEFAULT_REMOTE_CONFIG = "/etc/lazyjack/config.yaml"
DEFAULT_PARALLEL = 10


@dataclass
class ClusterArgs:
    """The command line of `lazyjack cluster`."""

    action: str
    config_path: Path
    local: str | None = None
    ssh_config: Path | None = None
    accept_new_host_keys: bool = False
    remote_lazyjack: str = "lazyjack"
    remote_config: str = DEFAULT_REMOTE_CONFIG
    parallel: int = DEFAULT_PARALLEL
    dry_run: bool = False
    log_dir: Path | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)


def default_log_dir(action: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "lazyjack" / "cluster" / f"{time.strftime('%Y%m%d-%H%M%S')}-{action}-{os.getpid()}"


def local_node(config: Config, asked: str | None) -> str | None:
    """The node `cluster` runs on: --local NODE, or the one named like this machine."""
    if asked is not None:
        if asked not in config.nodes:
            raise UsageError(f"--local {asked}: not a node of the topology ({', '.join(config.nodes)})")
        return asked
    name = socket.gethostname()
    return name if name in config.nodes else next((n for n in config.nodes if n == name.split(".")[0]), None)


def endpoints(config: Config, args: ClusterArgs) -> dict[str, Endpoint]:
    """The local node runs here; every other node over SSH at its ssh-host (or its name)."""
    here = local_node(config, args.local)
    remote = {n: spec.ssh_host or n for n, spec in config.nodes.items() if n != here}
    ssh = SshTransport(remote, user=config.general.ssh_user, ssh_config=args.ssh_config,
                       accept_new=args.accept_new_host_keys) if remote else None
    result: dict[str, Endpoint] = {}
    for name in config.nodes:
        if name == here:
            result[name] = Endpoint(LocalTransport(), (sys.executable, "-m", "lazyjack"), args.remote_config)
        else:
            assert ssh is not None
            result[name] = Endpoint(ssh, (args.remote_lazyjack,), args.remote_config)
    return result


def run_cluster(config: Config, args: ClusterArgs, *, report: Report,
                endpoints_of: dict[str, Endpoint] | None = None) -> Outcome:
    """Run `cluster ACTION` (or status); raises ClusterFailed / ClusterInterrupted with the outcome."""
    ends = endpoints_of or endpoints(config, args)
    log_dir = args.log_dir or default_log_dir(args.action)
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    opts = Options(args.action, args.config_path, log_dir, dry_run=args.dry_run, parallel=args.parallel,
                   extra=args.extra)
    run = ClusterRun(config, ends, opts, report=report)
    try:
        return status(run) if args.action == "status" else run.run()
    finally:
        for transport in {id(e.transport): e.transport for e in ends.values()}.values():
            transport.close()
