"""What a node's boot reads: the sysctl.d file of lazyjack's kernel settings, and the restore unit."""

from __future__ import annotations

from collections.abc import Sequence

SYSCTL_PATH = "/etc/sysctl.d/90-lazyjack.conf"
UNIT_NAME = "lazyjack-restore.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
#: Where `systemctl enable` puts the link for `WantedBy=multi-user.target`.
WANTS_LINK = f"/etc/systemd/system/multi-user.target.wants/{UNIT_NAME}"


def render_sysctl_conf(settings: Sequence[tuple[str, str]]) -> str:
    """sysctl.d(5) lines for `settings` (name, value), in order, each name once."""
    lines = ["# Written by `lazyjack prepare`; `lazyjack clean` removes it.",
             "# systemd-sysctl (or `sysctl --system`) applies it at boot, before lazyjack-restore.service."]
    seen: set[str] = set()
    for name, value in settings:
        if name not in seen:
            seen.add(name)
            lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"


def quote_exec_arg(arg: str) -> str:
    """One argument of an ExecStart= line, quoted as systemd.service(5) reads it: no specifier
    (%) or variable ($) expansion, no word splitting."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def render_restore_unit(argv: Sequence[str], *, after: Sequence[str] = ()) -> str:
    """The oneshot unit that runs `argv` (lazyjack restore for this node) once the network is up,
    before kubelet starts; `after` names more units to wait for (a container engine)."""
    if not argv or not argv[0].startswith("/"):
        raise ValueError(f"ExecStart needs an absolute program path, got {argv[:1]!r}")
    lines = [
        "# Written by `lazyjack prepare`; `lazyjack clean` removes it.",
        "# At boot: re-apply what lazyjack applied on this node (addresses, routes, DNS64/NAT64 servers).",
        "[Unit]",
        "Description=lazyjack: restore this node's cluster networking after a boot",
        "Wants=network-online.target",
        "After=" + " ".join(["network-online.target", *after]),
        "Before=kubelet.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=" + " ".join(quote_exec_arg(a) for a in argv),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def exec_start(unit: str) -> list[str]:
    """The argv of a unit's ExecStart= line, read back as systemd reads lazyjack's quoting (what a
    simulated boot runs). A line it cannot read is a ValueError naming it."""
    line = next((raw[len("ExecStart="):] for raw in unit.splitlines() if raw.startswith("ExecStart=")), None)
    if line is None:
        raise ValueError("the unit has no ExecStart= line")
    argv: list[str] = []
    i = 0
    while i < len(line):
        if line[i] in " \t":
            i += 1
            continue
        word: list[str] = []
        if line[i] == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                if line[i] == "\\" and i + 1 < len(line):
                    i += 1
                word.append(line[i])
                i += 1
            if i >= len(line):
                raise ValueError(f"unterminated quote in ExecStart={line}")
            i += 1
        else:
            while i < len(line) and line[i] not in " \t":
                word.append(line[i])
                i += 1
        argv.append("".join(word).replace("%%", "%").replace("$$", "$"))
    return argv
