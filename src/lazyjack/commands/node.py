"""prepare, up, down and clean: the ordered steps for this node's roles, with pre-flight checks."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

from lazyjack.addresses import IPV4ONLY_NAME, IPAddr, discovered_prefixes
from lazyjack.config.model import Config
from lazyjack.config.plan import NodePlan, Plan, kubeadm_api_for, kubernetes_minor, served_networks
from lazyjack.errors import CommandFailed, HostError, PreflightError, describe_failure
from lazyjack.host import Host
from lazyjack.host.netns import support_netns
from lazyjack.render.boot import SYSCTL_PATH, UNIT_PATH, WANTS_LINK, render_restore_unit, render_sysctl_conf
from lazyjack.render.cni import CONFLIST_NAME, render_conflist
from lazyjack.render.dns64 import dns64_conf
from lazyjack.render.kubeadm import render_kubeadm_config
from lazyjack.render.kubelet import DROPIN_PATH, render_kubelet_dropin
from lazyjack.render.nat64 import tayga_conf
from lazyjack.steps.base import Context, Step
from lazyjack.steps.engine import RunResult, apply_steps, remove_steps, revert_entries
from lazyjack.steps.files import KubeadmConfigFile, ManagedFile, MarkedEdit, Symlink
from lazyjack.steps.journal import Journal
from lazyjack.steps.kube import (
    PKI_DIR,
    KubeadmInit,
    KubeadmJoin,
    KubeletRestart,
    UserKubeconfig,
    kubeadm_conf_path,
)
from lazyjack.steps.network import DeleteLink, LinkMtu, LinkUp, ManagementAddress, Routes, Sysctl
from lazyjack.steps.support import (
    SUPPORT_LINK,
    Masquerade,
    NativeServer,
    PrefixForward,
    SupportLink,
    SupportNamespace,
)

CNI_DIR = "/etc/cni/net.d"
CNI_BRIDGE = "br0"
STATE_DIR = "/var/lib/lazyjack"
LOCK_PATH = f"{STATE_DIR}/lock"


@dataclass
class Preflight:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The site's DNS64 server cannot be asked before prepare has set up the way to it: ask after.
    ask_dns64_after: bool = False


def forwarding_sysctls(node: NodePlan) -> list[Sysctl]:
    versions = {a.version for a in node.management}
    steps = []
    if 4 in versions:
        steps.append(Sysctl("net.ipv4.ip_forward", "1"))
    if 6 in versions:
        steps.append(Sysctl("net.ipv6.conf.all.forwarding", "1"))
    return steps


def prepare_steps(ctx: Context) -> list[Step]:
    """Steps of `prepare`, in order."""
    config, plan, node = ctx.config, ctx.plan, ctx.node
    steps: list[Step] = [LinkUp(node.interface)]
    steps += [ManagementAddress(node.interface, a) for a in node.management]
    steps.append(LinkMtu(node.interface, config.mtu))
    steps += forwarding_sysctls(node)
    if (node.is_dns64 or node.is_nat64) and config.mode == "ipv6":
        steps += dns64_nat64_steps(ctx)
    away = [r for r in node.routes if r.phase == "prepare" and r.device is not None]
    if not node.is_cluster_node and away:
        # A node that only runs DNS64 or NAT64 reaches the other one's node through the management network.
        steps.append(Routes("the other DNS64/NAT64 node", away))
    if node.is_cluster_node:
        entries = [(n.name, _primary_ip(config, n)) for n in plan.cluster_nodes()]
        nameserver = node.nameserver
        assert nameserver is not None
        hosts = {"hosts": [[name, str(ip)] for name, ip in entries]}
        steps.append(MarkedEdit("/etc/hosts", hosts, "/etc/hosts entries"))
        steps.append(MarkedEdit("/etc/resolv.conf", {"nameserver": str(nameserver)}, "/etc/resolv.conf nameserver"))
        dropin = render_kubelet_dropin(dns_ip=plan.dns_service_ip).encode()
        steps.append(ManagedFile(DROPIN_PATH, dropin, label="kubelet drop-in"))
        assert ctx.kubeadm_api is not None
        kubeadm = render_kubeadm_config(
            config, plan, node_name=node.name, api=ctx.kubeadm_api, minor=ctx.kubernetes_minor
        ).encode()
        # It holds the bootstrap token.
        steps.append(KubeadmConfigFile(kubeadm_conf_path(ctx), kubeadm, mode=0o600, label="kubeadm config",
                                       secret=True))
        if away:
            steps.append(Routes("the DNS64 prefix and support network", away))
    return steps + boot_steps(ctx, steps)


def boot_steps(ctx: Context, steps: list[Step]) -> list[Step]:
    """What brings the node back after a reboot: its sysctls in sysctl.d, and the restore unit, enabled.

    The unit is enabled the way `systemctl enable` does it (the link in multi-user.target.wants), so
    that it works whether or not systemd runs now; its ExecStart is this lazyjack's `restore` for this
    node, with the config's absolute path (and --root, when prepare ran with one).
    """
    found: list[Step] = []
    sysctls = [(s.name, s.value) for s in steps if isinstance(s, Sysctl)]
    if sysctls:
        found.append(ManagedFile(SYSCTL_PATH, render_sysctl_conf(sysctls).encode(), label="sysctls at boot"))
    source = ctx.config.source
    if source is None:  # a config made in memory: no file for the unit to name
        return found
    argv = [sys.executable, "-m", "lazyjack", "--config", str(Path(source.path).resolve()), "--host", ctx.node.name]
    if str(ctx.root) != "/":
        argv += ["--root", str(ctx.root)]
    argv.append("restore")
    runtime = ctx.config.general.dns64_nat64_runtime
    # The support containers (on a DNS64 or NAT64 node) need their engine up first.
    serves = ctx.node.is_nat64 or ctx.node.is_dns64
    after = [f"{runtime}.service"] if serves and ctx.config.mode == "ipv6" and runtime == "docker" else []
    unit = render_restore_unit(argv, after=after).encode()
    found += [ManagedFile(UNIT_PATH, unit, label="restore unit"),
              Symlink(WANTS_LINK, UNIT_PATH, label="restore unit enabled")]
    return found


def dns64_nat64_steps(ctx: Context) -> list[Step]:
    """A node with opmode dns64 and/or nat64: the support network, its server(s), routes to them, forwarding."""
    node, egress = ctx.node, ctx.egress
    support = egress.support
    assert support is not None
    runtime = ctx.config.general.dns64_nat64_runtime
    # Only the cluster may use the servers (served_networks); everyone else is refused or dropped.
    served = served_networks(ctx.config)
    # The NAT64 node masquerades the pool out of its uplink and lets the cluster's traffic to the DNS64 prefix
    # through FORWARD; a node with DNS64 only lets the cluster's queries to its server through, and the
    # server's own to the DNS64 prefix (through NAT64, here or elsewhere) and their answers.
    masquerade: list[Step] = []
    if node.is_nat64:
        masquerade.append(Masquerade(support.v4cidr, support.cidr, ctx.host.net.default_route_dev(socket.AF_INET),
                                     served))
    forward = [PrefixForward(egress.prefix, served) if node.is_nat64
               else PrefixForward(support.cidr, (*served, egress.prefix))]
    ipv4 = [Sysctl("net.ipv4.ip_forward", "1")] if node.is_nat64 else []
    local = [r for r in node.routes if r.phase == "prepare" and r.device is None]
    if runtime in ("docker", "podman"):
        # Only this node, and only with an engine, talks to the Docker Engine API (http.client, json).
        from lazyjack.host.containers import socket_for
        from lazyjack.steps.containers import container_steps

        # The engine's bridge holds the support network's gateways; the kernel picks it for the routes.
        # Engines masquerade their networks only with their own iptables rules on (often off on Kubernetes
        # nodes), and docker's FORWARD chain drops new IPv6 connections into the bridge.
        routes = [Routes("the DNS64 prefix and NAT64 pool", local)] if local else []
        return [*ipv4, *container_steps(ctx, runtime, socket_for(runtime)), *forward, *routes, *masquerade]
    netns = support_netns(ctx.root)
    routes = [Routes("the DNS64 prefix and NAT64 pool", [r._replace(device=SUPPORT_LINK) for r in local])] if local else []
    nat64_dir, dns64_dir = (f"{ctx.work_area.rstrip('/')}/{server}" for server in ("nat64", "dns64"))

    def state_dir(directory: str) -> str:
        return str(ctx.real_path(directory) / "data")

    servers: list[Step] = []
    if node.is_nat64:
        servers.append(NativeServer(netns, "tayga", tayga_conf(egress, data_dir=state_dir(nat64_dir)), nat64_dir))
    if node.is_dns64 and egress.dns64 is not None:
        conf = dns64_conf(egress, state_dir=state_dir(dns64_dir), clients=served)
        servers.append(NativeServer(netns, egress.dns64.program, conf, dns64_dir))
    # An IPv6 FORWARD policy of DROP (docker on the host sets it) would stop the cluster's new connections
    # to NAT64 addresses: the DNS64 prefix lies outside the support network. Anyone outside the cluster is dropped.
    return [*ipv4, SupportNamespace(netns), SupportLink(netns), *servers, *routes, *masquerade, *forward]


def _primary_ip(config: Config, node: NodePlan) -> IPAddr:
    family = config.service[0].version
    address = node.management_of(family) or node.management[0]
    return address.ip


def up_steps(ctx: Context) -> list[Step]:
    """Steps of `up`, in order."""
    config, node, skip = ctx.config, ctx.node, ctx.skip_phases
    steps: list[Step] = []
    if not node.is_cluster_node:
        return steps
    if "cni" not in skip:
        ranges = list(zip(node.pod_subnets, node.pod_gateways, strict=True))
        conflist = render_conflist(plugin=config.plugin, ranges=ranges, mtu=config.mtu)
        steps.append(ManagedFile(f"{CNI_DIR}/{CONFLIST_NAME}", conflist.encode(), label="CNI config"))
    if "routes" not in skip:
        steps.append(Routes("other nodes' pod subnets", [r for r in node.routes if r.phase == "up"]))
    if "kubelet" not in skip:
        steps.append(KubeletRestart())
    if node.is_master:
        certs = f"{ctx.work_area.rstrip('/')}/certs"
        for name, mode in (("ca.crt", 0o644), ("ca.key", 0o600)):
            data = ctx.host.files.read_bytes(f"{certs}/{name}")
            if data is not None:
                steps.append(ManagedFile(f"{PKI_DIR}/{name}", data, mode=mode, label=f"CA file {name}",
                                         secret=name == "ca.key"))
    if "kubeadm" not in skip:
        steps.append(KubeadmInit() if node.is_master else KubeadmJoin())
        if node.is_master and ctx.invoking_user:
            steps.append(UserKubeconfig(ctx.invoking_user))
    return steps


def down_extra_steps(ctx: Context) -> list[Step]:
    """Things down removes that no step of up created: the CNI bridge."""
    if ctx.config.plugin == "bridge" and ctx.node.is_cluster_node:
        return [DeleteLink(CNI_BRIDGE)]
    return []


# --- pre-flight ------------------------------------------------------------------------


def preflight(ctx: Context, command: str, steps: list[Step]) -> Preflight:
    """Checks before any change: errors stop the command, warnings name the fix."""
    result = Preflight()
    net, node = ctx.host.net, ctx.node
    if not net.link_exists(node.interface):
        names = ", ".join(n for n in net.link_names() if n != "lo")
        result.errors.append(
            f"interface {node.interface!r} (topology.{node.name}.interface) does not exist on this host; "
            f"it has: {names or 'no interfaces'}"
        )
        return result
    if command == "prepare":
        from lazyjack.commands.init import check_work_area

        try:
            check_work_area(ctx.host.files, ctx.work_area.rstrip("/"))
        except PreflightError as exc:
            result.errors.append(str(exc))
        if _swap_on(ctx):
            result.warnings.append("swap is on; kubelet refuses to start with swap: run `swapoff -a` and remove it from /etc/fstab")
        if node.is_cluster_node:
            for program in ("kubeadm", "kubelet"):
                if ctx.host.proc.which(program) is None:
                    result.warnings.append(f"{program} is not installed; install it before `lazyjack up`")
        if _forward_policy_drop(ctx):
            result.warnings.append(
                "the iptables FORWARD policy is DROP (docker sets it), which breaks pod-to-pod traffic; "
                "run `iptables -P FORWARD ACCEPT`"
            )
        for version in sorted({a.version for a in node.management}):
            if net.default_route_dev(socket.AF_INET if version == 4 else socket.AF_INET6) == node.interface:
                result.warnings.append(
                    f"{node.interface} holds the default IPv{version} route; lazyjack changes its addresses and MTU, "
                    "so use a management interface you do not reach this host through"
                )
        if uses_external_dns64(ctx):
            found = check_external_dns64(ctx)
            if found is None:
                result.ask_dns64_after = True
            else:
                result.warnings += found
    if command == "up" and node.is_cluster_node:
        programs = [p for p in ("kubelet", "kubeadm") if p not in ctx.skip_phases]
        for program in programs:
            needed = "systemctl" if program == "kubelet" else "kubeadm"
            if ctx.host.proc.which(needed) is None:
                result.errors.append(f"{needed} is not installed (needed for the {program} phase); install it, "
                                     f"or skip the phase with --skip-phases {program}")
        if not ctx.host.files.exists(kubeadm_conf_path(ctx)) and "kubeadm" not in ctx.skip_phases:
            result.errors.append(f"{ctx.real_path(kubeadm_conf_path(ctx))} does not exist; run `lazyjack prepare` first")
        if node.is_master and not ctx.config.general.insecure and "kubeadm" not in ctx.skip_phases:
            result.errors += _ca_problems(ctx)
    for step in steps:
        try:
            step.plan(ctx)
        except Exception as exc:
            result.errors.append(f"{step.title}: {describe_failure(exc)}")
    return result


def _ca_problems(ctx: Context) -> list[str]:
    """A secure cluster's master brings kubeadm the CA `init` made: the one whose hash the minions join with.

    Without it kubeadm makes a CA of its own, and the minions fail to join much later (hash mismatch).
    """
    from lazyjack.commands.init import ca_cert_hash, ca_problem

    files, certs = ctx.host.files, f"{ctx.work_area.rstrip('/')}/certs"
    key, cert = files.read_bytes(f"{certs}/ca.key"), files.read_bytes(f"{certs}/ca.crt")
    where = ctx.real_path(certs)
    if key is None and cert is None:
        return [f"{where}/ca.crt and ca.key are missing: in secure mode kubeadm must use the CA whose hash the "
                "minions join with; run `lazyjack init` on the master (with the config the minions have)"]
    problem = ca_problem(key, cert)
    if problem is not None:
        return [f"the CA in {where} cannot be used: {problem}; put the files `lazyjack init` made back, or run "
                "`lazyjack init --force` and hand the updated config to the minions"]
    assert cert is not None
    digest, wanted = ca_cert_hash(cert), (ctx.config.ca_cert_hash or "").removeprefix("sha256:").lower()
    if digest != wanted:
        return [f"{where}/ca.crt does not match general.token-cert-hash (its hash is {digest}): the minions would "
                "not trust this master; run `lazyjack init` on the master and hand its config to the minions"]
    return []


def uses_external_dns64(ctx: Context) -> bool:
    """Whether this node's nameserver is the site's own DNS64 server."""
    egress = ctx.config.egress
    return egress is not None and egress.site_dns64 is not None and ctx.node.is_cluster_node


def check_external_dns64(ctx: Context) -> list[str] | None:
    """RFC 7050 on dns64.external-server: warnings when it synthesises no AAAA for ipv4only.arpa, or in
    another prefix than dns64.cidr; None when this node has no way to it yet (prepare makes it)."""
    site, prefix = ctx.egress.site_dns64, ctx.egress.prefix
    assert site is not None
    server, net, node = site.server, ctx.host.net, ctx.node
    ready = all(a in net.addresses(node.interface) for a in node.management if a.version == 6)
    if site.via is not None:
        ready = ready and net.route(ip_network(server)) is not None
    what = f"dns64.external-server {server}"
    try:
        answer = ctx.host.dns.aaaa(server, IPV4ONLY_NAME)
    except TimeoutError as exc:
        if not ready:
            return None
        return [f"{what} gave no answer for {IPV4ONLY_NAME} AAAA ({exc}); the nodes use it as their first nameserver"]
    except OSError as exc:
        if not ready:
            return None
        return [f"cannot ask {what} for {IPV4ONLY_NAME} AAAA: {exc.strerror or exc}"]
    if answer.rcode != 0 or not answer.addresses:
        return [f"{what} synthesised no AAAA for {IPV4ONLY_NAME} (it answered {answer.status} with "
                f"{len(answer.addresses)} AAAA; RFC 7050): it does not seem to do DNS64, so IPv4-only names "
                "would have no IPv6 address for the cluster"]
    found = discovered_prefixes(answer.addresses)
    if not found:
        shown = ", ".join(map(str, answer.addresses))
        return [f"{what} answered {IPV4ONLY_NAME} AAAA with {shown}, in which neither 192.0.0.170 nor "
                "192.0.0.171 is embedded (RFC 6052): its prefix is unknown"]
    if prefix not in found:
        prefixes = " and ".join(map(str, found))
        return [f"{what} synthesises in {prefixes}, not in dns64.cidr {prefix}: the nodes route only "
                f"{prefix} to the NAT64 gateway; set dns64.cidr: {found[0]}"]
    ctx.report(f"  · {what} synthesises in {prefix} ({IPV4ONLY_NAME}, RFC 7050)")
    return []


def _swap_on(ctx: Context) -> bool:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()
    except OSError:
        return False
    return len(lines) > 1


def _forward_policy_drop(ctx: Context) -> bool:
    if ctx.host.proc.which("iptables") is None:
        return False
    try:
        out = ctx.host.proc.run(["iptables", "-S", "FORWARD"], timeout=10).stdout
    except CommandFailed:
        return False
    return "-P FORWARD DROP" in out.splitlines()


# --- kubeadm API version --------------------------------------------------------------


def choose_kubeadm_api(ctx_host: Host, config: Config, report: Callable[[str], None]) -> tuple[str, int | None]:
    """From `kubeadm version -o short` when kubeadm is here, else from kubernetes-version; says which."""
    wanted = config.general.kubernetes_version
    if ctx_host.proc.which("kubeadm") is not None:
        installed = ctx_host.proc.run(["kubeadm", "version", "-o", "short"], timeout=30).stdout.strip()
        api = kubeadm_api_for(installed)
        if api is None:
            raise HostError(f"kubeadm reports version {installed!r}; lazyjack supports Kubernetes v1.11 and newer")
        if wanted and wanted != "latest" and kubernetes_minor(wanted) != kubernetes_minor(installed):
            raise PreflightError(
                f"general.kubernetes-version is {wanted} but kubeadm is {installed}; their major.minor must match "
                "(set it to 'latest' or to the kubeadm version)"
            )
        report(f"kubeadm config API {api} (from kubeadm {installed})")
        return api, kubernetes_minor(installed)
    if wanted:
        api = kubeadm_api_for(wanted)
        assert api is not None  # validated
        report(f"kubeadm config API {api} (from general.kubernetes-version {wanted}; kubeadm is not installed)")
        return api, kubernetes_minor(wanted)
    raise PreflightError(
        "cannot choose a kubeadm config API version: kubeadm is not installed and general.kubernetes-version "
        "is not set; install kubeadm or set kubernetes-version"
    )


# --- running a command ---------------------------------------------------------------


@contextmanager
def node_lock(host: Host) -> Iterator[None]:
    """One lazyjack at a time on a node: a second one refuses, naming the holder.

    The lock file exists only while a command runs; the state directory goes too once
    it is empty (after clean), so that a cleaned node keeps nothing of lazyjack.
    """
    from lazyjack.host.lock import Locked, pid_lock

    host.files.makedirs(STATE_DIR, mode=0o700)
    path = host.files.resolve(LOCK_PATH)
    try:
        with pid_lock(path):
            yield
    except Locked as exc:
        raise HostError(
            f"another lazyjack (pid {exc.holder}) is acting on this node (lock {path}); wait for it to finish"
        ) from None
    finally:
        state = host.files.resolve(STATE_DIR)
        with contextlib.suppress(OSError):
            if not any(state.iterdir()):
                state.rmdir()


@dataclass
class NodeRun:
    """Options of an acting command."""

    command: str
    dry_run: bool = False
    rollback: bool = True
    skip_phases: frozenset[str] = frozenset()


def node_context(host: Host, config: Config, plan: Plan, node_name: str, *, root: Path,
                 report: Callable[[str], None], skip_phases: frozenset[str] = frozenset()) -> Context:
    """The context the steps of a node command get."""
    invoking = os.environ.get("SUDO_USER") if os.geteuid() == 0 else None
    return Context(host=host, config=config, plan=plan, node=plan.nodes[node_name], root=root, report=report,
                   skip_phases=skip_phases, invoking_user=invoking if invoking != "root" else None)


def run_node_command(host: Host, config: Config, plan: Plan, node_name: str, opts: NodeRun, *,
                     root: Path, report: Callable[[str], None]) -> RunResult:
    """Run prepare, up, down or clean for `node_name` on `host`."""
    ctx = node_context(host, config, plan, node_name, root=root, report=report, skip_phases=opts.skip_phases)
    node = ctx.node
    roles = " ".join(node.roles)
    report(f"lazyjack {opts.command} on {node.name} ({roles}){' (dry run: nothing changes)' if opts.dry_run else ''}")
    if opts.command == "prepare" and node.is_cluster_node:
        ctx.kubeadm_api, ctx.kubernetes_minor = choose_kubeadm_api(host, config, report)
    with maybe_lock(host, opts.dry_run):
        journal = Journal.load(host.files, host=node.name)
        if opts.command in ("prepare", "up"):
            steps = prepare_steps(ctx) if opts.command == "prepare" else up_steps(ctx)
            check = preflight(ctx, opts.command, steps)
            for warning in check.warnings:
                report(f"  ! warning: {warning}")
            if check.errors:
                raise PreflightError(
                    f"{opts.command} stopped before changing anything:\n" + "\n".join(f"  - {e}" for e in check.errors)
                )
            result = apply_steps(ctx, steps, command=opts.command, journal=journal, dry_run=opts.dry_run,
                                 rollback=opts.rollback)
            if check.ask_dns64_after:
                _ask_dns64_after(ctx, dry_run=opts.dry_run, failed=bool(result.errors))
        elif opts.command == "down":
            result = _down(ctx, journal, opts)
        else:
            result = _clean(ctx, journal, opts)
    if not result.changed and not result.errors:
        report(f"nothing to change: {node.name} is already {_state(opts.command)}")
    if result.errors:
        raise HostError(f"{opts.command} finished with {len(result.errors)} error(s):\n"
                        + "\n".join(f"  - {e}" for e in result.errors))
    return result


def _ask_dns64_after(ctx: Context, *, dry_run: bool, failed: bool) -> None:
    """The RFC 7050 check pre-flight could not make: now that prepare has set up the way to the server."""
    site = ctx.egress.site_dns64
    assert site is not None
    if dry_run or failed:
        ctx.report(f"  · dns64.external-server {site.server} is asked (RFC 7050) once prepare has set up "
                   "the way to it")
        return
    warnings = check_external_dns64(ctx)
    if warnings is None:
        warnings = [f"dns64.external-server {site.server} is still unreachable after prepare"]
    for warning in warnings:
        ctx.report(f"  ! warning: {warning}")


def _state(command: str) -> str:
    return {"prepare": "prepared", "up": "up", "down": "down", "clean": "clean"}[command]


@contextmanager
def maybe_lock(host: Host, dry_run: bool) -> Iterator[None]:
    """The node lock while a command acts; none for a dry run, which changes nothing (not even a lock file)."""
    if dry_run:
        yield
        return
    with node_lock(host):
        yield


def _down(ctx: Context, journal: Journal, opts: NodeRun) -> RunResult:
    entries = journal.of("up")
    if "kubeadm" in ctx.skip_phases:
        entries = [e for e in entries if e.kind not in ("kubeadm-init", "kubeadm-join")]
    if entries:
        result = revert_entries(ctx, entries, journal=journal, dry_run=opts.dry_run)
    elif journal.entries or not lazyjack_traces(ctx):
        # This lazyjack journals what up did: nothing recorded means nothing of up's to undo.
        result = RunResult()
        ctx.report("  · nothing of `up` is recorded in the journal")
    else:
        ctx.report("  (no journal: a node brought up by lazyjack 1.x; undoing from the configuration)")
        result = remove_steps(ctx, up_steps(ctx), dry_run=opts.dry_run)
    extra = apply_steps(ctx, down_extra_steps(ctx), command="down", journal=journal, dry_run=opts.dry_run)
    # The CNI bridge is not ours to restore: forget it from the journal right away (not in a dry run,
    # which changes nothing, the journal included).
    for entry in [] if opts.dry_run else journal.of("down"):
        journal.drop(entry)
    result.changed += extra.changed
    result.unchanged += extra.unchanged
    return result


def lazyjack_traces(ctx: Context) -> list[str]:
    """What shows that lazyjack (1.x or this one) prepared this node, without a journal."""
    from lazyjack.render.etcfiles import has_markers

    files, traces = ctx.host.files, []
    for path in ("/etc/hosts", "/etc/resolv.conf"):
        data = files.read_bytes(path)
        if data is not None and has_markers(data.decode("utf-8", "surrogateescape")):
            traces.append(f"markers in {path}")
    for path in (DROPIN_PATH, f"{CNI_DIR}/{CONFLIST_NAME}", kubeadm_conf_path(ctx)):
        if files.exists(path):
            traces.append(path)
    if ctx.host.net.link_exists(SUPPORT_LINK):
        traces.append(SUPPORT_LINK)
    return traces


def _clean(ctx: Context, journal: Journal, opts: NodeRun) -> RunResult:
    leftover_up = journal.of("up")
    if leftover_up:
        ctx.report("  (`up` was not undone: undoing it first, as `lazyjack down` would)")
    entries = journal.of("prepare")
    result = RunResult()
    if not leftover_up and not entries and not lazyjack_traces(ctx):
        # No journal and nothing of lazyjack's: a node cleaned before, or never prepared.
        # Undoing "from the configuration" here would take away what the admin set up.
        ctx.report("  · no journal and no trace of lazyjack (markers, drop-in, CNI config, support network)")
        return result
    if leftover_up or not entries:
        # Without a journal (a node prepared by 1.x) up may have run too: undo it from the configuration.
        result = _down(ctx, journal, opts)
    if entries:
        more = revert_entries(ctx, entries, journal=journal, dry_run=opts.dry_run)
    else:
        ctx.report("  (no journal of `prepare`: undoing from the configuration and the 1.x markers)")
        if ctx.node.is_cluster_node and ctx.kubeadm_api is None:
            ctx.kubeadm_api = "v1beta4"  # only the file's path matters when removing it
        more = remove_steps(ctx, prepare_steps(ctx), dry_run=opts.dry_run)
    result.changed += more.changed
    result.unchanged += more.unchanged
    result.errors += more.errors
    return result
