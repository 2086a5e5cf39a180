"""DNS64/NAT64 on the support network, native runtime: a network namespace with the DNS64 server (named or
unbound) and/or tayga in it, by the node's opmodes.

The node keeps the support network's gateways on `ljsup0`; its veth peer `eth0` sits in a
dedicated namespace holding the DNS64 address, the NAT64 addresses and tayga's tun.
Traffic of the IPv4 pool leaves the node masqueraded, so that replies find their way back.
Before anything changes, pre-flight asks the tayga that will run whether it takes the configuration.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, IPv6Network, ip_interface
from pathlib import Path

from lazyjack.addresses import WELL_KNOWN_PREFIX, IPIface, IPNet
from lazyjack.config.egress import DNS64_PROGRAMS
from lazyjack.config.plan import support_gateway
from lazyjack.errors import CommandFailed, HostError, PreflightError
from lazyjack.render.nat64 import TUN, tayga_conf
from lazyjack.steps.base import Context, Outcome, Record, Status, Step
from lazyjack.steps.records import LinkRecord, NameRecord, NativeServerRecord, RulesRecord
from lazyjack.steps.shapes import Created, Item, ItemDrift, Items, make_parents, remove_created_dirs

SUPPORT_LINK = "ljsup0"
SUPPORT_PEER = "eth0"
RULE_COMMENT = "lazyjack"
#: The Debian package holding each server program.
PACKAGES = {"named": "bind9", "unbound": "unbound", "tayga": "tayga"}
#: The argv of each program after its name, given its configuration file.
ARGV = {"named": ["-g", "-c"], "unbound": ["-d", "-c"], "tayga": ["--nodetach", "--config"]}


def remote_resolver(ctx: Context) -> IPv6Address | None:
    """On a NAT64 node whose DNS64 server runs on another node: that server's address (inside the support network)."""
    dns64 = ctx.egress.dns64
    if not ctx.node.is_nat64 or ctx.node.is_dns64 or dns64 is None:
        return None
    return dns64.ip


def _addresses_in(ctx: Context, netns: str, link: str) -> list[IPIface]:
    """Global addresses of `link` inside `netns` (none if the link is missing)."""
    out = ctx.host.ip_in(netns, "-j", "addr", "show", "dev", link, check=False)
    try:
        links = json.loads(out or "[]")
    except ValueError:
        return []
    found: list[IPIface] = []
    for entry in links:
        for info in entry.get("addr_info", []):
            if info.get("scope") == "global":
                found.append(ip_interface(f"{info['local']}/{info['prefixlen']}"))
    return found


@dataclass
class SupportNamespace(Created):
    """The network namespace the DNS64 and NAT64 servers live in."""

    kind = "support-netns"
    record_model = NameRecord
    name: str
    there = "{name} exists"
    make = "create network namespace {name}"
    unmake = "delete network namespace {name}"
    absent = "{name} does not exist"

    @property
    def title(self) -> str:
        return f"support namespace {self.name}"

    def identity(self) -> Record:
        return {"name": self.name}

    def exists(self, ctx: Context) -> bool:
        return ctx.host.netns_exists(self.name)

    def create(self, ctx: Context) -> None:
        ctx.host.netns_add(self.name)
        ctx.host.ip_in(self.name, "link", "set", "lo", "up")

    @classmethod
    def delete(cls, ctx: Context, record: Record) -> Outcome:
        if ctx.host.netns_del(record["name"]):
            return Outcome.change(f"deleted network namespace {record['name']}")
        return Outcome.noop(f"{record['name']} does not exist")


@dataclass
class SupportLink(Created):
    """The support network: gateways on the node's `ljsup0`, server addresses on `eth0` in the namespace."""

    kind = "support-link"
    record_model = LinkRecord
    netns: str
    unmake = "delete {link}"
    absent = "{link} does not exist"

    @property
    def title(self) -> str:
        return f"support network on {SUPPORT_LINK}"

    def identity(self) -> Record:
        return {"link": SUPPORT_LINK}

    def exists(self, ctx: Context) -> bool:
        return ctx.host.net.link_exists(SUPPORT_LINK)

    def _wanted(self, ctx: Context) -> tuple[list[IPIface], list[IPIface]]:
        """(the node's gateways on ljsup0, the servers' addresses on eth0 in the namespace), by this node's roles."""
        egress = ctx.egress
        assert egress.support is not None
        v6, v4 = egress.support.cidr, egress.support.v4cidr
        host: list[IPIface] = [IPv6Interface((support_gateway(v6), v6.prefixlen))]
        inside: list[IPIface] = []
        if ctx.node.is_dns64 and egress.dns64 is not None:
            inside.append(IPv6Interface((egress.dns64.ip, v6.prefixlen)))
        if ctx.node.is_nat64 and egress.nat64 is not None:
            host.append(IPv4Interface((support_gateway(v4), v4.prefixlen)))
            inside += [IPv6Interface((egress.nat64.ip, v6.prefixlen)), IPv4Interface((egress.nat64.v4_ip, v4.prefixlen))]
        return host, inside

    def plan(self, ctx: Context) -> Outcome:
        net = ctx.host.net
        host, inside = self._wanted(ctx)
        if not net.link_exists(SUPPORT_LINK):
            return Outcome.change(f"create {SUPPORT_LINK} with {', '.join(map(str, host))}; "
                                  f"{SUPPORT_PEER} in {self.netns} with {', '.join(map(str, inside))}")
        present = _addresses_in(ctx, self.netns, SUPPORT_PEER) if ctx.host.netns_exists(self.netns) else []
        missing = [str(a) for a in host if a not in net.addresses(SUPPORT_LINK)]
        missing += [str(a) for a in inside if a not in present]
        extra = [a for a in present if a not in inside]  # this node's roles changed since
        resolver = remote_resolver(ctx)
        if resolver is not None and not missing and not ctx.host.ip_in(self.netns, "-6", "route", "show",
                                                                          str(resolver), check=False).strip():
            missing.append(f"the route to the DNS64 server {resolver}")
        if not missing and not extra:
            return Outcome.noop(f"{SUPPORT_LINK} and {SUPPORT_PEER} have their addresses")
        why = [f"missing {', '.join(missing)}"] if missing else []
        why += [f"{', '.join(map(str, extra))} no longer wanted"] if extra else []
        return Outcome.change(f"re-create {SUPPORT_LINK}: {'; '.join(why)}")

    def _extras(self, ctx: Context) -> tuple[list[str], str | None]:
        """(addresses inside made deprecated, the route to a DNS64 server on another node), by this node's roles."""
        nat64, resolver = ctx.egress.nat64, remote_resolver(ctx)
        deprecated = [str(nat64.ip)] if nat64 is not None and ctx.node.is_nat64 else []
        return deprecated, None if resolver is None else str(resolver)

    def create(self, ctx: Context) -> None:
        deprecated, resolver = self._extras(ctx)
        self._make(ctx, self.netns, *self._wanted(ctx), deprecated=deprecated, resolver=resolver)

    def apply(self, ctx: Context) -> Record:
        # The addresses too: restore re-creates the link from the record, as it was made.
        host, inside = self._wanted(ctx)
        deprecated, resolver = self._extras(ctx)
        return {**super().apply(ctx), "netns": self.netns, "host": [str(a) for a in host],
                "inside": [str(a) for a in inside], "deprecated": deprecated, "resolver": resolver}

    @staticmethod
    def _make(ctx: Context, netns: str, host: list[IPIface], inside: list[IPIface], *, deprecated: list[str],
              resolver: str | None) -> None:
        net = ctx.host.net
        net.delete_link(SUPPORT_LINK)
        ctx.host.proc.run(
            ["ip", "link", "add", SUPPORT_LINK, "type", "veth", "peer", "name", SUPPORT_PEER, "netns", netns],
            timeout=30,
        )
        try:
            for address in host:
                net.add_address(SUPPORT_LINK, address, nodad=True)
            net.link_up(SUPPORT_LINK)
            # A private link: duplicate address detection would only delay the servers.
            for address in inside:
                flags = ["nodad"] if address.version == 6 else []
                if str(address.ip) in deprecated:
                    # Only the node's next hop into tayga, and with the well-known prefix tayga's own address:
                    # deprecated, so that the DNS64 server here never sends from it (RFC 6724 rule 3).
                    flags += ["preferred_lft", "0"]
                ctx.host.ip_in(netns, "addr", "add", str(address), "dev", SUPPORT_PEER, *flags)
            ctx.host.ip_in(netns, "link", "set", SUPPORT_PEER, "up")
            for gateway in host:
                family = f"-{gateway.version}"
                ctx.host.ip_in(netns, family, "route", "add", "default", "via", str(gateway.ip), "dev", SUPPORT_PEER)
            if resolver is not None:
                # The DNS64 server is on another node, though its address lies in this support network:
                # translated replies to it must leave through the node, not look for it on this link.
                ctx.host.ip_in(netns, "-6", "route", "add", resolver, "via", str(host[0].ip), "dev", SUPPORT_PEER)
            for name in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
                ctx.host.proc.run(["ip", "netns", "exec", netns, "sysctl", "-qw", name], timeout=30)
        except BaseException:
            net.delete_link(SUPPORT_LINK)
            raise

    @staticmethod
    def _addresses(record: Record) -> tuple[list[IPIface], list[IPIface]]:
        return [ip_interface(a) for a in record["host"]], [ip_interface(a) for a in record["inside"]]

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        link, net = record["link"], ctx.host.net
        if not net.link_exists(link):
            return Status.missing(f"{link} is gone")
        if "host" not in record:  # journaled by an earlier lazyjack, without the addresses
            return Status.ok(f"{link} exists")
        host, inside = cls._addresses(record)
        netns = record["netns"]
        if not ctx.host.netns_exists(netns):
            return Status.missing(f"namespace {netns} is gone")
        details = [] if net.is_up(link) else [f"{link} is down"]
        present = _addresses_in(ctx, netns, SUPPORT_PEER)
        details += [f"{a} missing from {link}" for a in host if a not in net.addresses(link)]
        details += [f"{a} missing from {SUPPORT_PEER} in {netns}" for a in inside if a not in present]
        return Status.drifted(*details) if details else Status.ok(f"{link} and {SUPPORT_PEER} have their addresses")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        cls.needs(record, "host", name=record["link"], what="addresses", again="makes it again")
        cls._make(ctx, record["netns"], *cls._addresses(record), deprecated=list(record.get("deprecated", [])),
                  resolver=record.get("resolver"))
        return dict(record)

    @classmethod
    def delete(cls, ctx: Context, record: Record) -> Outcome:
        if ctx.host.net.delete_link(record["link"]):
            return Outcome.change(f"deleted {record['link']} and its peer")
        return Outcome.noop(f"{record['link']} does not exist")


@dataclass
class NativeServer(Step):
    """A server process in the support namespace, kept while it runs with the current configuration."""

    kind = "native-server"
    record_model = NativeServerRecord
    netns: str
    program: str  # "named", "unbound" or "tayga"
    conf: str
    directory: str  # under the work area, on the host path (before --root)

    @property
    def title(self) -> str:
        return f"{'NAT64' if self.program == 'tayga' else 'DNS64'} server ({self.program})"

    @property
    def _others(self) -> tuple[str, ...]:
        """Programs that did this server's job in the same directory before (dns64.server changed)."""
        dns64 = DNS64_PROGRAMS.values()
        return tuple(p for p in dns64 if p != self.program) if self.program in dns64 else ()

    def _paths(self, ctx: Context) -> dict[str, Path]:
        base = ctx.real_path(self.directory)
        return {"dir": base, "conf": base / f"{self.program}.conf", "pid": base / f"{self.program}.pid",
                "log": base / f"{self.program}.log"}

    def _current(self, ctx: Context) -> tuple[int | None, bool]:
        paths = self._paths(ctx)
        pid = ctx.host.daemons.running(paths["pid"], program=self.program)
        same = ctx.host.files.read_text(f"{self.directory}/{self.program}.conf") == self.conf
        return pid, same

    def plan(self, ctx: Context) -> Outcome:
        if ctx.host.proc.which(self.program) is None:
            raise HostError(f"{self.program} is not installed (the native runtime runs it); "
                            f"apt-get install {PACKAGES[self.program]}")
        pid, same = self._current(ctx)
        replaced = [f"stop {other} (dns64.server changed)" for other in self._others
                    if ctx.host.daemons.running(self._paths(ctx)["dir"] / f"{other}.pid", program=other)]
        if pid is not None and same and ctx.host.netns_exists(self.netns) and not replaced:
            return Outcome.noop(f"running (pid {pid}) with the current configuration")
        if self.program == "tayga":
            check_tayga(ctx, ask=native_tayga_probe(ctx), which="the installed tayga",
                        data_dir=str(self._paths(ctx)["dir"] / "data"))
        if pid is not None:
            return Outcome.change(*replaced, f"restart {self.program}: its configuration changed")
        return Outcome.change(*replaced, f"start {self.program} in {self.netns}")

    def apply(self, ctx: Context) -> Record:
        tun_routes: list[str] = []
        if self.program == "tayga":  # the NAT64 pool and the DNS64 prefix, into tayga's tun
            nat64 = ctx.egress.nat64
            assert nat64 is not None
            tun_routes = [str(nat64.v4_cidr), str(ctx.egress.prefix)]
        return self._start(ctx, tun_routes=tun_routes, keep_files=False)

    def _start(self, ctx: Context, *, tun_routes: list[str], keep_files: bool) -> Record:
        """(Re)start the server with this configuration; the record keeps all restore needs to do it again."""
        paths = self._paths(ctx)
        files = ctx.host.files
        ctx.host.daemons.stop(paths["pid"], program=self.program)
        for other in self._others:
            if ctx.host.daemons.stop(paths["dir"] / f"{other}.pid", program=other):
                self._forget_files(ctx, self.directory, other, created_dirs=[])
        created = make_parents(ctx, f"{self.directory}/{self.program}.conf", modes={self.directory: 0o700})
        files.write_atomic(f"{self.directory}/{self.program}.conf", self.conf.encode(), mode=0o644)
        inside = ["ip", "netns", "exec", self.netns]
        (paths["dir"] / "data").mkdir(mode=0o700, exist_ok=True)
        try:
            if self.program == "tayga":
                self._prepare_tun(ctx, inside, paths, tun_routes)
            argv = [*inside, self.program, *ARGV[self.program], str(paths["conf"])]
            pid = ctx.host.daemons.start(argv, pid_file=paths["pid"], log_file=paths["log"])
            if self.program != "tayga" and not ctx.host.daemons.listening(pid, port=53, timeout=10):
                log = paths["log"].read_text(errors="replace")[-3000:] if paths["log"].exists() else ""
                ctx.host.daemons.stop(paths["pid"], program=self.program)
                raise CommandFailed(argv, None, log, reason="did not start listening on port 53 within 10s")
        except BaseException:
            # Started but then failed or interrupted: stop it before its pid file goes.
            ctx.host.daemons.stop(paths["pid"], program=self.program)
            if not keep_files:
                self._forget_files(ctx, self.directory, self.program, created_dirs=created)
            raise
        return {"netns": self.netns, "program": self.program, "directory": self.directory,
                "created_dirs": created, "conf": self.conf, "tun_routes": tun_routes, "summary": self.title}

    def _prepare_tun(self, ctx: Context, inside: list[str], paths: dict[str, Path], routes: list[str]) -> None:
        if not ctx.host.ip_in(self.netns, "link", "show", TUN, check=False):
            ctx.host.proc.run([*inside, "tayga", "--config", str(paths["conf"]), "--mktun"], timeout=30)
        ctx.host.ip_in(self.netns, "link", "set", TUN, "up")
        for destination in routes:  # the NAT64 pool and the DNS64 prefix
            ctx.host.ip_in(self.netns, "route", "replace", destination, "dev", TUN)

    @classmethod
    def check(cls, ctx: Context, record: Record) -> Status:
        program, netns = record["program"], record["netns"]
        if not ctx.host.netns_exists(netns):
            return Status.missing(f"namespace {netns} is gone, and {program} with it")
        pid = ctx.host.daemons.running(ctx.real_path(f"{record['directory']}/{program}.pid"), program=program)
        if pid is None:
            return Status.missing(f"{program} is not running")
        return Status.ok(f"{program} is running (pid {pid})")

    @classmethod
    def mend(cls, ctx: Context, record: Record) -> Record:
        """Start it again with the recorded configuration; its files stay (a rollback only stops it)."""
        cls.needs(record, "conf", name=record["program"], what="configuration", again="starts it again")
        step = cls(record["netns"], record["program"], record["conf"], record["directory"])
        return {**step._start(ctx, tun_routes=list(record.get("tun_routes", [])), keep_files=True), "keep_files": True}

    @staticmethod
    def _forget_files(ctx: Context, directory: str, program: str, *, created_dirs: list[str]) -> list[str]:
        files = ctx.host.files
        removed = []
        for suffix in ("conf", "pid", "log"):
            if files.remove(f"{directory}/{program}.{suffix}"):
                removed.append(f"{program}.{suffix}")
        data = ctx.host.files.resolve(f"{directory}/data")
        if data.is_dir():  # the server's own state (tayga's address map, named's key files)
            shutil.rmtree(data)
        remove_created_dirs(ctx, created_dirs)
        return removed

    @classmethod
    def revert(cls, ctx: Context, record: Record) -> Outcome:
        program, directory = record["program"], record["directory"]
        pid_file = ctx.real_path(f"{directory}/{program}.pid")
        stopped = ctx.host.daemons.stop(pid_file, program=program)
        if record.get("keep_files"):  # a restore's start, rolled back: the files were there before it
            return Outcome.change(f"stopped {program}") if stopped else Outcome.noop(f"{program} is not running")
        cls._forget_files(ctx, directory, program, created_dirs=record.get("created_dirs", []))
        if stopped:
            return Outcome.change(f"stopped {program}; removed its files")
        return Outcome.noop(f"{program} is not running")

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"stop {record['program']}")

    def remove(self, ctx: Context) -> Outcome:
        return self.revert(ctx, {"program": self.program, "directory": self.directory, "created_dirs": [self.directory]})

    def plan_remove(self, ctx: Context) -> Outcome:
        pid, _ = self._current(ctx)
        return Outcome.change(f"stop {self.program}") if pid else Outcome.noop(f"{self.program} is not running")


# --- what the DNS64 server answers, and what the installed tayga accepts ---------------------------


#: Prefixes pre-flight asks tayga about when it refuses the configured one, to say which would work.
TAYGA_CANDIDATES = (WELL_KNOWN_PREFIX, IPv6Network("64:ff9b:1::/96"), IPv6Network("fd00:10:64:ff9b::/96"))
#: Asks a tayga whether it accepts a configuration: (accepted, what it said).
TaygaProbe = Callable[[str], tuple[bool, str]]


def native_tayga_probe(ctx: Context) -> TaygaProbe:
    """The installed tayga, in a network namespace of its own that dies with it (and with the tun it makes)."""

    def ask(conf: str) -> tuple[bool, str]:
        argv = ["unshare", "--net", "tayga", "--config", "/dev/stdin", "--mktun"]
        result = ctx.host.proc.run(argv, timeout=30, check=False, input=conf.encode())
        return result.returncode == 0, (result.stderr + result.stdout).strip()

    return ask


def check_tayga(ctx: Context, *, ask: TaygaProbe, which: str, data_dir: str) -> None:
    """Pre-flight on the NAT64 node: refuse, before anything changes, the configuration (with `data_dir`) if
    `which` tayga refuses it, naming the prefixes it accepts instead."""
    egress = ctx.egress
    accepted, said = ask(tayga_conf(egress, data_dir=data_dir))
    if accepted:
        return
    works = [str(p) for p in TAYGA_CANDIDATES
             if p != egress.prefix and ask(tayga_conf(egress, data_dir=data_dir, prefix=p))[0]]
    hint = (f"prefixes it accepts: {', '.join(works)}" if works
            else "it accepts none of " + ", ".join(map(str, TAYGA_CANDIDATES)) + " either")
    raise PreflightError(
        f"{which} refuses the NAT64 configuration for dns64.cidr {egress.prefix}: {said or 'no reason given'}; "
        f"{hint} (set dns64.cidr to one of them, install a tayga that accepts it, or use the site's NAT64 "
        "with nat64.external-gateway)"
    )


# --- iptables ----------------------------------------------------------------------------------


class FirewallRules(Items):
    """iptables/ip6tables rules tagged `lazyjack`, each [program, -t, table, CHAIN, match...].

    FORWARD rules that accept go to the top of the chain (a DROP policy or an engine's chains,
    docker's, must not come first); FORWARD rules that drop go to its end, after every accepting
    rule of ours, so that the order holds whichever of them a later run adds.
    """

    record_key, noun = "rules", "rule"
    record_model = RulesRecord

    def rules(self) -> list[list[str]]:
        raise NotImplementedError

    @staticmethod
    def _with(rule: list[str], action: str) -> list[str]:
        # [program, -t, table, CHAIN, spec...] -> [program, -w, 5, -t, table, action, CHAIN, spec...]
        return [rule[0], "-w", "5", rule[1], rule[2], action, *rule[3:]]

    @staticmethod
    def _insert(rule: list[str]) -> list[str]:
        first = rule[3] == "FORWARD" and rule[-2:] != ["-j", "DROP"]
        return FirewallRules._with(rule, "-I" if first else "-A")

    @classmethod
    def _present(cls, ctx: Context, rule: list[str]) -> bool:
        return ctx.host.proc.run(cls._with(rule, "-C"), timeout=30, check=False).returncode == 0

    @classmethod
    def drifts(cls, ctx: Context, items: list[Item]) -> list[ItemDrift]:
        return [ItemDrift(rule, f"rule missing: {rule[0]} -t {rule[2]} -A {' '.join(rule[3:])}")
                for rule in items if not cls._present(ctx, rule)]

    def missing(self, ctx: Context) -> list[Item]:
        for program in sorted({rule[0] for rule in self.rules()}):
            if ctx.host.proc.which(program) is None:
                raise HostError(f"{program} is not installed; {self.title} needs it (apt-get install iptables)")
        return [r for r in self.rules() if not self._present(ctx, r)]

    def present(self, ctx: Context) -> list[Item]:
        return [r for r in self.rules() if self._present(ctx, r)]

    @classmethod
    def add(cls, ctx: Context, item: Item) -> None:
        ctx.host.proc.run(cls._insert(item), timeout=30)

    @classmethod
    def delete(cls, ctx: Context, item: Item) -> bool:
        return ctx.host.proc.run(cls._with(item, "-D"), timeout=30, check=False).returncode == 0

    def plan(self, ctx: Context) -> Outcome:
        missing = self.missing(ctx)
        if not missing:
            return Outcome.noop("the rules are in place")
        return Outcome.change(*(" ".join(self._insert(r)) for r in missing))

    @classmethod
    def describe_revert(cls, record: Record) -> Outcome:
        return Outcome.change(f"remove {len(record['rules'])} firewall rule(s)")


def _cluster_v6(clients: Sequence[IPNet]) -> list[IPNet]:
    """The IPv6 networks of `clients` that can reach the node through its FORWARD chain (not loopback)."""
    return [net for net in clients if net.version == 6 and not net.is_loopback]


@dataclass
class Masquerade(FirewallRules):
    """The support network's IPv4 traffic masqueraded out of the uplink; the support network reachable
    from the cluster only (`clients`), replies to the NAT64 pool only for connections it opened."""

    kind = "masquerade"
    v4cidr: IPNet
    v6cidr: IPNet
    out: str | None
    clients: Sequence[IPNet]  # served_networks(): the networks that may use the support network

    @property
    def title(self) -> str:
        return f"masquerade of {self.v4cidr}"

    def rules(self) -> list[list[str]]:
        comment = ["-m", "comment", "--comment", RULE_COMMENT]
        nat = ["iptables", "-t", "nat", "POSTROUTING", "-s", str(self.v4cidr), "!", "-d", str(self.v4cidr)]
        if self.out:
            nat += ["-o", self.out]
        v4 = ["iptables", "-t", "filter", "FORWARD"]
        v6 = ["ip6tables", "-t", "filter", "FORWARD"]
        return [
            [*nat, *comment, "-j", "MASQUERADE"],
            [*v4, "-s", str(self.v4cidr), *comment, "-j", "ACCEPT"],
            [*v4, "-d", str(self.v4cidr), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *comment,
             "-j", "ACCEPT"],
            [*v4, "-d", str(self.v4cidr), *comment, "-j", "DROP"],
            [*v6, "-s", str(self.v6cidr), *comment, "-j", "ACCEPT"],
            *([*v6, "-s", str(net), "-d", str(self.v6cidr), *comment, "-j", "ACCEPT"]
              for net in _cluster_v6(self.clients)),
            [*v6, "-d", str(self.v6cidr), *comment, "-j", "DROP"],
        ]


# --- the DNS64 prefix through the FORWARD chain ------------------------------------


@dataclass
class PrefixForward(FirewallRules):
    """ip6tables rules that let the cluster's traffic to and from the DNS64 prefix through the FORWARD chain,
    and no one else's.

    An engine with IPv6 firewalling (docker with ip6tables, the default since docker 27) sets
    the IPv6 FORWARD policy to DROP and admits only replies into its bridges, so the cluster
    nodes' new connections to NAT64 addresses would be dropped. Masquerade opens the support
    network itself; the DNS64 prefix lies outside it. A host outside `clients` (on the node's
    uplink side, say) must not use the translator: its traffic to the prefix is dropped.
    """

    kind = "forward-prefix"
    prefix: IPv6Network
    clients: Sequence[IPNet]  # served_networks(): the networks that may use the translator

    @property
    def title(self) -> str:
        return f"forwarding of {self.prefix}"

    def rules(self) -> list[list[str]]:
        comment = ["-m", "comment", "--comment", RULE_COMMENT]
        v6 = ["ip6tables", "-t", "filter", "FORWARD"]
        prefix = str(self.prefix)
        cluster = [str(net) for net in _cluster_v6(self.clients)]
        return [
            *([*v6, "-s", net, "-d", prefix, *comment, "-j", "ACCEPT"] for net in cluster),
            *([*v6, "-s", prefix, "-d", net, *comment, "-j", "ACCEPT"] for net in cluster),
            [*v6, "-d", prefix, *comment, "-j", "DROP"],
        ]
