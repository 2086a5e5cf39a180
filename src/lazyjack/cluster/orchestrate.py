"""A cluster run: connect, pre-flight every node, then the phases of the plan, with per-node results.

The order is k0sctl's: nothing changes anywhere until every node is reachable, runs the same
lazyjack version and has its interface; then init on the master when needed, the config handed
to every node (only where its bytes differ), and the node commands phase by phase. A failure
ends the run at the end of its phase: the nodes of that phase finish (a failed node has rolled
its own run back), no further phase starts, and every node's outcome is kept for the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lazyjack import __version__
from lazyjack.cluster import ClusterError, phases
from lazyjack.cluster.phases import PUSH, NodeInfo, Phase
from lazyjack.cluster.runner import Result, Runner, Task
from lazyjack.cluster.transport import Launch, Transport
from lazyjack.config.model import Config

DONE, FAILED, NOT_STARTED = "done", "failed", "not started"
QUICK_TIMEOUT = 120.0
#: Beyond kubeadm's own timeout: prepare may start DNS64/NAT64 servers, down may wait for kubeadm reset.
ACT_MARGIN = 600.0

Report = Callable[[str], None]


@dataclass(frozen=True)
class Endpoint:
    """How to run lazyjack on a node: the transport, the program, its config there, extra options."""

    transport: Transport
    lazyjack: tuple[str, ...]
    config: str
    options: tuple[str, ...] = ()


@dataclass
class NodeOutcome:
    """Everything the run learned about one node."""

    name: str
    state: str = NOT_STARTED
    error: str = ""
    tail: list[str] = field(default_factory=list)
    runs: list[Result] = field(default_factory=list)
    version: str | None = None
    applied: str | None = None
    config_pushed: bool | None = None
    reachable: bool | None = None
    #: Per node command: how many changes it made (or would make, in a dry run).
    changes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "result": self.state, "error": self.error or None, "tail": self.tail, "reachable": self.reachable,
            "version": self.version, "applied": self.applied, "config_pushed": self.config_pushed,
            "changes": self.changes,
            "commands": [{"command": r.command, "exit": r.returncode, "seconds": round(r.seconds, 3),
                          "started": r.started, "ended": r.ended, **({"stopped": r.stopped} if r.stopped else {})}
                         for r in self.runs],
        }


@dataclass
class Outcome:
    """A whole run: per node, and where it stopped."""

    action: str
    nodes: dict[str, NodeOutcome]
    log_dir: Path
    dry_run: bool = False
    ok: bool = True
    stopped_at: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, "ok": self.ok, "dry_run": self.dry_run, "interrupted": self.interrupted,
                "stopped_at": self.stopped_at or None, "log_dir": str(self.log_dir), "version": __version__,
                "notes": self.notes, "nodes": {n: o.to_json() for n, o in self.nodes.items()}}


class ClusterFailed(ClusterError):
    """The run stopped; `.outcome` has every node's result for the table."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class ClusterInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run, after every running node command was stopped."""

    def __init__(self, outcome: Outcome, cause: KeyboardInterrupt) -> None:
        super().__init__()
        self.outcome = outcome
        self.cause = cause


@dataclass
class Options:
    """What the command line says about a run."""

    action: str
    config_path: Path
    log_dir: Path
    dry_run: bool = False
    parallel: int = 10
    #: Options handed to every `up`/`down` (--skip-phases).
    extra: dict[str, list[str]] = field(default_factory=dict)
    #: Pre-flight refuses a node without its interface (not when taking a half-made lab away).
    require_interfaces: bool = True


def node_infos(config: Config) -> list[NodeInfo]:
    """The topology in the file's order."""
    return [NodeInfo(n.name, n.roles) for n in config.nodes.values()]


def needs_init(config: Config) -> bool:
    from lazyjack.config.model import is_set

    g = config.general
    return not g.insecure and not (g.token and is_set(g.token) and g.token_cert_hash and is_set(g.token_cert_hash))


class ClusterRun:
    """One `lazyjack cluster ACTION`: see the module docstring."""

    def __init__(self, config: Config, endpoints: dict[str, Endpoint], opts: Options, *, report: Report,
                 before: Callable[[Phase], None] | None = None) -> None:
        """`before` hears of each phase before it starts (the lab records and snapshots there)."""
        self.config = config
        self.endpoints = endpoints
        self.opts = opts
        self.report = report
        self.before = before or (lambda phase: None)
        self.data = opts.config_path.read_bytes()
        self.outcome = Outcome(opts.action, {n: NodeOutcome(n) for n in endpoints}, opts.log_dir, opts.dry_run)
        self._phase = ""
        self._plan: list[Phase] = []
        self._index = -1
        #: A dry run with init to do: the other phases need the token init would make.
        self._stop_after_init = False

    # --- running tasks --------------------------------------------------------------------

    def _log(self, node: str) -> Path:
        return self.opts.log_dir / f"{node}.log"

    def _argv(self, node: str, *args: str, config: bool = True) -> list[str]:
        end = self.endpoints[node]
        where = ["--host", node, "--config", "-" if self.opts.dry_run else end.config] if config else ["--host", node]
        return [*end.lazyjack, *where, *end.options, *args]

    def _task(self, node: str, label: str, argv: list[str], *, root: bool, attached: bool, timeout: float,
              stdin: bytes | None = None) -> Task:
        launch = self.endpoints[node].transport.launch(node, argv, root=root, attached=attached)
        return Task(node, label, launch, self._log(node), timeout, stdin)

    def _run(self, tasks: list[Task], *, live: bool = True) -> list[Result]:
        def done(result: Result) -> None:
            self.outcome.nodes[result.node].runs.append(result)
            if live:
                mark = "✓" if result.ok else "✗"
                how = "" if result.ok else f" ({result.stopped or f'exit {result.returncode}'})"
                summary = _json_line(result.output) if result.ok else None
                changes = summary.get("changes") if summary is not None else None
                note = ""
                if isinstance(changes, int):
                    verb = "would change" if self.opts.dry_run else "changed"
                    note = f": {verb} {changes}" if changes else ": nothing to change"
                    self.outcome.nodes[result.node].changes[result.command] = changes
                self.report(f" {mark} {result.command} on {result.node}{how} ({result.seconds:.1f}s){note}")

        runner = Runner(parallel=self.opts.parallel, on_done=done)
        before = {n: len(o.runs) for n, o in self.outcome.nodes.items()}
        try:
            return runner.run(tasks)
        except KeyboardInterrupt as exc:
            later = {n for phase in self._plan[self._index + 1:] for n in phase.nodes}
            for node, outcome in self.outcome.nodes.items():
                fresh = outcome.runs[before[node]:]
                if any(r.stopped == "interrupted" or not r.ok for r in fresh):
                    last = fresh[-1]
                    why = "stopped: the cluster run was interrupted" if last.stopped else f"exit {last.returncode}"
                    self._fail(node, f"{last.command} {why}", last)
                elif outcome.state != FAILED and (node in later or (any(t.node == node for t in tasks)
                                                                    and not fresh)):
                    outcome.state = NOT_STARTED
            self.outcome.ok, self.outcome.interrupted = False, True
            self.outcome.stopped_at = self._phase
            raise ClusterInterrupted(self.outcome, exc) from None

    def _fail(self, node: str, error: str, result: Result | None = None) -> None:
        outcome = self.outcome.nodes[node]
        outcome.state, outcome.error = FAILED, error
        outcome.tail = result.tail() if result is not None else []

    def _stop(self, where: str, message: str) -> ClusterFailed:
        self.outcome.ok, self.outcome.stopped_at = False, where
        return ClusterFailed(self.outcome, message)

    # --- connect and pre-flight -----------------------------------------------------------

    def connect(self) -> list[str]:
        """Open a connection to every node that needs one; the nodes that failed, each with the reason."""
        self._phase = "connect"
        tasks = []
        for node, end in self.endpoints.items():
            argv = end.transport.connect_argv(node)
            if argv is not None:
                tasks.append(Task(node, "connect", Launch(argv), self._log(node), QUICK_TIMEOUT))
        failed = []
        for result in self._run(tasks, live=False):
            outcome = self.outcome.nodes[result.node]
            outcome.reachable = result.ok
            if not result.ok:
                why = self.endpoints[result.node].transport.diagnose(result.node, result.output)
                self._fail(result.node, why, result)
                failed.append(result.node)
        for node in self.endpoints:
            if self.outcome.nodes[node].reachable is None and node not in failed:
                self.outcome.nodes[node].reachable = True
        return failed

    def gather(self) -> list[str]:
        """Facts (version, journal, interface) of every reachable node; the nodes that failed pre-flight.

        One call per node. Where it fails, `lazyjack version` there says whether another version
        (which may not know the call) or no lazyjack at all is the reason.
        """
        self._phase = phases.PREFLIGHT
        reachable = [n for n in self.endpoints if self.outcome.nodes[n].reachable]
        facts = self._run([self._task(n, "facts", [*self._argv(n, config=False), "_node", "facts", "--remote-config",
                                                   self.endpoints[n].config],
                                      root=True, attached=False, timeout=QUICK_TIMEOUT, stdin=self.data)
                           for n in reachable], live=False)
        failed: dict[str, Result] = {}
        for result in facts:
            outcome = self.outcome.nodes[result.node]
            answer = _json_line(result.output) if result.ok else None
            if answer is None:
                failed[result.node] = result
                continue
            outcome.version = str(answer["version"])
            outcome.applied = str(answer["applied"])
            outcome.config_pushed = answer["config"] != "same"
            if not self._same_version(result.node):
                continue
            if not answer["interface_exists"] and self.opts.require_interfaces:
                self._fail(result.node, f"interface {answer['interface']} (topology.{result.node}.interface) "
                           "does not exist there")
        if failed:
            self._explain(failed)
        return [n for n in reachable if self.outcome.nodes[n].state == FAILED]

    def _same_version(self, node: str) -> bool:
        outcome = self.outcome.nodes[node]
        if outcome.version == __version__:
            return True
        program = " ".join(self.endpoints[node].lazyjack)
        self._fail(node, f"runs lazyjack {outcome.version} ({program}), this is lazyjack {__version__}: "
                   "install the same version on every node")
        return False

    def _explain(self, failed: dict[str, Result]) -> None:
        """Why facts failed on these nodes: another lazyjack, none, or (same version) the error it gave."""
        # As root like every other call: the program may be readable by root only.
        versions = self._run([self._task(n, "version", [*self.endpoints[n].lazyjack, "version"], root=True,
                                         attached=False, timeout=QUICK_TIMEOUT) for n in failed], live=False)
        for result in versions:
            words = result.output.split()
            program = " ".join(self.endpoints[result.node].lazyjack)
            if not result.ok or "version" not in words[:-1]:
                self._fail(result.node, f"`{program} version` failed (exit {result.returncode}): is lazyjack "
                           f"{__version__} installed there? (--remote-lazyjack PATH names it)", result)
                continue
            self.outcome.nodes[result.node].version = words[words.index("version") + 1]
            if self._same_version(result.node):
                facts = failed[result.node]
                self._fail(result.node, f"reading its state failed (exit {facts.returncode})", facts)

    # --- acting ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        """The whole run; raises ClusterFailed (with the outcome) or ClusterInterrupted."""
        action = self.opts.action
        start = time.monotonic()
        unreachable = self.connect()
        bad = unreachable + self.gather()
        if bad:
            raise self._stop(phases.PREFLIGHT, f"pre-flight failed on {', '.join(sorted(set(bad)))}; "
                             "nothing was changed on any node")
        self.report(f" ✓ pre-flight on {len(self.endpoints)} node(s): reachable, lazyjack {__version__}, "
                    f"interfaces present ({time.monotonic() - start:.1f}s)")
        applied = {n: o.applied or phases.NOTHING for n, o in self.outcome.nodes.items()}
        plan = phases.plan_run(action, node_infos(self.config), needs_init=needs_init(self.config), applied=applied)
        self._plan = plan
        for index, phase in enumerate(plan):
            self._phase, self._index = phase.title, index
            self.before(phase)
            if phase.command == "init":
                ok = self._init(phase)
            elif phase.command == PUSH:
                ok = self._push(phase)
            else:
                ok = self._act(phase)
            if not ok:
                for later in plan[index + 1:]:
                    for node in later.nodes:
                        if self.outcome.nodes[node].state != FAILED:
                            self.outcome.nodes[node].state = NOT_STARTED
                failed = sorted(n for n, o in self.outcome.nodes.items() if o.state == FAILED)
                raise self._stop(phase.title, f"{phase.command} failed on {', '.join(failed)}; no further phase "
                                 "was started (each failed node rolled its own run back)")
            if self._stop_after_init:
                break
        for outcome in self.outcome.nodes.values():
            outcome.state = DONE
        return self.outcome

    def _act(self, phase: Phase) -> bool:
        self.report(f"{phase.title}: {', '.join(phase.nodes)}")
        extra = self.opts.extra.get(phase.command, [])
        dry = ["--dry-run", "--summary-json"] if self.opts.dry_run else ["--summary-json"]
        timeout = self.config.kubeadm_timeout + ACT_MARGIN
        tasks = [self._task(n, phase.command, self._argv(n, phase.command, *extra, *dry), root=True,
                            attached=not self.opts.dry_run, timeout=timeout,
                            stdin=self.data if self.opts.dry_run else None) for n in phase.nodes]
        ok = True
        for result in self._run(tasks):
            if result.ok:
                self.outcome.nodes[result.node].state = DONE
            else:
                ok = False
                how = f"exit {result.returncode}" if result.returncode is not None else "timed out"
                self._fail(result.node, f"{result.command} failed ({how})", result)
        return ok

    def _push(self, phase: Phase) -> bool:
        if self.opts.dry_run:
            pushed = [n for n in phase.nodes if self.outcome.nodes[n].config_pushed]
        else:
            results = self._run([self._push_task(n) for n in phase.nodes], live=False)
            pushed = []
            for result in results:
                answer = _json_line(result.output) if result.ok else None
                if answer is None:
                    self._fail(result.node, f"writing the config to {self.endpoints[result.node].config} failed",
                               result)
                    continue
                self.outcome.nodes[result.node].config_pushed = bool(answer["changed"])
                if answer["changed"]:
                    pushed.append(result.node)
            if any(self.outcome.nodes[n].state == FAILED for n in phase.nodes):
                return False
        verb = "would get" if self.opts.dry_run else "got"
        same = [n for n in phase.nodes if n not in pushed]
        self.report(f" ✓ config: {verb} a new copy: {', '.join(pushed) or 'none'}"
                    + (f"; unchanged on {', '.join(same)}" if same else ""))
        return True

    def _push_task(self, node: str) -> Task:
        argv = [*self._argv(node, config=False), "_node", "push-config", "--remote-config", self.endpoints[node].config]
        return self._task(node, "push config", argv, root=True, attached=False, timeout=QUICK_TIMEOUT, stdin=self.data)

    def _init(self, phase: Phase) -> bool:
        """init on the master with the config there; its token and CA hash come back into the local config."""
        (master,) = phase.nodes
        if self.opts.dry_run:
            ok = self._act(Phase("init", (master,)))
            self._stop_after_init = True
            note = ("the other phases need the token and CA hash init makes: run without --dry-run to make them, "
                    "then --dry-run shows every node's plan")
            self.outcome.notes.append(note)
            self.report(f"   ({note})")
            return ok
        (pushed,) = self._run([self._push_task(master)], live=False)
        if not pushed.ok:
            self._fail(master, "writing the config for init failed", pushed)
            return False
        if not self._act(Phase("init", (master,))):
            return False
        (read,) = self._run([self._task(master, "read config", [*self._argv(master, config=False), "_node",
                                        "read-config", "--remote-config", self.endpoints[master].config],
                                        root=True, attached=False, timeout=QUICK_TIMEOUT)], live=False)
        answer = _json_line(read.output) if read.ok else None
        if answer is None:
            self._fail(master, "reading back the token init wrote failed", read)
            return False
        self._adopt(master, str(answer["token"]), str(answer["token-cert-hash"]))
        return True

    def _adopt(self, master: str, token: str, digest: str) -> None:
        """Write the master's token and hash into the local config (comments and order kept), 0600."""
        from lazyjack.config import load_config
        from lazyjack.config.edit import SECRET_MODE, update_config_file

        path = self.opts.config_path
        # 0600 as it is written, not after: never a moment readable by others with the token in it.
        update_config_file(path, {"token": token, "token-cert-hash": digest}, mode=SECRET_MODE)
        self.data = path.read_bytes()
        self.config = load_config(path, require_token=False)
        self.report(f" ✓ token and CA hash from {master} written into {path} (mode 0600: it now holds a secret)")


def _json_line(output: str) -> dict[str, object] | None:
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def status(run: ClusterRun) -> Outcome:
    """Reachable, lazyjack version and what each node's journal says; changes nothing."""
    run.connect()
    run.gather()
    run.outcome.ok = all(o.state != FAILED for o in run.outcome.nodes.values())
    return run.outcome
