"""The lab's checks: node and pod reachability per family, DNS64 synthesis and NAT64 fetches, and their table."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address

from lazyjack.errors import CommandFailed
from lazyjack.host.process import RunnerAPI
from lazyjack.lab.topology import nsenter

PING_TRIES = 3
WORKERS = 16


@dataclass(frozen=True)
class Check:
    """One check and its outcome."""

    kind: str
    source: str
    target: str
    ok: bool
    detail: str


Probe = Callable[[], Check]


def ping(proc: RunnerAPI, *, kind: str, source: str, netns: str, target: str, address: str) -> Check:
    """One echo request answered, out of up to PING_TRIES (the first may wait for neighbour discovery)."""
    family = "-6" if ip_address(address).version == 6 else "-4"
    argv = [*nsenter(netns), "ping", family, "-n", "-c", "1", "-W", "2", address]
    last = ""
    for _ in range(PING_TRIES):
        try:
            done = proc.run(argv, timeout=10, check=False)
        except CommandFailed as exc:
            return Check(kind, source, target, False, str(exc))
        if done.returncode == 0:
            return Check(kind, source, target, True, f"{address} answers")
        last = done.output.strip().splitlines()[-1] if done.output.strip() else f"exit {done.returncode}"
    return Check(kind, source, target, False, f"{address}: no answer ({last})")


def dns64(proc: RunnerAPI, *, source: str, netns: str, nameserver: str, name: str,
          expected: IPv6Address, prefix: IPv6Network) -> Check:
    """`name` resolves, through the node's nameserver, to the AAAA synthesised from its A record."""
    argv = [*nsenter(netns), "dig", "+short", "+time=2", "+tries=2", "AAAA", name, f"@{nameserver}"]
    try:
        done = proc.run(argv, timeout=15, check=False)
    except CommandFailed as exc:
        return Check("DNS64", source, name, False, str(exc))
    answers = []
    for line in done.stdout.split():
        try:
            answers.append(ip_address(line))
        except ValueError:
            continue
    if expected in answers:
        return Check("DNS64", source, name, True, f"AAAA {expected} (in {prefix}) from {nameserver}")
    got = ", ".join(map(str, answers)) or done.output.strip() or "no answer"
    return Check("DNS64", source, name, False, f"from {nameserver}: expected AAAA {expected}, got {got}")


def nat64(proc: RunnerAPI, *, source: str, netns: str, name: str, address: IPv6Address, page: str) -> Check:
    """curl -6 fetches the page from the IPv4-only web server through its synthesised address."""
    url = f"http://{name}/"
    argv = [*nsenter(netns), "curl", "-6", "-sS", "--max-time", "5", "--resolve", f"{name}:80:[{address}]", url]
    try:
        done = proc.run(argv, timeout=15, check=False)
    except CommandFailed as exc:
        return Check("NAT64", source, url, False, str(exc))
    if done.returncode == 0 and done.stdout == page:
        return Check("NAT64", source, url, True, f"page fetched via [{address}]")
    why = done.stderr.strip() or f"unexpected page {done.stdout[:80]!r}"
    return Check("NAT64", source, url, False, f"via [{address}]: {why}")


def run_all(probes: list[Probe]) -> list[Check]:
    """Run the probes concurrently; results in the probes' order."""
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(probes))) as pool:
        futures = [pool.submit(p) for p in probes]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def table(checks: list[Check]) -> list[str]:
    """The checks as an aligned table, one row each."""
    header = ("CHECK", "FROM", "TO", "OK", "DETAIL")
    rows = [header] + [(c.kind, c.source, c.target, "✓" if c.ok else "✗", c.detail) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip() for row in rows]
