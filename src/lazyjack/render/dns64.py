"""The DNS64 resolver's configuration: bind9's named.conf or unbound's unbound.conf."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from lazyjack.addresses import RFC6052_LENGTHS as NAT64_PREFIX_LENGTHS
from lazyjack.addresses import IPNet, embed_ipv4
from lazyjack.config.egress import Egress


def render_named_conf(
    *,
    prefix: IPv6Network,
    forwarder: IPv4Address,
    allow_aaaa: bool,
    directory: str,
    clients: Sequence[IPNet],
    pid_file: str | None = None,
    listen_on_v6: Sequence[IPv6Address] | None = None,
) -> str:
    """Return a complete named.conf for a recursive resolver that synthesises AAAA in ``prefix``.

    Queries go to ``forwarder`` through NAT64 (its address embedded in ``prefix``), so the
    resolver needs no IPv4 connectivity of its own. With ``allow_aaaa`` False every AAAA answer is
    ignored and synthesised from A records, so all outside traffic goes through NAT64. Only
    ``clients`` (the networks the cluster's servers serve) may query it; anyone else is refused.
    """
    forward_via = embed_ipv4(prefix, forwarder)
    if not clients:
        raise ValueError("clients is empty: give the networks the resolver serves")
    allowed = " ".join(f"{net};" for net in clients)
    if listen_on_v6 is None:
        listen_v6 = "any;"
    elif listen_on_v6:
        listen_v6 = " ".join(f"{address};" for address in listen_on_v6)
    else:
        raise ValueError("listen_on_v6 is empty: give addresses, or None to listen on any")

    lines = [
        "// Written by lazyjack: recursive DNS64 resolver for an IPv6-only cluster.",
        f"// Queries are forwarded to {forwarder} through NAT64 as {forward_via}.",
        "options {",
        f"    directory {_quoted('directory', directory)};",
    ]
    if pid_file is not None:
        lines.append(f"    pid-file {_quoted('pid_file', pid_file)};")
        # Next to the pid file, not in bind9's default /run/named/, which belongs to a bind9
        # the host may run itself (nsupdate -l reads its session.key).
        base = pid_file.rsplit("/", 1)[0] if "/" in pid_file else "."
        lines.append(f"    session-keyfile {_quoted('pid_file', base + '/session.key')};")
        lines.append(f"    lock-file {_quoted('pid_file', base + '/named.lock')};")
    lines += [
        f"    listen-on-v6 {{ {listen_v6} }};",
        # Clients of a DNS64 server are IPv6-only by definition, and an IPv4 listener on
        # every interface would expose an open recursive resolver on the node's uplink.
        "    listen-on { none; };",
        # Not an open resolver: only the cluster may ask, and have it recurse (and answer from its cache).
        f"    allow-query {{ {allowed} }};",
        "    recursion yes;",
        f"    allow-recursion {{ {allowed} }};",
        f"    allow-query-cache {{ {allowed} }};",
        f"    forwarders {{ {forward_via}; }};",
        # Recursing from the root needs internet access the resolver may not have (in a
        # container it has only IPv6); every query must take the NAT64 path to the forwarder.
        "    forward only;",
        # A lab's remote_server may strip DNSSEC records or the node's clock may be off; either
        # turns validation into SERVFAIL for every name, and synthesised AAAA are unsigned anyway.
        "    dnssec-validation no;",
        "    auth-nxdomain no;",
    ]
    if allow_aaaa:
        lines.append(f"    dns64 {prefix} {{ }};")
    else:
        lines += [
            f"    dns64 {prefix} {{",
            # Ignore every real AAAA so that answers always point into the NAT64 prefix.
            "        exclude { any; };",
            "    };",
        ]
    lines.append("};")
    return "\n".join(lines) + "\n"


def dns64_conf(egress: Egress, *, state_dir: str, clients: Sequence[IPNet]) -> str:
    """The cluster's DNS64 server's configuration, named.conf or unbound.conf by dns64.server: listening on
    dns64.ip, answering `clients` (`served_networks` of the config) only, its own files (the pid file too) in `state_dir`.

    Not in named's /run/named/ or unbound's /run/unbound.pid: those are the host's own server's, which
    ours would overwrite and then delete when it stops.
    """
    dns64 = egress.dns64
    assert dns64 is not None, "only a node with opmode dns64 runs a DNS64 server"
    pid_file = f"{state_dir}/{dns64.program}.pid"
    if dns64.server == "unbound":
        return render_unbound_conf(prefix=egress.prefix, forwarder=dns64.remote_server, allow_aaaa=dns64.allow_aaaa,
                                   directory=state_dir, pid_file=pid_file, listen_on=dns64.ip, clients=clients)
    return render_named_conf(prefix=egress.prefix, forwarder=dns64.remote_server, allow_aaaa=dns64.allow_aaaa,
                             directory=state_dir, clients=clients, pid_file=pid_file, listen_on_v6=[dns64.ip])


def render_unbound_conf(
    *,
    prefix: IPv6Network,
    forwarder: IPv4Address,
    allow_aaaa: bool,
    directory: str,
    pid_file: str,
    listen_on: IPv6Address,
    clients: Sequence[IPNet],
) -> str:
    """Return a complete unbound.conf with the behaviour of `render_named_conf`'s resolver.

    It listens on `listen_on` only, answers only `clients` (everyone else is refused), forwards
    every query to `forwarder` through NAT64 and synthesises AAAA in `prefix`; with `allow_aaaa`
    False every answer is synthesised. Everything it writes stays in `directory`.
    """
    if not clients:
        raise ValueError("clients is empty: an unbound that serves no network would refuse every query")
    forward_via = embed_ipv4(prefix, forwarder)
    lines = [
        "# Written by lazyjack: recursive DNS64 resolver for an IPv6-only cluster.",
        f"# Queries are forwarded to {forwarder} through NAT64 as {forward_via}.",
        "server:",
        "    verbosity: 1",
        # In the foreground, logging to stderr: lazyjack's log file or the container's output.
        "    do-daemonize: no",
        "    use-syslog: no",
        '    logfile: ""',
        # Debian's defaults would chroot, drop privileges and share /run/unbound.pid with the
        # host's own unbound; this one keeps to its directory.
        '    chroot: ""',
        '    username: ""',
        f"    directory: {_quoted('directory', directory, file='unbound.conf')}",
        f"    pidfile: {_quoted('pid_file', pid_file, file='unbound.conf')}",
        f"    interface: {listen_on}",
        # A container's new IPv6 address is tentative for a moment; without freebind unbound
        # would exit, unable to bind it.
        "    ip-freebind: yes",
        "    port: 53",
        # Its one upstream is an IPv6 address (inside the prefix) and its clients are IPv6-only.
        "    do-ip4: no",
        "    do-ip6: yes",
    ]
    lines += [f"    access-control: {network} allow" for network in clients]
    lines += [
        # No validator: synthesised answers are unsigned anyway (bind9's dnssec-validation no).
        '    module-config: "dns64 iterator"',
        f"    dns64-prefix: {prefix}",
    ]
    if not allow_aaaa:
        # Ignore every real AAAA so that answers always point into the NAT64 prefix.
        lines.append("    dns64-synthall: yes")
    lines += [
        "remote-control:",
        "    control-enable: no",
        "forward-zone:",
        '    name: "."',
        f"    forward-addr: {forward_via}",
        # Never recurse from the root: every query must take the NAT64 path to the forwarder.
        "    forward-first: no",
    ]
    return "\n".join(lines) + "\n"


def _quoted(field: str, value: str, *, file: str = "named.conf") -> str:
    # Neither file format has an escape we want to rely on; refuse what would end the string early.
    if not value or any(c in value for c in '"\\\n\r'):
        raise ValueError(
            f"{field} {value!r} cannot be written to {file}: it must be non-empty and"
            " contain no quote, backslash or line break"
        )
    return f'"{value}"'


__all__ = ["NAT64_PREFIX_LENGTHS", "dns64_conf", "embed_ipv4", "render_named_conf", "render_unbound_conf"]
