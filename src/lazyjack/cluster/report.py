"""A cluster run's results as a table for people or JSON for scripts."""

from __future__ import annotations

import json

from lazyjack.cluster.orchestrate import FAILED, Outcome

TAIL = 8


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]


def _details(outcome: Outcome) -> list[str]:
    """The last lines of output of each failed node."""
    lines = []
    for name, node in outcome.nodes.items():
        tail = node.error.splitlines()[1:] + node.tail[-TAIL:] if node.state == FAILED else []
        if tail:
            lines.append(f"  {name}, last lines:")
            lines += [f"    {line}" for line in tail]
    return lines


def result_table(outcome: Outcome) -> list[str]:
    """Per node: done / failed (its error and last lines of output) / not started."""
    rows: list[tuple[str, ...]] = [("NODE", "RESULT", "RAN", "DETAIL")]
    for name, node in outcome.nodes.items():
        ran = ", ".join(f"{r.command}{'' if r.ok else ' ✗'}" for r in node.runs
                        if r.command not in ("connect", "version", "facts", "read config")) or "-"
        rows.append((name, node.state, ran, node.error.splitlines()[0] if node.error else ""))
    return [*_table(rows), *_details(outcome), f"  logs: {outcome.log_dir}/NODE.log"]


def status_table(outcome: Outcome) -> list[str]:
    rows: list[tuple[str, ...]] = [("NODE", "REACHABLE", "VERSION", "APPLIED", "CONFIG", "PROBLEM")]
    for name, node in outcome.nodes.items():
        config = "-" if node.config_pushed is None else ("differs" if node.config_pushed else "same")
        rows.append((name, {True: "yes", False: "no", None: "-"}[node.reachable], node.version or "-",
                     node.applied or "-", config, node.error.splitlines()[0] if node.error else ""))
    return [*_table(rows), *_details(outcome)]


def as_json(outcome: Outcome) -> str:
    return json.dumps(outcome.to_json(), indent=1, ensure_ascii=False)
