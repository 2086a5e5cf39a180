"""The Docker Engine API client and the docker/podman DNS64/NAT64 steps, against a fake engine on a unix socket."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest
from fake_engine import EngineState, fake_engine, frame, silent_server
from stepkit import SUPPORT_NODE, FakeNode, make_node

from fake_host import FakeRunner
from lazyjack.commands.node import dns64_nat64_steps
from lazyjack.errors import CommandFailed, HostError, PreflightError
from lazyjack.host.containers import (
    Engine,
    EngineConflict,
    EngineError,
    EngineNotFound,
    EngineUnreachable,
    PodmanService,
    demux,
    image_reference,
    socket_for,
)
from lazyjack.host.process import Completed, ProgressCallback
from lazyjack.steps.base import Context
from lazyjack.steps.containers import (
    HASH_LABEL,
    NETWORK,
    EngineRef,
    SupportContainer,
    SupportNetwork,
    dns64_container,
    mac_address,
    nat64_container,
)
from lazyjack.steps.network import Routes, Sysctl
from lazyjack.steps.support import Masquerade, NativeServer, PrefixForward, SupportLink, SupportNamespace

IMAGE = "lazyjack/tayga:latest"
DNS_IMAGE = "lazyjack/bind9:latest"
V6, V4 = IPv6Network("fd00:10::/64"), IPv4Network("172.18.0.0/16")


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "engine.sock"


@pytest.fixture
def engine_state(sock: Path) -> Iterator[EngineState]:
    with fake_engine(sock) as state:
        yield state


# --- the client ---------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "spoken"), [("1.43", "1.41"), ("1.41", "1.41"), ("1.40", "1.40")])
def test_api_version_is_the_lower_of_engine_and_client(sock: Path, server: str, spoken: str) -> None:
    with fake_engine(sock, EngineState(api_version=server)) as state:
        engine = Engine(str(sock))
        assert engine.network("nothing") is None
        assert engine.container("nothing") is None
    versions = [(r.version, r.path) for r in state.requests]
    # Asked once, then every request carries the version.
    assert versions == [(None, "/version"), (spoken, "/networks/nothing"), (spoken, "/containers/nothing/json")]


def test_an_engine_older_than_the_minimum_is_refused(sock: Path) -> None:
    with fake_engine(sock, EngineState(api_version="1.24")), pytest.raises(EngineError, match=r"API 1\.24.*1\.25"):
        Engine(str(sock)).network(NETWORK)


def test_refusals_carry_the_http_status_and_the_engines_message(sock: Path, engine_state: EngineState) -> None:
    engine = Engine(str(sock))
    engine.create_network({"Name": "n"})
    with pytest.raises(EngineConflict) as conflict:
        engine.create_network({"Name": "n"})
    assert conflict.value.status == 409 and conflict.value.message == "network with name n already exists"
    with pytest.raises(EngineNotFound) as missing:
        engine.start("ghost")
    assert missing.value.status == 404 and "No such container: ghost" in str(missing.value)
    engine_state.fail_once["GET /networks/n"] = (500, "the daemon is unwell")
    with pytest.raises(EngineError) as failed:
        engine.network("n")
    assert type(failed.value) is EngineError and failed.value.status == 500
    assert str(failed.value) == "docker API GET /networks/n failed with HTTP 500: the daemon is unwell"
    assert isinstance(failed.value, HostError)


def test_nothing_listening_is_unreachable_and_says_where(tmp_path: Path) -> None:
    engine = Engine(str(tmp_path / "none.sock"), hint="is dockerd running?")
    with pytest.raises(EngineUnreachable) as exc:
        engine.network(NETWORK)
    assert exc.value.absent and str(tmp_path / "none.sock") in str(exc.value) and "is dockerd running?" in str(exc.value)
    assert not engine.answers()


def test_an_engine_that_hangs_times_out(sock: Path) -> None:
    with silent_server(sock):
        engine = Engine(str(sock), timeout=0.3, starter=lambda _e: pytest.fail("a hanging engine is not restarted"))
        start = time.monotonic()
        with pytest.raises(EngineUnreachable, match=r"no answer to GET /version within 0\.3s") as exc:
            engine.network(NETWORK)
        assert not exc.value.absent
        assert time.monotonic() - start < 3


def test_timeouts_must_be_positive(sock: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        Engine(str(sock), timeout=0)


def test_exec_separates_the_streams_and_reports_the_exit_code(sock: Path, engine_state: EngineState) -> None:
    engine_state.add_image(IMAGE)
    engine_state.exec_answer = lambda name, argv: (3, "out\n", "err\n") if argv[0] == "false" else (0, "", "")
    engine = Engine(str(sock))
    engine.create_network({"Name": NETWORK})
    engine.create_container("c", {"Image": IMAGE, "HostConfig": {"NetworkMode": NETWORK}})
    with pytest.raises(EngineConflict, match="not running"):
        engine.exec("c", ["true"])
    engine.start("c")
    result = engine.exec("c", ["false", "x"])
    assert (result.exit_code, result.stdout, result.stderr, result.output) == (3, "out\n", "err\n", "out\nerr\n")
    assert engine.exec("c", ["true"]).exit_code == 0
    assert engine_state.execs_run("c") == [["false", "x"], ["true"]]


def test_pull_reports_an_error_from_the_progress_stream(sock: Path, engine_state: EngineState) -> None:
    engine_state.pullable["lazyjack/bind9:latest"] = "sha256:" + "b" * 64
    engine = Engine(str(sock))
    engine.pull("lazyjack/bind9")  # no tag: latest, never every tag
    assert engine.image("lazyjack/bind9:latest") == {"Id": "sha256:" + "b" * 64, "RepoTags": ["lazyjack/bind9:latest"]}
    pull = next(r for r in engine_state.requests if r.path == "/images/create")
    assert pull.query == {"fromImage": "lazyjack/bind9", "tag": "latest"}
    with pytest.raises(EngineError, match="pull of lazyjack/tayga:latest: pull access denied"):
        engine.pull(IMAGE)


def test_a_starter_is_asked_once_when_nothing_listens(sock: Path) -> None:
    started: list[str] = []
    with ExitStack() as stack:

        def starter(engine: Engine) -> None:
            started.append(engine.socket_path)
            stack.enter_context(fake_engine(sock))

        engine = Engine(str(sock), starter=starter)
        assert engine.network(NETWORK) is None
        assert engine.network(NETWORK) is None
    assert started == [str(sock)]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (frame(1, b"a") + frame(2, b"b") + frame(1, b"c"), (b"ac", b"b")),
        (b"", (b"", b"")),
        (b"plain tty output", (b"plain tty output", b"")),
    ],
)
def test_demux(stream: bytes, expected: tuple[bytes, bytes]) -> None:
    assert demux(stream) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("lazyjack/tayga", ("lazyjack/tayga", "latest")),
        ("lazyjack/tayga:1.0", ("lazyjack/tayga", "1.0")),
        ("registry.test:5000/tayga", ("registry.test:5000/tayga", "latest")),
        ("registry.test:5000/tayga:v2", ("registry.test:5000/tayga", "v2")),
        ("tayga@sha256:abc", ("tayga", "sha256:abc")),
    ],
)
def test_image_reference(image: str, expected: tuple[str, str]) -> None:
    assert image_reference(image) == expected


@pytest.mark.parametrize(
    ("runtime", "env", "expected"),
    [
        ("docker", {}, "/var/run/docker.sock"),
        ("podman", {}, "/run/podman/podman.sock"),
        ("docker", {"DOCKER_HOST": "unix:///srv/d.sock"}, "/srv/d.sock"),
        ("docker", {"DOCKER_HOST": "tcp://10.0.0.1:2375"}, "/var/run/docker.sock"),
        ("docker", {"DOCKER_HOST": "unix:///srv/d.sock", "LAZYJACK_DOCKER_SOCKET": "/t/d.sock"}, "/t/d.sock"),
        ("podman", {"DOCKER_HOST": "unix:///srv/d.sock"}, "/run/podman/podman.sock"),
        ("podman", {"LAZYJACK_PODMAN_SOCKET": "unix:///t/p.sock"}, "/t/p.sock"),
    ],
)
def test_socket_for(runtime: str, env: dict[str, str], expected: str) -> None:
    assert socket_for(runtime, env) == expected


class FakeDaemons:
    """Daemons that 'start' by calling `on_start`; `listening` answers from `ports`."""

    def __init__(self, on_start: Any = None, *, listening: bool = True) -> None:
        self.on_start = on_start
        self.started: list[list[str]] = []
        self.stopped: list[str] = []
        self.listening_asked: list[int] = []
        self.answer = listening

    def start(self, argv: list[str], *, pid_file: Path, log_file: Path) -> int:
        self.started.append(argv)
        pid_file.write_text("4242\n")
        log_file.write_text("podman: listening\n")
        if self.on_start is not None:
            self.on_start()
        return 4242

    def running(self, pid_file: Path, *, program: str) -> int | None:
        return 4242 if pid_file.exists() else None

    def stop(self, pid_file: Path, *, program: str, timeout: float = 10.0) -> bool:
        self.stopped.append(program)
        pid_file.unlink(missing_ok=True)
        return True

    def listening(self, pid: int, *, port: int, timeout: float) -> bool:
        self.listening_asked.append(pid)
        return self.answer


def test_podman_service_is_started_when_nothing_listens(tmp_path: Path) -> None:
    sock = tmp_path / "podman" / "podman.sock"
    with ExitStack() as stack:
        daemons = FakeDaemons(on_start=lambda: stack.enter_context(fake_engine(sock)))
        engine = Engine(str(sock), name="podman", starter=PodmanService(daemons=daemons, state_dir=sock.parent))
        assert engine.network(NETWORK) is None
        assert engine.network(NETWORK) is None
        # It ends by itself when idle: nothing of it is left to clean.
        assert daemons.started == [["podman", "system", "service", "--time=60", f"unix://{sock}"]]
        assert sorted(p.name for p in sock.parent.iterdir()) == ["podman.sock"]


def test_a_podman_service_that_does_not_answer_is_stopped_and_reported(tmp_path: Path) -> None:
    sock = tmp_path / "podman.sock"
    daemons = FakeDaemons()
    service = PodmanService(daemons=daemons, state_dir=tmp_path, start_timeout=0.2)
    with pytest.raises(EngineUnreachable, match=r"did not answer within 0\.2s; it wrote:\npodman: listening"):
        Engine(str(sock), name="podman", starter=service).network(NETWORK)
    assert daemons.stopped == ["podman"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- the steps -----------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> FakeNode:
    node = make_node(tmp_path, "ipv6.yaml", SUPPORT_NODE)
    node.host.daemons = FakeDaemons()
    return node


@pytest.fixture
def ctx(node: FakeNode) -> Context:
    return node.context()


@pytest.fixture
def ref(sock: Path) -> EngineRef:
    return EngineRef("docker", str(sock))


def test_network_created_kept_recreated_and_removed(ctx: Context, ref: EngineRef, engine_state: EngineState) -> None:
    step = SupportNetwork(ref, V6, V4)
    assert step.plan(ctx).changes == ("create support_net with fd00:10::/64 and 172.18.0.0/16",)
    record = step.apply(ctx)
    created = engine_state.networks[NETWORK]
    assert created["EnableIPv6"] is True and created["Driver"] == "bridge"
    assert created["IPAM"]["Config"] == [
        {"Subnet": "fd00:10::/64", "Gateway": "fd00:10::1"},
        {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
    ]
    assert created["Labels"]["lazyjack"] == "support" and HASH_LABEL in created["Labels"]
    assert created["Options"] == {"com.docker.network.bridge.name": "ljsupbr0"}
    outcome = step.plan(ctx)
    assert not outcome.needed and outcome.reason == "support_net exists with fd00:10::/64 and 172.18.0.0/16"

    # Another v4cidr: re-created, our container on it removed first (its step starts it again).
    engine_state.add_image(IMAGE)
    SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64").apply(ctx)
    changed = SupportNetwork(ref, V6, IPv4Network("172.19.0.0/16"))
    assert changed.plan(ctx).changes == ("re-create support_net with fd00:10::/64 and 172.19.0.0/16 "
                                         "(its settings changed)",)
    changed.apply(ctx)
    assert engine_state.containers == {}
    assert engine_state.networks[NETWORK]["IPAM"]["Config"][1]["Subnet"] == "172.19.0.0/16"

    assert SupportNetwork.revert(ctx, record).changes == ("removed support_net",)
    assert SupportNetwork.revert(ctx, record).reason == "support_net does not exist"
    assert engine_state.networks == {}


def test_podman_network_has_no_docker_bridge_option(ctx: Context, sock: Path, engine_state: EngineState) -> None:
    SupportNetwork(EngineRef("podman", str(sock)), V6, V4).apply(ctx)
    assert engine_state.networks[NETWORK]["Options"] == {}


def test_a_network_lazyjack_did_not_create_is_refused_but_removed_at_clean_without_journal(
    ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    Engine(ref.socket).create_network({"Name": NETWORK, "EnableIPv6": True})
    step = SupportNetwork(ref, V6, V4)
    with pytest.raises(HostError, match=r"a docker network 'support_net' exists that lazyjack did not create"):
        step.plan(ctx)
    # clean of a node lazyjack 1.x prepared: the network of that name goes.
    assert step.plan_remove(ctx).changes == ("remove support_net",)
    assert step.remove(ctx).changes == ("removed support_net",)
    assert step.remove(ctx).reason == "support_net does not exist"


def _ready(ctx: Context, ref: EngineRef, state: EngineState) -> None:
    state.add_image(IMAGE)
    state.add_image(DNS_IMAGE)
    SupportNetwork(ref, V6, V4).apply(ctx)


def test_nat64_container_created_kept_replaced_and_removed(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    _ready(ctx, ref, engine_state)
    step = SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")
    assert step.plan(ctx).changes == (f"start tayga from {IMAGE} at fd00:10::200, 172.18.0.200",)
    record = step.apply(ctx)

    created = engine_state.containers["tayga"]
    body, host = created["Created"], created["HostConfig"]
    conf = node.root / "tmp/lazyjack/nat64/tayga.conf"
    assert body["Entrypoint"] == ["tayga"] and body["Cmd"] == ["--nodetach", "--config", "/etc/lazyjack/tayga.conf"]
    assert host["Binds"] == [f"{conf}:/etc/lazyjack/tayga.conf:ro"]
    assert host["CapAdd"] == ["NET_ADMIN"] and "Privileged" not in host
    assert host["Devices"] == [{"PathOnHost": "/dev/net/tun", "PathInContainer": "/dev/net/tun",
                                "CgroupPermissions": "rwm"}]
    assert host["Sysctls"] == {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0",
                               "net.ipv6.conf.all.forwarding": "1", "net.ipv4.ip_forward": "1"}
    assert "Ulimits" not in host
    endpoint = body["NetworkingConfig"]["EndpointsConfig"][NETWORK]
    assert endpoint["IPAMConfig"] == {"IPv6Address": "fd00:10::200", "IPv4Address": "172.18.0.200"}
    assert endpoint["MacAddress"] == body["MacAddress"] == mac_address(ctx.config.nat64.ip)  # type: ignore[union-attr,arg-type]
    assert created["Config"]["Labels"]["lazyjack"] == "nat64"
    text = conf.read_text()
    assert "tun-device nat64" in text and "data-dir /run/lazyjack" in text and "prefix fd00:10:64:ff9b::/96" in text
    assert engine_state.execs_run("tayga") == [
        ["ip", "-6", "addr", "show", "tentative"],
        ["ip", "link", "show", "nat64"],
        ["ip", "link", "set", "nat64", "up"],
        ["ip", "route", "replace", "172.18.0.128/25", "dev", "nat64"],
        ["ip", "-6", "route", "replace", "fd00:10:64:ff9b::/96", "dev", "nat64"],
    ]

    # Running with the same configuration: kept.
    outcome = step.plan(ctx)
    assert not outcome.needed
    assert outcome.reason == "tayga runs with the current configuration at fd00:10::200, 172.18.0.200"

    # Stopped: replaced.
    first = created["Id"]
    engine_state.containers["tayga"]["State"] = {"Running": False, "Status": "exited", "ExitCode": 1, "Pid": 0}
    assert step.plan(ctx).changes[0] == "replace tayga: it is exited (exit code 1)"
    step.apply(ctx)
    assert engine_state.containers["tayga"]["Id"] != first
    assert not step.plan(ctx).needed

    # The image was rebuilt, or the configuration changed: replaced.
    old_image = engine_state.images[IMAGE]["Id"]
    new_image = engine_state.add_image(IMAGE, "sha256:" + "e" * 64)
    assert step.plan(ctx).changes[0] == f"replace tayga: its image changed ({IMAGE} is now eeeeeeeeeeee, " \
                                        f"it runs {old_image.removeprefix('sha256:')[:12]})"
    step.apply(ctx)
    assert engine_state.containers["tayga"]["Config"]["Labels"]["lazyjack.image-id"] == new_image
    other_pool = dataclasses.replace(nat64_container(ctx), conf_text="# another pool\n")
    assert SupportContainer(ref, other_pool, "/tmp/lazyjack/nat64").plan(ctx).changes[0] == \
        "replace tayga: its configuration changed"

    # Reverted: container and file gone, and the directories lazyjack made; a second time, nothing to do.
    assert SupportContainer.revert(ctx, record).needed
    assert "tayga" not in engine_state.containers and not conf.exists()
    assert not (node.root / "tmp/lazyjack").exists()
    assert SupportContainer.revert(ctx, record).reason == "tayga does not exist"


def test_dns64_container_keeps_only_ipv6_and_routes_the_prefix_via_nat64(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    _ready(ctx, ref, engine_state)
    step = SupportContainer(ref, dns64_container(ctx), "/tmp/lazyjack/dns64")
    step.apply(ctx)
    created = engine_state.containers["bind9"]
    body = created["Created"]
    assert body["Entrypoint"] == ["named"] and body["Cmd"] == ["-g", "-c", "/etc/lazyjack/named.conf"]
    assert body["NetworkingConfig"]["EndpointsConfig"][NETWORK]["IPAMConfig"] == {"IPv6Address": "fd00:10::100"}
    assert created["HostConfig"]["CapAdd"] == ["NET_ADMIN"] and created["HostConfig"]["Devices"] == []
    assert engine_state.execs_run("bind9") == [
        ["ip", "-6", "addr", "show", "tentative"],
        ["ip", "-4", "addr", "flush", "dev", "eth0", "scope", "global"],
        ["ip", "-6", "route", "replace", "fd00:10:64:ff9b::/96", "via", "fd00:10::200"],
    ]
    assert node.host.daemons.listening_asked == [created["State"]["Pid"]]  # type: ignore[attr-defined]
    conf = (node.root / "tmp/lazyjack/dns64/named.conf").read_text()
    assert 'directory "/run/lazyjack";' in conf and "listen-on-v6 { fd00:10::100; };" in conf
    assert "forwarders { fd00:10:64:ff9b::cb00:7135; };" in conf


def test_podman_containers_get_limits(ctx: Context, sock: Path, engine_state: EngineState) -> None:
    ref = EngineRef("podman", str(sock))
    _ready(ctx, ref, engine_state)
    SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64").apply(ctx)
    assert engine_state.containers["tayga"]["HostConfig"]["Ulimits"] == [
        {"Name": "nofile", "Soft": 1024, "Hard": 1024}, {"Name": "nproc", "Soft": 1024, "Hard": 1024}]


def test_a_named_that_does_not_listen_fails_with_its_output_and_leaves_nothing(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    _ready(ctx, ref, engine_state)
    node.host.daemons.answer = False  # type: ignore[attr-defined]
    with pytest.raises(HostError, match=r"named did not listen on port 53 within 15s; its output:\n"
                                        r"named: started\nnamed: giving up"):
        SupportContainer(ref, dns64_container(ctx), "/tmp/lazyjack/dns64").apply(ctx)
    assert "bind9" not in engine_state.containers
    assert not (node.root / "tmp/lazyjack").exists()


def test_a_failed_command_after_start_fails_the_step_and_leaves_nothing(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    _ready(ctx, ref, engine_state)
    engine_state.exec_answer = lambda _n, argv: (2, "", "RTNETLINK answers: Operation not permitted\n") \
        if "route" in argv else (0, "", "")
    with pytest.raises(HostError, match=r"ip route replace 172\.18\.0\.128/25 dev nat64 in tayga exited with 2: "
                                        r"RTNETLINK answers: Operation not permitted"):
        SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64").apply(ctx)
    assert "tayga" not in engine_state.containers and not (node.root / "tmp/lazyjack").exists()


def test_a_missing_image_is_pulled_or_the_error_says_how_to_build_it(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    SupportNetwork(ref, V6, V4).apply(ctx)
    step = SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")
    assert step.plan(ctx).changes[0] == f"pull {IMAGE} (not on this node)"
    with pytest.raises(HostError, match=r"image lazyjack/tayga:latest is not on this node and cannot be pulled "
                                        r"\(pull of lazyjack/tayga:latest: pull access denied.*images/"):
        step.apply(ctx)
    assert engine_state.containers == {} and not (node.root / "tmp/lazyjack").exists()
    engine_state.pullable[IMAGE] = "sha256:" + "c" * 64
    step.apply(ctx)
    assert engine_state.containers["tayga"]["Image"] == "sha256:" + "c" * 64


def test_a_container_lazyjack_did_not_create_is_refused(ctx: Context, ref: EngineRef, engine_state: EngineState) -> None:
    _ready(ctx, ref, engine_state)
    Engine(ref.socket).create_container("tayga", {"Image": IMAGE, "HostConfig": {"NetworkMode": NETWORK}})
    step = SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")
    with pytest.raises(HostError, match="a container 'tayga' exists that lazyjack did not create"):
        step.plan(ctx)
    assert step.remove(ctx).changes == ("stopped and removed tayga",)
    assert step.remove(ctx).reason == "tayga does not exist"


def test_an_unreachable_engine_stops_the_plan(ctx: Context, tmp_path: Path) -> None:
    step = SupportNetwork(EngineRef("docker", str(tmp_path / "none.sock")), V6, V4)
    with pytest.raises(EngineUnreachable, match="is dockerd running"):
        step.plan(ctx)


class RuleRunner(FakeRunner):
    """ip6tables with a rule list: -C finds, -I adds, -D removes (exit 1 when absent), as the real one."""

    def __init__(self) -> None:
        super().__init__(installed=["ip6tables"])
        self.rules: list[list[str]] = []

    def run(self, argv: list[str], *, timeout: float, input: bytes | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            on_progress: ProgressCallback | None = None, progress_interval: float = 5.0) -> Completed:
        assert argv[:5] == ["ip6tables", "-w", "5", "-t", "filter"] and timeout > 0
        action, rule = argv[5], argv[6:]
        code = 0
        if action == "-C":
            code = 0 if rule in self.rules else 1
        elif action == "-I":
            self.rules.insert(0, rule)
        elif action == "-A":
            self.rules.append(rule)
        elif action == "-D" and rule in self.rules:
            self.rules.remove(rule)
        elif action == "-D":
            code = 1
        if check and code:
            raise CommandFailed(argv, code, "Bad rule")
        return Completed(argv, code, "", "")


CLUSTER = [IPv6Network("fd00:20::/64"), IPv6Network("fd00:40::/72"), IPv6Network("::1/128"), IPv4Network("10.1.0.0/16")]


def test_prefix_forward_rules_apply_twice_and_revert_twice(node: FakeNode) -> None:
    runner = RuleRunner()
    node.host.proc = runner
    ctx = node.context()
    step = PrefixForward(IPv6Network("fd00:10:64:ff9b::/96"), CLUSTER)
    tag = ["-m", "comment", "--comment", "lazyjack"]
    accept = [["FORWARD", "-s", src, "-d", dst, *tag, "-j", "ACCEPT"] for src, dst in (
        ("fd00:20::/64", "fd00:10:64:ff9b::/96"), ("fd00:40::/72", "fd00:10:64:ff9b::/96"),
        ("fd00:10:64:ff9b::/96", "fd00:20::/64"), ("fd00:10:64:ff9b::/96", "fd00:40::/72"))]
    drop = ["FORWARD", "-d", "fd00:10:64:ff9b::/96", *tag, "-j", "DROP"]
    runner.rules = [["FORWARD", "-j", "DOCKER-USER"]]  # someone else's rule, in the middle
    assert len(step.plan(ctx).changes) == 5
    record = step.apply(ctx)
    # The cluster's (management and pod networks; loopback and IPv4 have no place here) first, the rest dropped.
    assert sorted(runner.rules[:4]) == sorted(accept) and runner.rules[4:] == [["FORWARD", "-j", "DOCKER-USER"], drop]
    assert step.plan(ctx).reason == "the rules are in place"
    assert step.apply(ctx) == {"rules": [], "summary": step.title}
    # Whichever rule goes missing, a later run puts it back on the right side of the others.
    for missing in (accept[2], drop):
        runner.rules.remove(missing)
        step.apply(ctx)
        assert runner.rules[-1] == drop and sorted(runner.rules[:4]) == sorted(accept)
    assert PrefixForward.revert(ctx, record).changes == ("removed 5 rule(s)",)
    assert PrefixForward.revert(ctx, record).reason == "already absent"
    assert runner.rules == [["FORWARD", "-j", "DOCKER-USER"]]


def test_prefix_forward_needs_ip6tables(ctx: Context) -> None:
    with pytest.raises(HostError, match="ip6tables is not installed"):
        PrefixForward(IPv6Network("fd00:10:64:ff9b::/96"), CLUSTER).plan(ctx)


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_the_dns64_nat64_node_runs_the_engine_steps(
    node: FakeNode, runtime: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"LAZYJACK_{runtime.upper()}_SOCKET", str(tmp_path / "e.sock"))
    general = node.config.general.model_copy(update={"dns64_nat64_runtime": runtime})
    ctx = dataclasses.replace(node.context(), config=dataclasses.replace(node.config, general=general))
    steps = dns64_nat64_steps(ctx)
    assert [type(s) for s in steps] == [Sysctl, SupportNetwork, SupportContainer, SupportContainer, PrefixForward,
                                        Routes, Masquerade]
    engines = {s.engine for s in steps if isinstance(s, SupportNetwork | SupportContainer)}
    assert engines == {EngineRef(runtime, str(tmp_path / "e.sock"))}
    routes = steps[5]
    assert isinstance(routes, Routes)
    assert [(str(r.destination), str(r.gateway), r.device) for r in routes.routes] == [
        ("fd00:10:64:ff9b::/96", "fd00:10::200", None), ("172.18.0.128/25", "172.18.0.200", None)]




def test_clean_without_journal_on_a_node_without_the_engine_removes_nothing(ctx: Context, tmp_path: Path) -> None:
    ref = EngineRef("docker", str(tmp_path / "none.sock"))
    for step in (SupportNetwork(ref, V6, V4), SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")):
        for outcome in (step.plan_remove(ctx), step.remove(ctx)):
            assert not outcome.needed and outcome.reason.startswith("no docker engine on this node (")


def test_a_podman_that_cannot_start_counts_as_no_engine(node: FakeNode, tmp_path: Path) -> None:
    class Missing(FakeDaemons):
        def start(self, argv: list[str], *, pid_file: Path, log_file: Path) -> int:
            raise CommandFailed(argv, None, "", reason="cannot start: No such file or directory")

    node.host.daemons = Missing()
    ctx = node.context()
    step = SupportNetwork(EngineRef("podman", str(tmp_path / "p" / "podman.sock")), V6, V4)
    assert step.remove(ctx).reason.startswith("no podman engine on this node (cannot start podman: podman system")
    with pytest.raises(EngineUnreachable, match="podman is not installed"):
        step.plan(ctx)


def test_planning_with_podman_not_answering_starts_nothing(node: FakeNode, tmp_path: Path) -> None:
    """A plan (and so --dry-run) only reads: podman's API service is started by apply, never by a plan."""
    daemons = FakeDaemons()
    node.host.daemons = daemons
    node.host.proc = FakeRunner(installed=["podman"])
    ctx = node.context()
    sock = tmp_path / "podman-run" / "podman.sock"
    ref = EngineRef("podman", str(sock))
    network = SupportNetwork(ref, V6, V4)
    server = SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")
    assert network.plan(ctx).changes == ("start podman's API service (podman system service)",
                                         "create support_net with fd00:10::/64 and 172.18.0.0/16")
    assert server.plan(ctx).changes == ("start podman's API service (podman system service)",
                                        "start tayga from lazyjack/tayga:latest at fd00:10::200, 172.18.0.200")
    for step in (network, server):
        outcome = step.plan_remove(ctx)
        assert outcome.changes == ("start podman's API service (podman system service) to look for "
                                   f"{'support_net' if step is network else 'tayga'} and remove it",)
    assert daemons.started == []
    assert not sock.parent.exists()
    node.host.proc = FakeRunner(installed=[])
    with pytest.raises(HostError, match="podman is not installed"):
        network.plan(node.context())


# --- unbound, DNS64 and NAT64 on different nodes, what the image's tayga accepts ----------------------


UNBOUND_IMAGE = "lazyjack/unbound:latest"


def _with(ctx: Context, *, server: str | None = None, prefix: str | None = None,
          roles: dict[str, tuple[str, ...]] | None = None, node: str | None = None) -> Context:
    """ctx with another DNS64 server or prefix and/or nodes' roles changed (the plan made again), acting as `node`."""
    from lazyjack.config.plan import build_plan

    config, egress = ctx.config, ctx.egress
    if server is not None:
        egress = dataclasses.replace(egress, dns64=dataclasses.replace(egress.dns64, server=server,  # type: ignore[type-var]
                                                                       image=UNBOUND_IMAGE))
    if prefix is not None:
        egress = dataclasses.replace(egress, prefix=IPv6Network(prefix))
    config = dataclasses.replace(config, egress=egress)
    if roles:
        nodes = {name: dataclasses.replace(spec, roles=roles.get(name, spec.roles)) for name, spec in config.nodes.items()}
        config = dataclasses.replace(config, nodes=nodes)
    plan = build_plan(config)
    return dataclasses.replace(ctx, config=config, plan=plan, node=plan.nodes[node or ctx.node.name])


def test_unbound_container(node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState) -> None:
    ctx = _with(ctx, server="unbound")
    _ready(ctx, ref, engine_state)
    engine_state.add_image(UNBOUND_IMAGE)
    plan = dns64_container(ctx)
    assert (plan.name, plan.image, plan.conf_name) == ("unbound", UNBOUND_IMAGE, "unbound.conf")
    SupportContainer(ref, plan, "/tmp/lazyjack/dns64").apply(ctx)
    body = engine_state.containers["unbound"]["Created"]
    assert body["Entrypoint"] == ["unbound"] and body["Cmd"] == ["-d", "-c", "/etc/lazyjack/unbound.conf"]
    conf = (node.root / "tmp/lazyjack/dns64/unbound.conf").read_text().splitlines()
    for line in ('    directory: "/run/lazyjack"', '    pidfile: "/run/lazyjack/unbound.pid"',
                 "    interface: fd00:10::100", "    dns64-prefix: fd00:10:64:ff9b::/96",
                 "    forward-addr: fd00:10:64:ff9b::cb00:7135", "    access-control: fd00:20::/64 allow"):
        assert line in conf
    assert engine_state.execs_run("unbound")[-1] == ["ip", "-6", "route", "replace", "fd00:10:64:ff9b::/96",
                                                     "via", "fd00:10::200"]


def test_a_changed_dns64_server_replaces_the_old_container(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    _ready(ctx, ref, engine_state)
    engine_state.add_image(UNBOUND_IMAGE)
    SupportContainer(ref, dns64_container(ctx), "/tmp/lazyjack/dns64").apply(ctx)
    unbound = SupportContainer(ref, dns64_container(_with(ctx, server="unbound")), "/tmp/lazyjack/dns64")
    assert unbound.plan(ctx).changes == ("stop and remove bind9 (dns64.server changed)",
                                         f"start unbound from {UNBOUND_IMAGE} at fd00:10::100")
    unbound.apply(ctx)
    assert sorted(engine_state.containers) == ["unbound"]
    assert not unbound.plan(ctx).needed


def test_split_nodes_run_one_container_each(node: FakeNode, ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    from lazyjack.steps.containers import container_steps

    roles = {SUPPORT_NODE: ("nat64",), "my-master": ("master", "dns64")}
    gateway, resolver = _with(ctx, roles=roles), _with(ctx, roles=roles, node="my-master")
    ref = EngineRef("docker", str(tmp_path / "e.sock"))
    assert [type(s) for s in container_steps(gateway, "docker", ref.socket)] == [SupportNetwork, SupportContainer]
    tayga = nat64_container(gateway)
    # The DNS64 server's address lies in the support network, but its server is on the other node.
    assert tayga.after_start[-1] == ("ip", "-6", "route", "replace", "fd00:10::100", "via", "fd00:10::1")
    steps = container_steps(resolver, "docker", ref.socket)
    assert [type(s) for s in steps] == [SupportNetwork, SupportContainer]
    named = dns64_container(resolver)
    assert named.name == "bind9" and all("fd00:10::200" not in argv for argv in named.after_start)
    assert [type(s) for s in dns64_nat64_steps(resolver)] == [SupportNamespace, SupportLink, NativeServer,
                                                               PrefixForward]  # the example's native runtime
    monkeypatch.setenv("LAZYJACK_DOCKER_SOCKET", ref.socket)
    general = ctx.config.general.model_copy(update={"dns64_nat64_runtime": "docker"})
    for one in (gateway, resolver):
        one.config = dataclasses.replace(one.config, general=general)
    kinds = [type(s) for s in dns64_nat64_steps(resolver)]
    assert kinds == [SupportNetwork, SupportContainer, PrefixForward]  # no IPv4 forwarding, pool or masquerade
    forward = dns64_nat64_steps(resolver)[-1]
    assert isinstance(forward, PrefixForward) and str(forward.prefix) == "fd00:10::/64"  # the support network
    kinds = [type(s) for s in dns64_nat64_steps(gateway)]
    assert kinds == [Sysctl, SupportNetwork, SupportContainer, PrefixForward, Routes, Masquerade]


def test_the_images_tayga_is_asked_in_a_throwaway_container(
    node: FakeNode, ctx: Context, ref: EngineRef, engine_state: EngineState
) -> None:
    ctx = _with(ctx, prefix="64:ff9b:1::/96")
    _ready(ctx, ref, engine_state)
    asked: list[dict[str, Any]] = []

    def run(name: str, argv: list[str]) -> tuple[int, str, str]:
        container = engine_state.containers[name]
        conf = Path(container["HostConfig"]["Binds"][0].split(":")[0]).read_text()
        asked.append({"argv": argv, "host": container["HostConfig"], "labels": container["Config"]["Labels"]})
        if "prefix 64:ff9b:1::" in conf:
            return 1, "", "Cannot use reserved address 64:ff9b:1::/96 in prefix directive, aborting...\n"
        return 0, "Created persistent tun device nat64\n", ""

    engine_state.run_answer = run
    step = SupportContainer(ref, nat64_container(ctx), "/tmp/lazyjack/nat64")
    with pytest.raises(PreflightError) as caught:
        step.plan(ctx)
    assert str(caught.value).startswith(
        f"the tayga of image {IMAGE} refuses the NAT64 configuration for dns64.cidr 64:ff9b:1::/96: Cannot use "
        "reserved address 64:ff9b:1::/96 in prefix directive, aborting...; prefixes it accepts: 64:ff9b::/96, "
        "fd00:10:64:ff9b::/96")
    assert asked[0]["argv"] == ["tayga", "--config", "/etc/lazyjack/tayga.conf", "--mktun"]
    host = asked[0]["host"]
    assert host["NetworkMode"] == "none" and host["CapAdd"] == ["NET_ADMIN"] and "Privileged" not in host
    assert asked[0]["labels"] == {"lazyjack": "probe"}
    assert engine_state.containers == {}  # every throwaway container removed

    wkp = _with(ctx, prefix="64:ff9b::/96")
    accepted = SupportContainer(ref, nat64_container(wkp), "/tmp/lazyjack/nat64")
    assert accepted.plan(wkp).needed
    assert "ipv6-addr fd00:10::200" in accepted.server.conf_text.splitlines()
