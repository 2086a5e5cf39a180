"""The command line: parse arguments, load the config, run a command, map errors to exit codes.

Nothing below this module prints or exits; this is the only place that does. Every command
imports this module, `version` and `--help` too, so it imports only what they need; the rest
(pathlib, the config, the commands, the lab) is imported by the function that uses it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterator, Sequence

from lazyjack import __version__
from lazyjack.commands import UP_PHASES, split_phases, unknown_phases
from lazyjack.errors import ConfigError, LazyjackError, Problem, UsageError

# typing itself costs start-up; mypy takes any TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NoReturn

    from lazyjack.config.model import Config
    from lazyjack.config.plan import Plan

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
COMMANDS = ("init", "prepare", "up", "down", "clean", "status", "restore", "version", "validate")
ACTING = ("init", "prepare", "up", "down", "clean", "restore")
EXAMPLES = ("ipv6.yaml", "ipv4.yaml", "dual-stack.yaml")


def _examples_dir() -> Path:
    from pathlib import Path

    return Path(__file__).parent / "examples"


def __getattr__(name: str) -> Path:
    # EXAMPLES_DIR, the directory of the packaged example configs, is made when first asked for.
    if name == "EXAMPLES_DIR":
        return _examples_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: lazyjack 1.x (Go `flag`) spellings -> ours. Go accepts one or two dashes and `-name=value`.
_GO_FLAGS = {"-config": "--config", "-host": "--host", "-v": "--verbose"}
#: glog flags 1.x accepted; they change nothing here, so they are accepted and ignored.
_GO_IGNORED_BOOL = {"-alsologtostderr", "-logtostderr"}
_GO_IGNORED_VALUE = {"-log_dir", "-log_backtrace_at", "-stderrthreshold", "-vmodule"}


class _ParserExit(Exception):
    """argparse finished early (`--help`); main() returns the status instead of exiting."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. Raised like Ctrl-C's KeyboardInterrupt, so that a run unwinds the same way:
    the running program is stopped, this run's changes are rolled back and the lock is released.
    """


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _terminal_columns() -> int:
    """The width help is wrapped to, found as shutil.get_terminal_size finds it: $COLUMNS, else the
    terminal of stdout, else 80. (argparse would import shutil for it, which costs every command
    start-up, as argparse makes a formatter for every option it adds.)"""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized by _terminal_columns."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns the exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _ParserExit(status)


#: Options whose next argument is their value: that is never an option or a 1.x flag to rewrite.
_VALUE_OPTIONS = frozenset({"-c", "--config", "--host", "--root", "-o", "--output", "--skip-phases", "--name",
                            "--timeout", "-V", "--verbose"})


def translate_go_flags(argv: Sequence[str]) -> list[str]:
    """Rewrite lazyjack 1.x flag spellings (`-config FILE`, `-host=NAME`, `-v 4`) to ours.

    Only lazyjack's own options are rewritten: not the value of an option (`--config -v`), and nothing
    after `--` or after the node of `lab exec NODE CMD...`, which is another program's command line.
    """
    out: list[str] = []
    words: list[str] = []  # the command words so far (`lab`, `exec`, the node)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--" or (words[:2] == ["lab", "exec"] and len(words) == 3):
            out += argv[i - 1 :]
            break
        name, eq, value = arg.partition("=")
        if name in _GO_IGNORED_BOOL:
            continue
        if name in _GO_IGNORED_VALUE:
            i += 0 if eq else 1
            continue
        if not arg.startswith("-"):
            words.append(arg)
            out.append(arg)
            continue
        ours = _GO_FLAGS.get(name)
        if ours is None:
            ours = name
            out.append(arg)
        else:
            out.append(f"{ours}={value}" if eq else ours)
        if not eq and ours in _VALUE_OPTIONS and i < len(argv):
            out.append(argv[i])
            i += 1
    return out


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "-c",
        "--config",
        default=default(None),  # None: not given (`lab` has its own default); config.yaml otherwise
        metavar="FILE",
        help="the cluster's configuration file (default: config.yaml)",
    )
    parser.add_argument(
        "--host",
        default=default(None),
        metavar="NAME",
        help="the node of the topology to act on (default: this machine's hostname)",
    )
    parser.add_argument(
        "--root",
        default=default(None),  # None: not given (`lab` refuses it); / otherwise
        metavar="DIR",
        help="act on files under DIR instead of / (for sandboxes and tests)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=default(False),
        help="show every change (with diffs of files) and change nothing",
    )
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks of unexpected errors"
    )
    parser.add_argument(
        "--verbose", "-V", type=int, default=default(0), metavar="N",
        help="lazyjack 1.x's -v N, accepted; the node commands show every step already "
        "(lab up and lab down: 1 shows the output of every lazyjack run in the nodes)",
    )
    # For `lazyjack cluster`: end with one JSON line saying how many changes were made.
    parser.add_argument("--summary-json", action="store_true", default=default(False), help=argparse.SUPPRESS)


def build_parser(mentioned: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser of the whole command line.

    With `mentioned` (the words of the command line), a command that is not among them gets a
    parser without its options: argparse can never choose it, and adding options costs every run
    start-up. Its name and help still show in the usage and --help.
    """

    def wanted(name: str) -> bool:
        return mentioned is None or name in mentioned

    parser = _Parser(
        prog="lazyjack",
        description="Prepare bare-metal hosts for a kubeadm cluster (IPv6, IPv4, dual-stack) and undo it.",
        epilog="Exit codes: 0 done, 1 failure while acting, 2 usage or configuration error, "
        "130/143 interrupted by SIGINT/SIGTERM (this run's changes rolled back); "
        "status: 0 all in place, 1 something drifted.",
    )
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="{" + "|".join(("cluster", *COMMANDS, "lab")) + "}",
                                parser_class=_Parser)
    helps = {
        "init": "make the CA and bootstrap token (master; not needed when insecure)",
        "prepare": "prepare this node: addresses, routes, hosts/resolv.conf, kubeadm config",
        "up": "bring Kubernetes up on this node (master first, then minions)",
        "down": "tear Kubernetes down on this node (minions first, then master)",
        "clean": "undo prepare on this node",
        "status": "compare this node with what lazyjack applied (exit 0 in place, 1 drifted)",
        "restore": "re-apply what drifted since lazyjack applied it (after a reboot)",
        "version": "show the version",
        "validate": "check the configuration and show the address plan",
    }
    for name in COMMANDS:
        cmd = sub.add_parser(name, help=helps[name], description=helps[name],
                             epilog=_examples_epilog() if name == "validate" else None)
        if not wanted(name):
            continue
        _common(cmd, suppress=True)
        if name in ("validate", "status"):
            cmd.add_argument(
                "--output",
                "-o",
                choices=("text", "json"),
                default="text",
                help="text (a table for status) or JSON (the address plan; status: every step's state)",
            )
        if name == "init":
            cmd.add_argument("--force", action="store_true",
                             help="replace a CA that cannot be read or whose key does not match it "
                             "(the old files are kept as <name>.<time>.bak)")
        if name in ("prepare", "up", "down", "clean", "restore"):
            cmd.add_argument("--no-rollback", "--keep-going", dest="no_rollback", action="store_true",
                             help="on a failure, keep this run's changes instead of rolling them back")
        if name in ("up", "down"):
            phases = "; ".join(f"{k}: {v}" for k, v in UP_PHASES.items())
            cmd.add_argument("--skip-phases", default="", metavar="LIST",
                             help=f"comma-separated phases to skip ({phases})")
    _add_lab_parser(sub, wanted)
    _add_cluster_parser(sub, wanted)
    _add_node_parser(sub, wanted)
    return parser


def _command_group(sub: argparse._SubParsersAction, wanted: Callable[[str], bool],  # type: ignore[type-arg]
                   group: str, about: str, more: str, helps: dict[str, str]) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """`lazyjack GROUP COMMAND`: the group's parser, and each of its commands' parsers that the command line
    names (the others keep their names and help only: start-up)."""
    parser = sub.add_parser(group, help=about, description=about + more)
    if not wanted(group):
        return
    commands = parser.add_subparsers(dest=f"{group}_command", metavar="{" + "|".join(helps) + "}",
                                     parser_class=_Parser)
    for name, text in helps.items():
        cmd = commands.add_parser(name, help=text, description=text)
        if wanted(name):
            yield name, cmd


#: `lazyjack cluster` commands and their help.
CLUSTER_COMMANDS = {
    "prepare": "pre-flight every node, init on the master when needed, push the config, prepare everywhere",
    "up": "prepare, then up: the master first, then the minions at once",
    "down": "down on the minions at once, then on the master",
    "clean": "down where a node is up, then clean everywhere, the DNS64/NAT64 node last",
    "status": "per node: reachable, lazyjack version, what its journal says is applied",
}


def _add_cluster_parser(sub: argparse._SubParsersAction, wanted: Callable[[str], bool]) -> None:  # type: ignore[type-arg]
    about = "run the node commands on every node of the topology, over SSH, in the right order"
    for name, cmd in _command_group(sub, wanted, "cluster", about, " (the node this runs on: locally)", CLUSTER_COMMANDS):
        cmd.add_argument("-c", "--config", default="config.yaml", metavar="FILE",
                         help="the cluster's configuration (default: config.yaml)")
        cmd.add_argument("--ssh-config", default=None, metavar="FILE", help="another ssh_config file (like ssh -F)")
        cmd.add_argument("--accept-new-host-keys", action="store_true",
                         help="add unknown host keys to known_hosts (StrictHostKeyChecking=accept-new); "
                         "a changed key still stops the run")
        cmd.add_argument("--local", default=None, metavar="NODE",
                         help="the node this machine is, run without SSH (default: the one named like this host)")
        cmd.add_argument("--remote-lazyjack", default="lazyjack", metavar="PATH",
                         help="the lazyjack program on the nodes (default: lazyjack)")
        cmd.add_argument("--remote-config", default="/etc/lazyjack/config.yaml", metavar="PATH",
                         help="where the config is put on each node (root's, mode 0600; "
                         "default: /etc/lazyjack/config.yaml)")
        cmd.add_argument("--parallel", type=int, default=10, metavar="N",
                         help="at most N nodes at once in a phase (default: 10)")
        cmd.add_argument("--output", "-o", choices=("text", "json"), default="text",
                         help="progress and a table, or per-node results as JSON")
        cmd.add_argument("--log-dir", default=None, metavar="DIR",
                         help="where each node's output is kept (default: ~/.local/state/lazyjack/cluster/RUN)")
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        if name != "status":
            cmd.add_argument("--dry-run", action="store_true",
                             help="show every node's plan (with the config as it would be pushed); change nothing")
        if name in ("up", "down", "clean"):
            phases = "; ".join(f"{k}: {v}" for k, v in UP_PHASES.items())
            cmd.add_argument("--skip-phases", default="", metavar="LIST",
                             help=f"phases of up/down to skip on every node ({phases})")


def _add_node_parser(sub: argparse._SubParsersAction, wanted: Callable[[str], bool]) -> None:  # type: ignore[type-arg]
    # Hidden (no help=): what `lazyjack cluster` runs on a node; answers in JSON.
    node = sub.add_parser("_node")
    if not wanted("_node"):
        return
    _common(node, suppress=True)
    node.add_argument("what", choices=("facts", "push-config", "read-config"))
    node.add_argument("--remote-config", required=True, metavar="PATH")


def _run_cluster(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lazyjack.cluster.commands import ClusterArgs, run_cluster
    from lazyjack.cluster.orchestrate import ClusterFailed, ClusterInterrupted, Outcome
    from lazyjack.cluster.report import as_json, result_table, status_table
    from lazyjack.config import load_config

    if args.cluster_command is None:
        raise UsageError("cluster needs a command: prepare|up|down|clean|status")
    if args.parallel < 1:
        raise UsageError(f"--parallel {args.parallel}: give 1 or more")
    config_path = Path(args.config)
    if not config_path.exists():
        raise ConfigError(str(config_path), [_missing_config(str(config_path))])
    config = load_config(config_path, require_token=False)
    skip = getattr(args, "skip_phases", "")
    extra = {c: ["--skip-phases", skip] for c in ("up", "down")} if skip else {}
    cargs = ClusterArgs(args.cluster_command, config_path, local=args.local,
                        ssh_config=Path(args.ssh_config) if args.ssh_config else None,
                        accept_new_host_keys=args.accept_new_host_keys, remote_lazyjack=args.remote_lazyjack,
                        remote_config=args.remote_config, parallel=args.parallel,
                        dry_run=getattr(args, "dry_run", False),
                        log_dir=Path(args.log_dir) if args.log_dir else None, extra=extra)
    json_out = args.output == "json"

    def report(line: str) -> None:
        print(line, file=sys.stderr if json_out else sys.stdout, flush=True)

    def show(outcome: Outcome, table: list[str]) -> None:
        if json_out:
            print(as_json(outcome))
        else:
            print("\n".join(table))

    if cargs.action != "status":
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        what = " (dry run: nothing changes on any node)" if cargs.dry_run else ""
        report(f"lazyjack cluster {cargs.action}: {len(config.nodes)} node(s) of {config_path}{what}")
    try:
        outcome = run_cluster(config, cargs, report=report)
    except ClusterFailed as exc:
        if not json_out:
            print(f"lazyjack: error: cluster {cargs.action} stopped: {exc}", file=sys.stderr)
        show(exc.outcome, result_table(exc.outcome))
        return EXIT_FAILED
    except ClusterInterrupted as exc:
        what = "terminated (SIGTERM)" if isinstance(exc.cause, Terminated) else "interrupted"
        print(f"lazyjack: cluster {cargs.action} {what}: the running node commands were stopped and rolled "
              "back", file=sys.stderr)
        show(exc.outcome, result_table(exc.outcome))
        return EXIT_TERMINATED if isinstance(exc.cause, Terminated) else EXIT_INTERRUPTED
    if cargs.action == "status":
        show(outcome, status_table(outcome))
        return EXIT_OK if outcome.ok else EXIT_FAILED
    if json_out:
        print(as_json(outcome))
    else:
        report(f"cluster {cargs.action} done on {len(outcome.nodes)} node(s){' (dry run)' if cargs.dry_run else ''}; "
               f"logs: {outcome.log_dir}")
    return EXIT_OK


def _run_node_side(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from lazyjack.commands import nodeside

    if args.host is None:
        raise UsageError("_node needs --host NODE")
    path = Path(args.remote_config)
    if args.what == "facts":
        facts = nodeside.gather_facts(new_config=sys.stdin.buffer.read(), host=args.host,
                                      root=Path(args.root or "/").resolve(), config_path=path)
        answer: dict[str, object] = facts.to_json()
    elif args.what == "push-config":
        answer = {"changed": nodeside.push_config(sys.stdin.buffer.read(), path, dry_run=args.dry_run)}
    else:
        from lazyjack.config.load import parse_config

        data = nodeside.read_private_file(path)
        general = parse_config(data or b"", name=str(path)).data.get("general") or {}
        answer = {"token": general.get("token"), "token-cert-hash": general.get("token-cert-hash")}
    print(json.dumps(answer))
    return EXIT_OK


#: `lazyjack lab` commands and their help.
LAB_COMMANDS = {
    "up": "make the namespaces, switch, simulated internet and sandboxes; run init, prepare and up",
    "check": "make a test pod per node with the real CNI plugins; check pings, DNS64 and NAT64",
    "reboot": "simulate a reboot of NODE (processes, addresses, routes, sysctls gone), then run its boot",
    "down": "delete the test pods, run down and clean, check the nodes, remove everything of the lab",
    "status": "show the labs, what they hold and each node's `lazyjack status`",
    "exec": "run a command in a node's namespace (NODE, NODE-pod, internet, site or switch)",
}


def _add_lab_parser(sub: argparse._SubParsersAction, wanted: Callable[[str], bool]) -> None:  # type: ignore[type-arg]
    about = "build a config's topology on this machine in network namespaces and run lazyjack in them"
    for name, cmd in _command_group(sub, wanted, "lab", about, " (like kind for kubeadm)", LAB_COMMANDS):
        if name != "status":
            cmd.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="FILE",
                             help="the lab's configuration (lab up default: the packaged ipv6.yaml)")
        cmd.add_argument("--name", default=None, metavar="NAME",
                         help="the lab's name (default: the config file's name, or the only lab there is)")
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        if name in ("up", "down"):
            cmd.add_argument("-V", "--verbose", type=int, default=argparse.SUPPRESS, metavar="N",
                             help="1: show the output of every lazyjack run in the nodes")
        if name == "up":
            cmd.add_argument("--skip-phases", default=None, metavar="LIST",
                             help="phases of up to skip in the nodes, comma-separated (default: kubelet,kubeadm: "
                             "a lab's namespaces do not isolate /etc/kubernetes or the kubelet service)")
            cmd.add_argument("--ssh", action="store_true",
                             help="an OpenSSH server in every node; lazyjack cluster drives the nodes over SSH")
        if name == "reboot":
            cmd.add_argument("target", metavar="NODE")
        if name == "exec":
            cmd.add_argument("--timeout", type=_exec_timeout, default=None, metavar="SECONDS",
                             help="stop the command after this long (default: no limit, it is interactive)")
            cmd.add_argument("target", metavar="NODE")
            cmd.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD",
                             help="the command and its arguments (default: $SHELL)")


#: The longest `lab exec --timeout` (a day): a bound, so that inf, nan and typos are refused.
MAX_EXEC_TIMEOUT = 24 * 3600


def _exec_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_EXEC_TIMEOUT:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and {MAX_EXEC_TIMEOUT} "
                                         "(exclusive of 0)")
    return seconds


def _refuse_unhonoured_lab_options(args: argparse.Namespace) -> None:
    """lab acts on this machine's namespaces with its own sandboxes: options it would ignore are refused."""
    command = f"lazyjack lab {args.lab_command}"
    if args.dry_run:
        raise UsageError(f"--dry-run is not supported by {command}: the lab builds real namespaces; remove it")
    if args.root is not None:
        raise UsageError(f"--root is not used by {command}: each lab node has its own sandbox; remove it")
    if args.host is not None:
        raise UsageError(f"--host is not used by {command}: the lab runs every node of the config; remove it")
    if args.config is not None and args.lab_command == "status":
        raise UsageError(f"--config is not used by {command}: it shows every lab (or --name NAME); remove it")
    if args.verbose and args.lab_command not in ("up", "down"):
        raise UsageError(f"--verbose is not used by {command} (only by lab up and lab down); remove it")


def _run_lab(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    from lazyjack.lab import Tools, checks
    from lazyjack.lab import commands as lab
    from lazyjack.lab.state import lab_name_for, resolve_lab

    if args.lab_command is None:
        raise UsageError("lab needs a command: up|check|reboot|down|status|exec")
    _refuse_unhonoured_lab_options(args)
    tools = Tools()
    config = Path(args.config) if args.config else None

    def report(line: str) -> None:
        print(line, flush=True)

    if args.lab_command == "up":
        skip = None if args.skip_phases is None else split_phases(args.skip_phases)
        lab.lab_up(tools, config_path=config, name=args.name, report=report, skip_phases=skip,
                   verbose=args.verbose > 0, ssh=args.ssh)
        return EXIT_OK
    if args.lab_command == "status":
        print("\n".join(lab.lab_status(tools, name=args.name)))
        return EXIT_OK
    if args.lab_command == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        name = args.name or (lab_name_for(config) if config else None)
        command, env = lab.exec_argv(name=name, target=args.target, argv=argv)
        try:
            return subprocess.run(command, env={**os.environ, **env}, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"lazyjack: lab exec: stopped after {args.timeout:g}s", file=sys.stderr)
            return EXIT_FAILED
    name = resolve_lab(args.name, config)
    if args.lab_command == "reboot":
        return EXIT_OK if lab.lab_reboot(tools, name=name, node=args.target, report=report) else EXIT_FAILED
    if args.lab_command == "check":
        found = lab.lab_check(tools, name=name, report=report)
        print("\n".join(checks.table(found)))
        failed = sum(not c.ok for c in found)
        print(f"{len(found) - failed} of {len(found)} checks passed" + (f", {failed} failed" if failed else ""))
        return EXIT_OK if not failed else EXIT_FAILED
    return EXIT_OK if lab.lab_down(tools, name=name, report=report, verbose=args.verbose > 0) else EXIT_FAILED


def _examples_epilog() -> str:
    # os.path, not pathlib: every command builds the parser, and pathlib costs start-up.
    directory = os.path.join(os.path.dirname(__file__), "examples")
    return f"The packaged examples are complete, valid configs: {', '.join(EXAMPLES)} in {directory}."


def _examples_hint() -> str:
    examples = _examples_dir()
    names = ", ".join(EXAMPLES)
    return (
        f"the packaged examples are in {examples} ({names}); "
        f"try: lazyjack validate --config {examples / EXAMPLES[0]}"
    )


def _run(args: argparse.Namespace, out: list[str]) -> int:
    command = args.command
    if command == "version":
        out.append(f"lazyjack version {__version__}")
        return EXIT_OK
    if command == "lab":
        return _run_lab(args)
    if command == "cluster":
        return _run_cluster(args)
    if command == "_node":
        return _run_node_side(args)
    from pathlib import Path

    config_path = Path(args.config or "config.yaml")
    if args.config == "-":
        if not args.dry_run or command not in ACTING:
            raise UsageError("--config - (the config on stdin) is for --dry-run of init, prepare, up, down and "
                             "clean: a command that acts needs the file")
    elif not config_path.exists():
        raise ConfigError(str(config_path), [_missing_config(str(config_path))])
    if command == "validate":
        from lazyjack.commands.validate import run_validate

        text, warnings = run_validate(config_path, host=args.host, output=args.output)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        out.append(text)
        return EXIT_OK
    import socket

    host = args.host or socket.gethostname()
    return _act(args, command, config_path, host)


def _act(args: argparse.Namespace, command: str, config_path: Path, host: str) -> int:
    from lazyjack.config import load_config
    from lazyjack.config.plan import build_plan
    from lazyjack.errors import PreflightError

    config = load_config(config_path, host=host, require_token=command in ("prepare", "up"),
                         data=sys.stdin.buffer.read() if args.config == "-" else None)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    plan = build_plan(config, routes_of=host)
    from pathlib import Path

    root = Path(args.root or "/").resolve()
    if command == "status":
        return _status(args, config, plan, host, root)
    if os.geteuid() != 0 and not args.dry_run:
        raise PreflightError(f"lazyjack {command} changes the host and must run as root (or try --dry-run)")

    def report(line: str) -> None:
        print(line, flush=True)

    from lazyjack.host import Host

    machine = Host.real(root)
    try:
        if command == "init":
            from lazyjack.commands.init import run_init

            changed = run_init(machine, config, plan, host, config_path=config_path, dry_run=args.dry_run,
                               force=args.force, report=report)
            _summary(args, changes=int(changed))
            return EXIT_OK
        if command == "restore":
            from lazyjack.commands.drift import run_restore

            restored = run_restore(machine, config, plan, host, root=root, report=report, dry_run=args.dry_run,
                                   rollback=not args.no_rollback)
            _summary(args, changes=len(restored.changed))
            return EXIT_OK
        from lazyjack.commands.node import NodeRun, run_node_command

        skip = frozenset(split_phases(getattr(args, "skip_phases", "")))
        unknown = unknown_phases(skip)
        if unknown:
            raise UsageError(unknown)
        opts = NodeRun(command, dry_run=args.dry_run, rollback=not getattr(args, "no_rollback", False),
                       skip_phases=skip)
        result = run_node_command(machine, config, plan, host, opts, root=root, report=report)
        _summary(args, changes=len(result.changed))
        return EXIT_OK
    finally:
        machine.close()


def _summary(args: argparse.Namespace, *, changes: int) -> None:
    if args.summary_json:
        import json

        print(json.dumps({"changes": changes}), flush=True)


def _status(args: argparse.Namespace, config: Config, plan: Plan, host: str, root: Path) -> int:
    """`lazyjack status`: a table or JSON on stdout; exit 0 when everything applied is in place, else 1."""
    import json

    from lazyjack.commands.drift import node_status
    from lazyjack.host import Host

    machine = Host.real(root)
    try:
        status = node_status(machine, config, plan, host, root=root)
    finally:
        machine.close()
    print(json.dumps(status.as_json(), indent=1) if args.output == "json" else "\n".join(status.table()))
    return EXIT_OK if status.in_place else EXIT_FAILED


def _missing_config(name: str) -> Problem:
    return Problem("", f"the configuration file does not exist; give one with --config FILE; {_examples_hint()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run lazyjack with `argv` (without the program name); return the exit code."""
    raw = list(sys.argv[1:] if argv is None else argv)
    # Python's default for SIGTERM ends the process on the spot, leaving kubeadm running and a node
    # half-changed; signal handlers can only be set from the main thread (ValueError elsewhere).
    # SIGHUP too: a node command run by `lazyjack cluster` over SSH has a terminal, and a lost
    # connection hangs it up; the run must roll back then, as for SIGTERM.
    try:
        previous = {sig: signal.signal(sig, _on_sigterm) for sig in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:
        previous = {}
    try:
        return _main(raw)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(raw: list[str]) -> int:
    debug = "--debug" in raw
    argv = translate_go_flags(raw)
    parser = build_parser(mentioned=set(argv))
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("a command is required: " + "|".join(COMMANDS) + "\n" + parser.format_usage().rstrip())
        out: list[str] = []
        code = _run(args, out)
        if out:
            print("\n".join(out))
        return code
    except _ParserExit as exc:
        return exc.status
    except LazyjackError as exc:
        if debug and getattr(exc, "unexpected", False):
            # A step met an exception lazyjack did not raise on purpose: where it came from helps a report.
            import traceback

            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        prefix = "error" if exc.exit_code != EXIT_USAGE or isinstance(exc, ConfigError) else "usage error"
        print(f"lazyjack: {prefix}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("lazyjack: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("lazyjack: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        print(
            f"lazyjack: internal error: {type(exc).__name__}: {exc}\n"
            "(run again with --debug for a traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
