"""The lab's state file: everything `lab up` made, recorded before it is made, so `lab down` can undo any part of it."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lazyjack.config.nodes import Roles
from lazyjack.host.files import replace_file
from lazyjack.host.lock import Locked, pid_lock
from lazyjack.lab import LabError, read_json

#: Where labs keep their state, one directory per lab.
STATE_BASE = Path("/var/lib/lazyjack-lab")
#: The config of `lab up` without --config: the packaged IPv6 example.
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ipv6.yaml"
STATE_FILE = "lab.json"
LOCK_FILE = ".lock"
LOCK_WAIT = 600.0
FORMAT: Literal[1] = 1
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,19}")

# Phases of a lab, as `lab status` shows them.
CREATING, UP, FAILED, INTERRUPTED, DELETING = "creating", "up", "failed", "interrupted", "deleting"
PHASES = (CREATING, UP, FAILED, INTERRUPTED, DELETING)


def lab_name_for(config: Path) -> str:
    """The default lab name: the config file's stem, lower case, other characters made '-'."""
    name = re.sub(r"[^a-z0-9-]+", "-", config.stem.lower()).strip("-")[:20].strip("-")
    return name or "lab"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LabError(f"lab name {name!r} is not valid: use 1-20 of a-z, 0-9 and '-', starting with a letter or digit")
    return name


def lab_dir(name: str, *, base: Path = STATE_BASE) -> Path:
    return base / check_name(name)


def lab_names(*, base: Path = STATE_BASE) -> list[str]:
    """Names of the labs that have a state file."""
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / STATE_FILE).is_file())


def resolve_lab(name: str | None, config: Path | None, *, base: Path = STATE_BASE) -> str:
    """The lab meant: by --name, else by the config's name, else the only lab there is."""
    if name:
        return name
    if config is not None:
        return lab_name_for(config)
    labs = lab_names(base=base)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        return lab_name_for(EXAMPLE)
    raise LabError(f"there are {len(labs)} labs ({', '.join(labs)}); say which with --name NAME")


def load_lab(name: str, *, base: Path = STATE_BASE) -> LabState:
    """The state of the lab `name`; a LabError naming the labs there are when it does not exist."""
    directory = lab_dir(name, base=base)
    if not directory.is_dir():
        known = ", ".join(lab_names(base=base)) or "none"
        raise LabError(f"there is no lab named {name!r} (labs: {known}); make one with `lazyjack lab up`")
    return LabState.load(directory)


#: What every lab state has had since format 1 (later fields have defaults, so older files still load).
REQUIRED_KEYS = ("name", "directory", "source_config", "mode", "phase", "namespaces", "daemons", "nodes", "format")
#: The keys of the simulated internet's record (`InternetPlan.to_state`): uplinks are [node, netns, interface];
#: a lab made when there could be one uplink only has its fields instead.
INTERNET_KEYS = frozenset({"netns", "dns", "www", "uplinks"})
INTERNET_KEYS_ONE_UPLINK = frozenset({"netns", "dns", "www", "node", "node_netns", "uplink"})
#: How the state file is checked as it is read (pydantic's config, read only by `LabState.load`, which alone
#: imports pydantic: `lab status` stays light): no unknown keys, no conversions ("2" is not 2).
_STRICT: Any = {"extra": "forbid", "strict": True}


def _check_one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what}: must be one of {', '.join(allowed)}, not {value!r}")


def _check_internet(value: dict[str, Any]) -> None:
    if not value:
        return
    if set(value) not in (INTERNET_KEYS, INTERNET_KEYS_ONE_UPLINK):
        raise ValueError(f"internet: must have the keys {', '.join(sorted(INTERNET_KEYS))} (or none)")
    links = value.get("uplinks", [])
    if not isinstance(links, list) or not all(
        isinstance(link, list) and len(link) == 3 and all(isinstance(part, str) for part in link) for link in links
    ):
        raise ValueError("internet: uplinks must be a list of [node, netns, interface]")
    if any(not isinstance(v, str) for k, v in value.items() if k != "uplinks"):
        raise ValueError("internet: netns, dns and www must be strings")


def _check_cni_result(value: dict[str, Any] | None) -> None:
    # What the lab reads of a CNI ADD result (cni.pod_addresses): ips, each with an address.
    ips = (value or {}).get("ips", [])
    if not isinstance(ips, list) or not all(isinstance(ip, dict) and isinstance(ip.get("address"), str) for ip in ips):
        raise ValueError("pod_result: ips must be a list of entries with an address")


@dataclass
class NodeState(Roles):
    """One node of the lab: its namespace, sandbox, config copy, and what ran on it."""

    __pydantic_config__ = _STRICT

    name: str
    netns: str
    interface: str
    roles: list[str]
    directory: str  # holds root/, config.yaml, logs/, cni/ and snapshot.json
    ran: list[str] = field(default_factory=list)  # lazyjack commands started on it, in order
    pod_netns: str | None = None
    pod_result: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Checked as the file is read (pydantic turns the ValueError into a problem naming the node).
        _check_cni_result(self.pod_result)

    @property
    def root(self) -> Path:
        return Path(self.directory) / "root"

    @property
    def config(self) -> Path:
        return Path(self.directory) / "config.yaml"

    @property
    def logs(self) -> Path:
        return Path(self.directory) / "logs"

    @property
    def cni_data(self) -> Path:
        """host-local IPAM's data directory for the test pod (outside the sandbox, so it never shows in it)."""
        return Path(self.directory) / "cni"

    @property
    def snapshot(self) -> Path:
        return Path(self.directory) / "snapshot.json"



@dataclass
class Daemon:
    """A process the lab started itself (the internet's servers), found again by its pid file."""

    __pydantic_config__ = _STRICT

    name: str
    program: str
    pid_file: str


@dataclass
class LabState:
    """The state file's content. `save()` after every change: an interrupted `lab up` leaves a true record."""

    __pydantic_config__ = _STRICT

    name: str
    directory: str
    source_config: str
    mode: str
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    phase: str = CREATING
    detail: str = ""
    #: every namespace the lab made or is about to make, in creation order
    namespaces: list[str] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    skip_phases: list[str] = field(default_factory=list)
    internet: dict[str, Any] = field(default_factory=dict)
    site: str = ""  # the namespace playing the site's own DNS64/NAT64, if the config names them
    #: Made with `lab up --ssh`: an sshd in every node, and lazyjack run over SSH.
    ssh: bool = False
    format: Literal[1] = FORMAT

    def __post_init__(self) -> None:
        _check_one_of("mode", self.mode, ("ipv6", "ipv4", "dual-stack"))
        _check_one_of("phase", self.phase, PHASES)
        _check_internet(self.internet)

    @property
    def path(self) -> Path:
        return Path(self.directory) / STATE_FILE

    @property
    def lab_config(self) -> Path:
        """The lab's copy of the config (runtime set to native when unset)."""
        return Path(self.directory) / "config.yaml"

    @property
    def ssh_dir(self) -> Path:
        """The lab's SSH client side: key pair, pinned known_hosts, ssh_config, the nodes' lazyjack."""
        return Path(self.directory) / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "ssh_config"

    @property
    def remote_lazyjack(self) -> Path:
        return self.ssh_dir / "lazyjack"

    def add_namespace(self, name: str) -> None:
        """Record a namespace before creating it: deleting one that was never made is a no-op."""
        if name not in self.namespaces:
            self.namespaces.append(name)
            self.save()

    def save(self) -> None:
        replace_file(self.path, (json.dumps(asdict(self), indent=2) + "\n").encode(), mode=0o600)

    @classmethod
    def load(cls, directory: Path) -> LabState:
        """The lab's state; a LabError naming the file and what is wrong when it is missing or damaged,
        before anything acts on it."""
        from pydantic import TypeAdapter, ValidationError

        path = directory / STATE_FILE
        raw = read_json(path, missing=f"no lab state in {directory} ({STATE_FILE} is missing)", what="the lab state")
        try:
            state = TypeAdapter(cls).validate_json(path.read_bytes())
            problems = [f"{key}: Field required" for key in REQUIRED_KEYS if key not in raw]
        except ValidationError as exc:
            problems = [_problem(e["loc"], e["type"], e["msg"]) for e in exc.errors()[:3]]
        if problems:  # every version of save() wrote these: one missing is damage
            raise LabError(f"the lab state {path} is damaged: {'; '.join(problems)}; remove what the lab made "
                           f"by hand (`ip netns list`, {directory}) or restore the file")
        return state


def _problem(loc: tuple[int | str, ...], kind: str, msg: str) -> str:
    """One problem pydantic found, named by its place in the file; a check of __post_init__ says its field."""
    where = [str(part) for part in loc]
    if kind == "value_error":
        field_name, _, msg = msg.removeprefix("Value error, ").partition(": ")
        where.append(field_name)
    return f"{'.'.join(where) or '(the whole file)'}: {msg}"


@contextlib.contextmanager
def lab_lock(base: Path = STATE_BASE, *, wait: Callable[[str], None] = lambda _line: None) -> Iterator[None]:
    """One lab command at a time on this machine: labs share namespace names (`lj-<node>`).

    Without it, a second `lab up` of the same nodes could record namespaces another lab made,
    and its `lab down` would delete them. The lock file exists only while held; the base
    directory goes too when nothing else is in it.
    """
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = base / LOCK_FILE

    def waiting(holder: str) -> None:
        wait(f"waiting for another lazyjack lab command (pid {holder}) to finish ...")

    try:
        with pid_lock(path, wait=LOCK_WAIT, waiting=waiting):
            yield
    except Locked as exc:
        raise LabError(f"another lazyjack lab command (pid {exc.holder}) holds {path}; try again later") from None
    finally:
        with contextlib.suppress(OSError):
            base.rmdir()  # only when no lab is left
