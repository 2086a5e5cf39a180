"""The site's own DNS64 server and NAT64 gateway, for a lab of a config that names them.

A config with `dns64.external-server` or `nat64.external-gateway` expects the site to have them;
the lab plays the site: a namespace on the management switch holding those addresses (the DNS64
server on lo when it sits behind `dns64.external-via`, the router), an unbound DNS64 server and a
tayga NAT64 gateway, and an uplink to the simulated internet. Its DNS64 server's own queries take
its own tayga, so it works whether or not the cluster runs its NAT64 itself. lazyjack's renderers
write its files; lazyjack (the node commands) knows nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.daemon import DaemonsAPI
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError
from lazyjack.lab.topology import ip, nsenter, sysctl
from lazyjack.render.dns64 import render_unbound_conf
from lazyjack.render.nat64 import render_tayga_conf

LINK = "eth1"
TUN = "nat64"
#: tayga's own addresses in the site: a pool for the IPv6 hosts it translates, and a ULA for itself
#: (it may not derive one from a private IPv4 address in the well-known prefix).
POOLS = (IPv4Network("172.31.255.0/24"), IPv4Network("10.255.255.0/24"), IPv4Network("192.168.255.0/24"))
TAYGA_V6 = IPv6Address("fdff:6464::1")
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class SitePlan:
    """The site's addresses and what it serves."""

    netns: str
    prefix: IPv6Network
    on_switch: tuple[IPv6Interface, ...]  # on eth1, the management network
    dns64: IPv6Address | None  # the DNS64 server's address, if the site is the cluster's DNS64
    behind: bool  # the DNS64 server sits on lo, reached through the site as router
    pool: IPv4Network
    clients: tuple[IPv6Network, ...]  # what its DNS64 server answers
    routes: tuple[tuple[IPv6Network, IPv6Address], ...]  # back to the cluster's own DNS64 server's network

    @property
    def tayga_v4(self) -> IPv4Interface:
        return IPv4Interface((self.pool.network_address + 1, self.pool.prefixlen))

    @property
    def dynamic_pool(self) -> IPv4Network:
        return IPv4Network((self.pool.network_address + self.pool.num_addresses // 2, self.pool.prefixlen + 1))


def plan_site(config: Config, plan: Plan, *, netns: str) -> SitePlan | None:
    """The site a config expects, or None when the cluster runs DNS64 and NAT64 itself."""
    egress = config.egress
    if egress is None or (egress.site_dns64 is None and egress.site_gateway is None):
        return None
    server = egress.site_dns64.server if egress.site_dns64 is not None else None
    via = egress.site_dns64.via if egress.site_dns64 is not None else None
    mgmt = config.mgmt[0]
    on_switch = [IPv6Interface((a, mgmt.prefixlen)) for a in (egress.site_gateway, via, server)
                 if a is not None and a in mgmt]
    used: list[IPv4Network | IPv6Network] = [*config.mgmt, *config.pod, *config.service]
    if egress.support is not None:
        used.append(egress.support.v4cidr)
    pool = next((p for p in POOLS if not any(n.version == 4 and p.overlaps(n) for n in used)), None)
    if pool is None:
        raise LabError(f"the lab's site needs an IPv4 pool for its NAT64; {', '.join(map(str, POOLS))} are all "
                       "used by the config")
    if any(TAYGA_V6 in n for n in (*config.mgmt, *config.pod, *config.service)):
        raise LabError(f"the config's networks hold {TAYGA_V6}, which the lab's site gives its NAT64")
    routes: list[tuple[IPv6Network, IPv6Address]] = []
    own_dns64 = plan.dns64_node
    if egress.site_gateway is not None and own_dns64 is not None and egress.support is not None:
        # The cluster's own DNS64 server asks through the site's NAT64 from its support network address.
        address = own_dns64.management_of(6)
        if isinstance(address, IPv6Interface):
            routes.append((egress.support.cidr, address.ip))
    clients = tuple(n for n in (*config.mgmt, *config.pod) if isinstance(n, IPv6Network))
    return SitePlan(netns=netns, prefix=egress.prefix, on_switch=tuple(dict.fromkeys(on_switch)), dns64=server,
                    behind=via is not None, pool=pool, clients=(*clients, IPv6Network("::1/128")),
                    routes=tuple(routes))


def build(proc: RunnerAPI, site: SitePlan) -> None:
    """Addresses, forwarding and routes of the site namespace (made and plugged into the switch by the caller)."""
    sysctl(proc, site.netns, "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")
    for address in site.on_switch:
        ip(proc, site.netns, "addr", "add", str(address), "dev", LINK, "nodad")
    if site.dns64 is not None and site.behind:
        ip(proc, site.netns, "addr", "add", f"{site.dns64}/128", "dev", "lo")
    ip(proc, site.netns, "link", "set", LINK, "up")
    for network, gateway in site.routes:
        ip(proc, site.netns, "-6", "route", "add", str(network), "via", str(gateway), "dev", LINK)


def start(proc: RunnerAPI, daemons: DaemonsAPI, site: SitePlan, directory: Path, *, uplink: str,
          upstream: IPv4Address) -> list[tuple[str, str, Path]]:
    """tayga, then (when the site is the DNS64) unbound, once the uplink is there; (name, program, pid file) each."""
    directory.mkdir(parents=True, exist_ok=True)
    inside = nsenter(site.netns)
    conf = directory / "tayga.conf"
    conf.write_text(render_tayga_conf(tun_device=TUN, ipv4_addr=site.tayga_v4.ip, ipv6_addr=TAYGA_V6,
                                      prefix=site.prefix, dynamic_pool=site.dynamic_pool,
                                      data_dir=str(directory / "tayga")))
    (directory / "tayga").mkdir(exist_ok=True)
    proc.run([*inside, "tayga", "--config", str(conf), "--mktun"], timeout=30)
    ip(proc, site.netns, "link", "set", TUN, "up")
    ip(proc, site.netns, "route", "add", str(site.dynamic_pool), "dev", TUN)
    ip(proc, site.netns, "-6", "route", "add", str(site.prefix), "dev", TUN)
    proc.run([*inside, "iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING", "-s", str(site.dynamic_pool),
              "-o", uplink, "-j", "MASQUERADE"], timeout=30)
    started = [("site NAT64", "tayga", directory / "tayga.pid")]
    daemons.start([*inside, "tayga", "--nodetach", "--config", str(conf)], pid_file=started[0][2],
                  log_file=directory / "tayga.log")
    if site.dns64 is None:
        return started
    data = directory / "unbound"
    data.mkdir(exist_ok=True)
    conf = directory / "unbound.conf"
    conf.write_text(render_unbound_conf(prefix=site.prefix, forwarder=upstream, allow_aaaa=False,
                                        directory=str(data), pid_file=str(data / "unbound.pid"),
                                        listen_on=site.dns64, clients=site.clients))
    pid_file = directory / "unbound.pid"
    pid = daemons.start([*inside, "unbound", "-d", "-c", str(conf)], pid_file=pid_file,
                        log_file=directory / "unbound.log")
    started.append(("site DNS64", "unbound", pid_file))
    if not daemons.listening(pid, port=53, timeout=START_TIMEOUT):
        log = (directory / "unbound.log").read_text(errors="replace")[-2000:]
        raise LabError(f"the site's unbound did not listen on port 53 within {START_TIMEOUT:g}s:\n{log}")
    return started
