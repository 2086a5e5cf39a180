"""bind9 named.conf for the DNS64 resolver."""

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


def named_conf(egress: Egress, *, state_dir: str, clients: Sequence[IPNet]) -> str:
    """named.conf of the cluster's DNS64 server, listening on dns64.ip, its own files in `state_dir`, answering
    `clients` (`served_networks` of the config) only."""
    return render_named_conf(
        prefix=egress.dns64.cidr,
        forwarder=egress.dns64.remote_server,
        allow_aaaa=egress.dns64.allow_aaaa,
        directory=state_dir,
        clients=clients,
        # Not named's default /run/named/named.pid: that is the host's own bind9's, which ours
        # would overwrite and then delete when it stops.
        pid_file=f"{state_dir}/named.pid",
        listen_on_v6=[egress.dns64.ip],
    )


def _quoted(field: str, value: str) -> str:
    # named.conf has no escape we want to rely on; refuse what would end the string early.
    if not value or any(c in value for c in '"\\\n\r'):
        raise ValueError(
            f"{field} {value!r} cannot be written to named.conf: it must be non-empty and"
            " contain no quote, backslash or line break"
        )
    return f'"{value}"'


__all__ = ["NAT64_PREFIX_LENGTHS", "embed_ipv4", "named_conf", "render_named_conf"]
