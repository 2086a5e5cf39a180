"""DNS64/NAT64 on the support network, docker and podman runtimes: a user-defined network and two containers.

The network `support_net` carries the support network's IPv6 and IPv4 subnets (gateways,
the first addresses, on the node's bridge). The NAT64 container runs tayga at `nat64.ip` /
`nat64.v4_ip`; the DNS64 container runs named at `dns64.ip`, keeps only that IPv6 address
and reaches its forwarder through the NAT64 container, as in lazyjack 1.x. Both daemons'
configuration files are generated into the work area and bind-mounted read-only, so any
image that holds the binaries (and iproute2) will do. Containers get explicit capabilities,
never --privileged.

A container is kept while it runs with the wanted configuration: a hash of its create
request, the image's id, the configuration file and the commands run after its start is
kept in a label. A stopped, outdated or unlabelled-by-us one is replaced (or refused).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from lazyjack.config.plan import served_networks, support_gateway
from lazyjack.errors import HostError
from lazyjack.host.containers import Engine, EngineError, EngineUnreachable, PodmanService
from lazyjack.render.dns64 import dns64_conf
from lazyjack.render.nat64 import TUN, tayga_conf
from lazyjack.steps.base import Context, Outcome, Record, Status, Step
from lazyjack.steps.records import ContainerNetworkRecord, ContainerRecord
from lazyjack.steps.shapes import make_parents, remove_created_dirs
from lazyjack.steps.support import ARGV, TaygaProbe, check_tayga, remote_resolver

NETWORK = "support_net"  # the name lazyjack 1.x gave it
#: Docker names the bridge after this option; routes and `ip link` then read plainly.
BRIDGE = "ljsupbr0"
DNS64_NAME, NAT64_NAME = "bind9", "tayga"  # the names lazyjack 1.x gave the containers
#: The DNS64 server's container, by program (named's keeps 1.x's name).
DNS64_NAMES = {"named": DNS64_NAME, "unbound": "unbound"}
LABEL = "lazyjack"
HASH_LABEL = "lazyjack.config-hash"
IMAGE_LABEL = "lazyjack.image-id"
#: Where the generated configuration files appear inside the containers (read-only).
CONF_DIR = "/etc/lazyjack"
#: A tmpfs in each container for the daemons' own state (named's keys and pid file, tayga's address map).
STATE_DIR = "/run/lazyjack"
#: The container's interface on support_net: both engines name the first network's interface eth0.
CONTAINER_LINK = "eth0"
#: How long a started container gets to come up (tayga's tun, named's port 53).
READY_TIMEOUT = 15.0
TENTATIVE = ("ip", "-6", "addr", "show", "tentative")
IPV6_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0"}
FORWARDING_SYSCTLS = {"net.ipv6.conf.all.forwarding": "1", "net.ipv4.ip_forward": "1"}
#: podman's default limits exceed what a container may have on many hosts (and here); 1.x used these.
PODMAN_ULIMITS = [{"Name": "nofile", "Soft": 1024, "Hard": 1024}, {"Name": "nproc", "Soft": 1024, "Hard": 1024}]


@dataclass(frozen=True)
class EngineRef:
    """How a step reaches its engine; kept in journal records so that revert needs nothing else."""

    runtime: str  # "docker" or "podman"
    socket: str

    def connect(self, ctx: Context, *, start: bool = True) -> Engine:
        """A client of the engine; with `start`, podman's API service is started when nothing answers
        (apply and undo), without it never (a plan only reads: see `planned`)."""
        if self.runtime == "podman":
            starter = PodmanService(daemons=ctx.host.daemons, state_dir=Path(self.socket).parent) if start else None
            return Engine(self.socket, name="podman", starter=starter)
        return Engine(
            self.socket,
            name="docker",
            hint="is dockerd running (systemctl start docker)? LAZYJACK_DOCKER_SOCKET names another socket; "
            "general.dns64-nat64-runtime: native needs no container engine",
        )

    def record(self) -> Record:
        return {"runtime": self.runtime, "socket": self.socket}

    @staticmethod
    def from_record(record: Record) -> EngineRef:
        return EngineRef(record["runtime"], record["socket"])


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _ours(labels: dict[str, str] | None) -> bool:
    return bool(labels) and LABEL in (labels or {})


START_PODMAN = "start podman's API service (podman system service)"


def planned(ctx: Context, engine: EngineRef, plan: Callable[[Engine], Outcome], *,
            unstarted: Callable[[], Outcome]) -> Outcome:
    """`plan` against the engine, which it must not start: a plan (and --dry-run) changes nothing.

    When podman's API service does not answer (apply would start it), the outcome is `unstarted()`,
    what apply would do with the service started, or an EngineUnreachable when podman is not installed.
    """
    try:
        return plan(engine.connect(ctx, start=False))
    except EngineUnreachable as exc:
        if engine.runtime != "podman" or not exc.absent:
            raise
        if ctx.host.proc.which("podman") is None:
            raise EngineUnreachable("podman", engine.socket, "podman is not installed (apt-get install podman), "
                                    "and nothing answers there", absent=True) from None
        return unstarted()


def _unless_absent(engine: EngineRef, action: Callable[[], Outcome]) -> Outcome:
    """For removal without a journal: no engine on this node (none listens, none can start) means nothing of it.

    An engine that answers too slowly, or refuses, is still an error.
    """
    try:
        return action()
    except EngineUnreachable as exc:
        if not exc.absent:
            raise
        return Outcome.noop(f"no {engine.runtime} engine on this node ({exc.reason}): nothing of it to remove")


# --- the network ---------------------------------------------------------------------------


def network_spec(*, name: str, v6: IPv6Network, v4: IPv4Network, runtime: str) -> dict[str, Any]:
    """The create request of support_net: both subnets, gateways the first addresses, labelled."""
    spec: dict[str, Any] = {
        "Name": name,
        "Driver": "bridge",
        "CheckDuplicate": True,
        "EnableIPv6": True,
        "IPAM": {
            "Driver": "default",
            "Config": [
                {"Subnet": str(v6), "Gateway": str(support_gateway(v6))},
                {"Subnet": str(v4), "Gateway": str(support_gateway(v4))},
            ],
        },
        "Labels": {LABEL: "support"},
        "Options": {},
    }
    if runtime == "docker":
        spec["Options"]["com.docker.network.bridge.name"] = BRIDGE
    spec["Labels"][HASH_LABEL] = _digest(spec)
    return spec


@dataclass
class SupportNetwork(Step):
    """The container network `support_net` with the support network's IPv6 and IPv4 subnets."""

    kind = "container-network"
    record_model = ContainerNetworkRecord
    engine: EngineRef
    v6: IPv6Network
    v4: IPv4Network
    name: str = NETWORK

    @property
    def title(self) -> str:
        return f"{self.engine.runtime} network {self.name}"

    def _spec(self) -> dict[str, Any]:
        return network_spec(name=self.name, v6=self.v6, v4=self.v4, runtime=self.engine.runtime)

    def plan(self, ctx: Context) -> Outcome:
        subnets = f"{self.v6} and {self.v4}"
        create = f"create {self.name} with {subnets}"
        return planned(ctx, self.engine, lambda engine: self._plan(engine, create),
                       unstarted=lambda: Outcome.change(START_PODMAN, create))

    def _plan(self, engine: Engine, create: str) -> Outcome:
        current = engine.network(self.name)
        subnets = f"{self.v6} and {self.v4}"
        if current is None:
            return Outcome.change(create)
        labels = current.get("Labels") or {}
        if not _ours(labels):
            raise HostError(
                f"a {self.engine.runtime} network {self.name!r} exists that lazyjack did not create (lazyjack 1.x "
                f"or someone else); remove it (`{self.engine.runtime} network rm {self.name}`, or `lazyjack clean` "
                "for a node 1.x prepared) and run prepare again"
            )
        if labels.get(HASH_LABEL) == self._spec()["Labels"][HASH_LABEL]:
            return Outcome.noop(f"{self.name} exists with {subnets}")
        return Outcome.change(f"re-create {self.name} with {subnets} (its settings changed)")

    def apply(self, ctx: Context) -> Record:
        engine = self.engine.connect(ctx)
        current = engine.network(self.name)
        if current is not None:
            # Outdated (plan said so): our containers on it go too; their steps come next and start them again.
            for container in (current.get("Containers") or {}).values():
                name = str(container.get("Name", ""))
                info = engine.container(name) if name else None
                if info is not None and _ours((info.get("Config") or {}).get("Labels")):
                    engine.remove_container(name)
            engine.remove_network(self.name)
        engine.create_network(self._spec())
        return {**self.engine.record(), "network": self.name, "v6": str(self.v6), "v4": str(self.v4),
                "summary": self.title}

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        name = record["network"]
        if EngineRef.from_record(record).connect(ctx).network(name) is None:
            return Status.missing(f"{record['runtime']} network {name} is gone")
        return Status.ok(f"{name} exists")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        cls.needs(record, "v6", name=record["network"], what="subnets", again="makes it again")
        v6, v4 = ip_network(record["v6"]), ip_network(record["v4"])
        assert isinstance(v6, IPv6Network) and isinstance(v4, IPv4Network)
        return cls(EngineRef.from_record(record), v6, v4, record["network"]).apply(ctx)

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        engine = EngineRef.from_record(record).connect(ctx)
        name = record["network"]
        current = engine.network(name)
        if current is None:
            return Outcome.noop(f"{name} does not exist")
        try:
            engine.remove_network(name)
        except EngineError as exc:
            users = ", ".join(str(c.get("Name")) for c in (current.get("Containers") or {}).values())
            raise HostError(f"cannot remove {name}: {exc.message}" + (f" (attached: {users})" if users else "")) from None
        return Outcome.change(f"removed {name}")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"remove {record['runtime']} network {record['network']}")

    def remove(self, ctx: Context) -> Outcome:
        # Without a journal (a node prepared by lazyjack 1.x): the network of that name goes, labelled or not.
        return _unless_absent(self.engine, lambda: self.revert(ctx, {**self.engine.record(), "network": self.name}))

    def plan_remove(self, ctx: Context) -> Outcome:
        def plan(engine: Engine) -> Outcome:
            if engine.network(self.name) is None:
                return Outcome.noop(f"{self.name} does not exist")
            return Outcome.change(f"remove {self.name}")

        return _unless_absent(self.engine, lambda: planned(
            ctx, self.engine, plan, unstarted=lambda: Outcome.change(f"{START_PODMAN} to look for {self.name} and "
                                                                     "remove it")))


# --- the containers ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerPlan:
    """Everything that makes one server container: what to create, what to write, what to run after start."""

    name: str
    role: str  # "dns64" or "nat64" (the label's value)
    image: str
    command: list[str]
    conf_name: str  # file name in the work directory and in CONF_DIR
    conf_text: str
    ipv6: IPv6Address
    ipv4: IPv4Address | None
    cap_add: tuple[str, ...] = ("NET_ADMIN",)
    devices: tuple[str, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    # Commands run in the container right after it starts (addresses and routes the engine cannot set).
    after_start: tuple[tuple[str, ...], ...] = ()
    # "tun": wait for tayga's tun before after_start; "dns": wait for the DNS server to listen on port 53.
    ready: str = ""
    # Containers of ours this one takes the place of (the DNS64 server's, when dns64.server changed).
    replaces: tuple[str, ...] = ()


def container_spec(plan: ContainerPlan, *, conf_path: Path, network: str, runtime: str) -> dict[str, Any]:
    """The engine's create request for `plan`, with the conf file at `conf_path` (a real host path)."""
    ipam: dict[str, str] = {"IPv6Address": str(plan.ipv6)}
    if plan.ipv4 is not None:
        ipam["IPv4Address"] = str(plan.ipv4)
    # A replaced container must answer with the same MAC: the node and the other container would
    # otherwise send to a stale neighbour entry for many seconds (podman picks random MACs).
    # Docker before API 1.44 reads it from the container's config, podman and newer docker per endpoint.
    mac = mac_address(plan.ipv6)
    host_config: dict[str, Any] = {
        "NetworkMode": network,
        "Binds": [f"{conf_path}:{CONF_DIR}/{plan.conf_name}:ro"],
        "Tmpfs": {STATE_DIR: "rw,mode=0755"},
        "CapAdd": list(plan.cap_add),
        "Devices": [{"PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rwm"} for d in plan.devices],
        "Sysctls": dict(plan.sysctls),
        # Addresses and routes set after start would not survive a restart by the engine: prepare replaces it.
        "RestartPolicy": {"Name": "no"},
    }
    if runtime == "podman":
        host_config["Ulimits"] = PODMAN_ULIMITS
    return {
        "Image": plan.image,
        "MacAddress": mac,
        # The program itself as entrypoint: an image's own entrypoint must not wrap it.
        "Entrypoint": plan.command[:1],
        "Cmd": plan.command[1:],
        "Labels": {LABEL: plan.role},
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {network: {"IPAMConfig": ipam, "MacAddress": mac}}},
    }


def plan_record(plan: ContainerPlan) -> Record:
    """A ContainerPlan as a journal record keeps it (JSON), so that restore can make the container again."""
    return {k: (str(v) if isinstance(v, IPv4Address | IPv6Address) else v) for k, v in asdict(plan).items()}


def plan_from_record(data: Record) -> ContainerPlan:
    values = dict(data)
    values["ipv6"] = ip_address(values["ipv6"])
    values["ipv4"] = None if values.get("ipv4") is None else ip_address(values["ipv4"])
    for key in ("cap_add", "devices"):
        values[key] = tuple(values.get(key, ()))
    values["after_start"] = tuple(tuple(argv) for argv in values.get("after_start", ()))
    return ContainerPlan(**values)


def mac_address(address: IPv6Address) -> str:
    """A fixed, locally administered MAC for the container at `address` (02:6c, then 4 bytes of its hash)."""
    digest = hashlib.sha256(address.packed).digest()[:4]
    return ":".join(f"{byte:02x}" for byte in (0x02, 0x6C, *digest))


def _short_id(image_id: str | None) -> str:
    return (image_id or "unknown").removeprefix("sha256:")[:12]


def config_hash(spec: dict[str, Any], *, plan: ContainerPlan) -> str:
    """With the image's id, what decides whether a running container is still right: the request, the file,
    the commands run after its start."""
    return _digest({"spec": spec, "conf": plan.conf_text, "after_start": plan.after_start})


@dataclass
class SupportContainer(Step):
    """A DNS64 or NAT64 server container on support_net, running with the wanted configuration."""

    kind = "container"
    record_model = ContainerRecord
    engine: EngineRef
    server: ContainerPlan
    directory: str  # host path (before --root) of the work directory holding its conf file
    network: str = NETWORK

    @property
    def title(self) -> str:
        return f"{'DNS64' if self.server.role == 'dns64' else 'NAT64'} container {self.server.name}"

    @property
    def _conf(self) -> str:
        return f"{self.directory}/{self.server.conf_name}"

    def _spec(self, ctx: Context) -> dict[str, Any]:
        return container_spec(self.server, conf_path=ctx.real_path(self._conf), network=self.network,
                              runtime=self.engine.runtime)

    def _state(self, ctx: Context, engine: Engine) -> tuple[dict[str, Any] | None, str | None]:
        """(the container's inspect data or None, the image's id or None when the engine does not have it)."""
        current = engine.container(self.server.name)
        if current is not None and not _ours((current.get("Config") or {}).get("Labels")):
            raise HostError(
                f"a container {self.server.name!r} exists that lazyjack did not create (lazyjack 1.x or someone "
                f"else); remove it (`{self.engine.runtime} rm -f {self.server.name}`) and run prepare again"
            )
        image = engine.image(self.server.image)
        return current, None if image is None else str(image.get("Id", ""))

    def _replaced(self, engine: Engine) -> list[str]:
        """Our containers that did this one's job before (dns64.server changed), still there."""
        found = []
        for name in self.server.replaces:
            info = engine.container(name)
            if info is not None and _ours((info.get("Config") or {}).get("Labels")):
                found.append(name)
        return found

    def _check_tayga(self, ctx: Context, engine: Engine) -> None:
        if self.server.role == "nat64":
            ask = container_tayga_probe(engine, self.server.image)
            check_tayga(ctx, ask=ask, which=f"the tayga of image {self.server.image}", data_dir=STATE_DIR)

    def plan(self, ctx: Context) -> Outcome:
        where = ", ".join(str(a) for a in (self.server.ipv6, self.server.ipv4) if a is not None)
        start = f"start {self.server.name} from {self.server.image} at {where}"
        return planned(ctx, self.engine, lambda engine: self._plan(ctx, engine, where, start),
                       unstarted=lambda: Outcome.change(START_PODMAN, start))

    def _plan(self, ctx: Context, engine: Engine, where: str, start: str) -> Outcome:
        current, image_id = self._state(ctx, engine)
        pull = [] if image_id is not None else [f"pull {self.server.image} (not on this node)"]
        replaced = [f"stop and remove {name} (dns64.server changed)" for name in self._replaced(engine)]
        why = ""
        if current is not None:
            state = current.get("State") or {}
            labels = (current.get("Config") or {}).get("Labels") or {}
            if not state.get("Running"):
                why = f"it is {state.get('Status', 'stopped')} (exit code {state.get('ExitCode')})"
            elif labels.get(HASH_LABEL) != config_hash(self._spec(ctx), plan=self.server):
                why = "its configuration changed"
            elif labels.get(IMAGE_LABEL) != image_id:
                why = f"its image changed ({self.server.image} is now {_short_id(image_id)}, " \
                      f"it runs {_short_id(labels.get(IMAGE_LABEL))})"
            elif not replaced:
                return Outcome.noop(f"{self.server.name} runs with the current configuration at {where}")
        if image_id is not None:
            # Before anything changes: would the image's tayga take this configuration? (Without the
            # image, apply asks once it is pulled.)
            self._check_tayga(ctx, engine)
        replace = [f"replace {self.server.name}: {why}"] if why else []
        return Outcome.change(*pull, *replaced, *replace, start)

    def apply(self, ctx: Context) -> Record:
        engine = self.engine.connect(ctx)
        files = ctx.host.files
        created = make_parents(ctx, self._conf, modes={self.directory: 0o700})
        record = {**self.engine.record(), "name": self.server.name, "conf": self._conf,
                  "created_dirs": created, "plan": plan_record(self.server), "directory": self.directory,
                  "network": self.network, "summary": self.title}
        try:
            files.write_atomic(self._conf, self.server.conf_text.encode(), mode=0o644)
            if engine.image(self.server.image) is None:
                try:
                    engine.pull(self.server.image)
                except EngineError as exc:
                    raise HostError(
                        f"image {self.server.image} is not on this node and cannot be pulled ({exc.message}); "
                        "build it from lazyjack's images/ directory (README.md, \"DNS64 and NAT64\") or set the image in the config"
                    ) from None
                self._check_tayga(ctx, engine)
            _, image_id = self._state(ctx, engine)
            assert image_id is not None
            for name in self._replaced(engine):
                engine.remove_container(name)
            engine.remove_container(self.server.name)
            spec = self._spec(ctx)
            spec["Labels"][HASH_LABEL] = config_hash(spec, plan=self.server)
            spec["Labels"][IMAGE_LABEL] = image_id
            engine.create_container(self.server.name, spec)
            engine.start(self.server.name)
            self._settle(ctx, engine)
        except BaseException:
            self._undo(ctx, engine, record)
            raise
        return record

    def _settle(self, ctx: Context, engine: Engine) -> None:
        """Wait for the daemon, run the commands after start; fail with the container's output."""
        name = self.server.name
        # Until duplicate address detection ends the new IPv6 address takes no traffic (podman does not
        # skip it): a replaced container would miss the first packets sent to it.
        self._poll(ctx, engine, lambda: not engine.exec(name, list(TENTATIVE)).output.strip(),
                   "duplicate address detection did not end")
        if self.server.ready == "tun":
            self._poll(ctx, engine, lambda: engine.exec(name, ["ip", "link", "show", TUN]).exit_code == 0,
                       f"tayga did not create {TUN}")
        for argv in self.server.after_start:
            result = engine.exec(name, list(argv))
            if result.exit_code != 0:
                raise HostError(f"{' '.join(argv)} in {name} exited with {result.exit_code}: {result.output.strip()}")
        if self.server.ready == "dns":
            info = engine.container(name) or {}
            pid = int((info.get("State") or {}).get("Pid") or 0)
            if pid <= 0 or not ctx.host.daemons.listening(pid, port=53, timeout=READY_TIMEOUT):
                self._failed(engine, f"named did not listen on port 53 within {READY_TIMEOUT:g}s")
        info = engine.container(name) or {}
        if not (info.get("State") or {}).get("Running"):
            self._failed(engine, "it stopped right after its start")

    def _poll(self, ctx: Context, engine: Engine, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            info = engine.container(self.server.name) or {}
            if time.monotonic() >= deadline or not (info.get("State") or {}).get("Running"):
                self._failed(engine, f"{what} within {READY_TIMEOUT:g}s")
            time.sleep(0.1)

    def _failed(self, engine: Engine, why: str) -> None:
        logs = engine.logs(self.server.name).strip()
        raise HostError(f"container {self.server.name} ({self.server.image}): {why}"
                        + (f"; its output:\n{logs}" if logs else ""))

    @classmethod
    def _undo(cls, ctx: Context, engine: Engine, record: Record) -> bool:
        name = record["name"]
        current = engine.container(name)
        removed = False
        if current is not None and _ours((current.get("Config") or {}).get("Labels")):
            removed = engine.remove_container(name)
        files = ctx.host.files
        files.remove(record["conf"])
        remove_created_dirs(ctx, record.get("created_dirs", []))
        return removed

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        name = record["name"]
        info = EngineRef.from_record(record).connect(ctx).container(name)
        if info is None:
            return Status.missing(f"container {name} is gone")
        state = info.get("State") or {}
        if not state.get("Running"):
            return Status.missing(f"container {name} is {state.get('Status', 'stopped')} "
                                  f"(exit code {state.get('ExitCode')})")
        return Status.ok(f"{name} is running")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        """Make and start the container again as recorded (its configuration file, if gone, written again)."""
        cls.needs(record, "plan", name=record["name"], what="plan (how it was made)", again="starts it again")
        step = cls(EngineRef.from_record(record), plan_from_record(record["plan"]), record["directory"],
                   record["network"])
        return step.apply(ctx)

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        engine = EngineRef.from_record(record).connect(ctx)
        if cls._undo(ctx, engine, record):
            return Outcome.change(f"stopped and removed {record['name']}; removed {record['conf']}")
        return Outcome.noop(f"{record['name']} does not exist")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"stop and remove container {record['name']}")

    def remove(self, ctx: Context) -> Outcome:
        # Without a journal (lazyjack 1.x): the container of that name goes, labelled or not.
        def remove() -> Outcome:
            removed = self.engine.connect(ctx).remove_container(self.server.name)
            ctx.host.files.remove(self._conf)
            if removed:
                return Outcome.change(f"stopped and removed {self.server.name}")
            return Outcome.noop(f"{self.server.name} does not exist")

        return _unless_absent(self.engine, remove)

    def plan_remove(self, ctx: Context) -> Outcome:
        def plan(engine: Engine) -> Outcome:
            if engine.container(self.server.name) is None:
                return Outcome.noop(f"{self.server.name} does not exist")
            return Outcome.change(f"stop and remove {self.server.name}")

        return _unless_absent(self.engine, lambda: planned(
            ctx, self.engine, plan, unstarted=lambda: Outcome.change(f"{START_PODMAN} to look for "
                                                                     f"{self.server.name} and remove it")))


# --- what the DNS64/NAT64 node runs --------------------------------------------------------


def nat64_container(ctx: Context) -> ContainerPlan:
    """tayga: creates its tun at start; the tun is brought up and the pool and prefix routed into it after."""
    egress = ctx.egress
    nat64, support = egress.nat64, egress.support
    assert nat64 is not None and support is not None
    after: list[tuple[str, ...]] = [
        ("ip", "link", "set", TUN, "up"),
        ("ip", "route", "replace", str(nat64.v4_cidr), "dev", TUN),
        ("ip", "-6", "route", "replace", str(egress.prefix), "dev", TUN),
    ]
    resolver = remote_resolver(ctx)
    if resolver is not None:
        # The DNS64 server runs on another node, though its address lies in support_net: replies to it
        # leave through this node.
        after.append(("ip", "-6", "route", "replace", str(resolver), "via", str(support_gateway(support.cidr))))
    return ContainerPlan(
        name=NAT64_NAME,
        role="nat64",
        image=nat64.image,
        command=["tayga", "--nodetach", "--config", f"{CONF_DIR}/tayga.conf"],
        conf_name="tayga.conf",
        conf_text=tayga_conf(egress, data_dir=STATE_DIR),
        ipv6=nat64.ip,
        ipv4=nat64.v4_ip,
        devices=("/dev/net/tun",),
        sysctls={**IPV6_SYSCTLS, **FORWARDING_SYSCTLS},
        after_start=tuple(after),
        ready="tun",
    )


def dns64_container(ctx: Context) -> ContainerPlan:
    """named or unbound: IPv6 only (the engine's IPv4 address is removed); with NAT64 on this node too, the
    DNS64 prefix routed via the NAT64 container, else through the node (to the NAT64 node or the site's)."""
    egress = ctx.egress
    dns64 = egress.dns64
    assert dns64 is not None
    program = dns64.program
    after: list[tuple[str, ...]] = [
        # The engine gives every container an IPv4 address on a dual-stack network; the DNS64 server
        # must not have one (1.x removed it too): flush the global IPv4 addresses of its link.
        ("ip", "-4", "addr", "flush", "dev", CONTAINER_LINK, "scope", "global"),
    ]
    if ctx.node.is_nat64 and egress.nat64 is not None:
        after.append(("ip", "-6", "route", "replace", str(egress.prefix), "via", str(egress.nat64.ip)))
    return ContainerPlan(
        name=DNS64_NAMES[program],
        role="dns64",
        image=dns64.image,
        command=[program, *ARGV[program], f"{CONF_DIR}/{program}.conf"],
        conf_name=f"{program}.conf",
        conf_text=dns64_conf(egress, state_dir=STATE_DIR, clients=served_networks(ctx.config)),
        ipv6=dns64.ip,
        ipv4=None,
        sysctls=dict(IPV6_SYSCTLS),
        after_start=tuple(after),
        ready="dns",
        replaces=tuple(name for other, name in DNS64_NAMES.items() if other != program),
    )


def container_tayga_probe(engine: Engine, image: str) -> TaygaProbe:
    """The image's tayga, in a throwaway container without a network: its namespace and tun die with it."""

    def ask(conf: str) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="lazyjack-tayga-") as scratch:
            path = Path(scratch) / "tayga.conf"
            path.write_text(conf)
            path.chmod(0o644)
            Path(scratch).chmod(0o755)  # podman may read the file as another user
            spec = {
                "Image": image,
                "Entrypoint": ["tayga"],
                "Cmd": ["--config", f"{CONF_DIR}/tayga.conf", "--mktun"],
                "Labels": {LABEL: "probe"},
                "HostConfig": {
                    "NetworkMode": "none",
                    "Binds": [f"{path}:{CONF_DIR}/tayga.conf:ro"],
                    "CapAdd": ["NET_ADMIN"],
                    "Devices": [{"PathOnHost": "/dev/net/tun", "PathInContainer": "/dev/net/tun",
                                 "CgroupPermissions": "rwm"}],
                    **({"Ulimits": PODMAN_ULIMITS} if engine.name == "podman" else {}),
                },
            }
            code, output = engine.run_once(f"lazyjack-probe-{uuid.uuid4().hex[:12]}", spec, timeout=READY_TIMEOUT)
        return code == 0, output.strip()

    return ask


def container_steps(ctx: Context, runtime: str, socket_path: str) -> list[Step]:
    """The network and this node's server(s), in the order prepare applies them."""
    egress = ctx.egress
    assert egress.support is not None
    engine = EngineRef(runtime, socket_path)
    work = ctx.work_area.rstrip("/")
    steps: list[Step] = [SupportNetwork(engine, egress.support.cidr, egress.support.v4cidr)]
    if ctx.node.is_nat64:
        steps.append(SupportContainer(engine, nat64_container(ctx), f"{work}/nat64"))
    if ctx.node.is_dns64:
        steps.append(SupportContainer(engine, dns64_container(ctx), f"{work}/dns64"))
    return steps
