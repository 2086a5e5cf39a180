"""Making a lab: the switch, a namespace and sandbox per node, the simulated internet; each recorded before it is made."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.host.netns import netns_exists, support_netns
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError, Tools, internet, sandbox, site, sshd, topology
from lazyjack.lab.progress import Progress
from lazyjack.lab.state import Daemon, LabState, NodeState

UPLINK, UPLINK_OTHER = "eth0", "uplink0"
BASE_MTU = 1500
DEFAULT_UPSTREAM = "203.0.113.53"


def new_netns(proc: RunnerAPI, state: LabState, name: str, *, switch: bool = False) -> None:
    """Create a namespace for the lab, recorded first; one that exists already is never taken over."""
    if netns_exists(name):
        raise LabError(f"network namespace {name} exists already and is not this lab's; it is left alone")
    state.add_namespace(name)
    if switch:
        topology.add_switch(proc, name)
    else:
        topology.add_netns(proc, name)


def build(tools: Tools, state: LabState, config: Config, plan: Plan, order: list[str], progress: Progress) -> None:
    """The lab's namespaces, links, sandboxes, simulated internet and (for a config naming them) the site's own
    DNS64/NAT64."""
    proc = tools.proc
    directory = Path(state.directory)
    with progress.step("Writing the lab's copy of the config") as notes:
        note = sandbox.lab_config(config, Path(state.source_config), state.lab_config)
        notes += [note] if note else []
    switch = topology.switch_netns(state.name)
    with progress.step(f"Creating the management switch ({switch})"):
        new_netns(proc, state, switch, switch=True)
    mtu = max(BASE_MTU, config.mtu)
    nat64 = plan.nat64_node
    site_plan = site.plan_site(config, plan, netns=topology.site_netns(state.name))
    inet: internet.InternetPlan | None = None
    if config.mode == "ipv6":
        uplinks = []
        if nat64 is not None:
            uplinks.append((nat64.name, topology.node_netns(nat64.name),
                            topology.free_name(nat64.interface, UPLINK, UPLINK_OTHER)))
        if site_plan is not None:
            uplinks.append(("site", site_plan.netns, UPLINK))
        inet = internet.plan_internet(config, netns=topology.internet_netns(state.name), uplinks=uplinks)
        state.internet = inet.to_state()
    upstream = str(inet.dns) if inet else DEFAULT_UPSTREAM
    for index, node_name in enumerate(order):
        node = plan.nodes[node_name]
        ns = topology.node_netns(node_name)
        with progress.step(f"Creating node {node_name} ({ns}, {node.interface})"):
            state.nodes[node_name] = entry = NodeState(
                name=node_name, netns=ns, interface=node.interface, roles=list(node.roles),
                directory=str(directory / "nodes" / node_name))
            new_netns(proc, state, ns)
            if node.is_nat64 or node.is_dns64:
                # lazyjack makes it at prepare; recorded so that down removes it whatever happened.
                state.add_namespace(support_netns(entry.root.resolve()))
            topology.plug_node(proc, switch=switch, port=f"p{index}", netns=ns, interface=node.interface, mtu=mtu)
            sandbox.seed_sandbox(entry.root, node_name, upstream)
            sandbox.hand_out(state.lab_config, [entry.config])
    if site_plan is not None:
        serves = " and ".join(what for what, there in (("DNS64", site_plan.dns64), ("NAT64", True)) if there)
        with progress.step(f"Creating the site's own {serves} ({site_plan.netns})") as notes:
            new_netns(proc, state, site_plan.netns)
            state.site = site_plan.netns
            topology.plug_node(proc, switch=switch, port="psite", netns=site_plan.netns, interface=site.LINK, mtu=mtu)
            site.build(proc, site_plan)
            notes.append(", ".join(str(a.ip) for a in site_plan.on_switch)
                         + (f"; DNS64 {site_plan.dns64} behind it" if site_plan.behind else ""))
    if inet is not None:
        title = (f"Starting the simulated internet ({inet.netns}: DNS {inet.dns}, "
                 f"{internet.WWW} A {inet.www}, HTTP)")
        with progress.step(title):
            new_netns(proc, state, inet.netns)
            internet.build_links(proc, inet)
            servers = directory / "internet"
            dns_pid = internet.start_dns(tools.daemons, inet, servers / "dns")
            state.daemons.append(Daemon("dns", "named", str(dns_pid)))
            state.save()
            web_pid = internet.start_web(tools.daemons, inet, servers / "web")
            state.daemons.append(Daemon("web", "http.server", str(web_pid)))
            state.save()
        for link in inet.uplinks:
            progress.skip(f"Uplink of {link.node}",
                          f"{link.interface} {link.outside}, default IPv4 route via {link.inside.ip}")
    if site_plan is not None and inet is not None:
        with progress.step(f"Starting the site's servers in {site_plan.netns}") as notes:
            for name, program, pid_file in site.start(proc, tools.daemons, site_plan, directory / "site",
                                                      uplink=UPLINK, upstream=inet.dns):
                state.daemons.append(Daemon(name, program, str(pid_file)))
                state.save()
                notes.append(program)
    if state.ssh:
        build_ssh(tools, state, order, progress)


def build_ssh(tools: Tools, state: LabState, order: list[str], progress: Progress) -> None:
    """An sshd in every node, reached on its access link; the lab's key, pinned host keys, ssh_config."""
    state.ssh_dir.mkdir(mode=0o700)
    key = state.ssh_dir / "id_ed25519"
    sshd.new_key(tools.proc, key, comment=f"lazyjack lab {state.name}")
    known = state.ssh_dir / "known_hosts"
    entries = []
    tag = hashlib.sha256(state.name.encode()).hexdigest()[:6]
    for index, name in enumerate(order):
        node = state.nodes[name]
        server = sshd.SshNode(name, node.netns, Path(node.directory) / "ssh", f"ljs{tag}{index}")
        with progress.step(f"Starting sshd in {name} (reached at {server.address})"):
            sshd.prepare_dirs(server)
            # The node's /etc/hosts and /etc/resolv.conf as on a fresh host (lazyjack acts on --root).
            sshd.add_access_link(tools.proc, server)
            state.daemons.append(Daemon(f"sshd of {name}", "sshd", str(server.pid_file)))
            state.save()
            sshd.start_sshd(server, authorized_keys=Path(f"{key}.pub").read_text())
        entries.append(server)
    known.write_text("".join(sshd.known_hosts_line(s) for s in entries))
    state.ssh_config.write_text("".join(sshd.ssh_config_entry(s, key=key, known_hosts=known) for s in entries))
    state.remote_lazyjack.write_text(sshd.lazyjack_program())
    state.remote_lazyjack.chmod(0o755)
