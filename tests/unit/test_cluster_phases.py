"""The phase plan of `lazyjack cluster` as data: (topology, action, facts) -> phases."""

from __future__ import annotations

import pytest

from lazyjack.cluster.phases import PUSH, NodeInfo, Phase, plan_run

GW = NodeInfo("gw", ("master", "dns64", "nat64"))
MASTER = NodeInfo("m", ("master",))
DNS = NodeInfo("dns", ("dns64", "nat64"))
A, B, C = (NodeInfo(n, ("minion",)) for n in ("a", "b", "c"))
ALL = ("gw", "a", "b")


def steps(phases: list[Phase]) -> list[tuple[str, tuple[str, ...]]]:
    return [(p.command, p.nodes) for p in phases]


@pytest.mark.parametrize(("action", "nodes", "kwargs", "expected"), [
    # The master is the DNS64/NAT64 node: it is prepared first, alone; then the minions at once.
    ("prepare", [GW, A, B], {}, [(PUSH, ALL), ("prepare", ("gw",)), ("prepare", ("a", "b"))]),
    ("up", [GW, A, B], {}, [(PUSH, ALL), ("prepare", ("gw",)), ("prepare", ("a", "b")),
                            ("up", ("gw",)), ("up", ("a", "b"))]),
    # Secure without a token: init on the master before anything else.
    ("up", [A, GW, B], {"needs_init": True}, [("init", ("gw",)), (PUSH, ("a", "gw", "b")), ("prepare", ("gw",)),
                                              ("prepare", ("a", "b")), ("up", ("gw",)), ("up", ("a", "b"))]),
    # A DNS64/NAT64 node of its own: first; the master second; it never runs up or down.
    ("up", [MASTER, A, DNS, B], {}, [(PUSH, ("m", "a", "dns", "b")), ("prepare", ("dns",)), ("prepare", ("m",)),
                                     ("prepare", ("a", "b")), ("up", ("m",)), ("up", ("a", "b"))]),
    ("down", [MASTER, A, DNS, B], {}, [(PUSH, ("m", "a", "dns", "b")), ("down", ("a", "b")), ("down", ("m",))]),
    # clean: down only where a node is up (minions first), then all at once, DNS64/NAT64 last.
    ("clean", [MASTER, A, DNS, B, C], {"applied": {"m": "up", "a": "up", "b": "prepared", "c": "nothing"}},
     [(PUSH, ("m", "a", "dns", "b", "c")), ("down", ("a",)), ("down", ("m",)),
      ("clean", ("m", "a", "b", "c")), ("clean", ("dns",))]),
    ("clean", [GW, A], {}, [(PUSH, ("gw", "a")), ("clean", ("a",)), ("clean", ("gw",))]),
    # init only for prepare and up: down and clean need no token.
    ("down", [GW, A], {"needs_init": True}, [(PUSH, ("gw", "a")), ("down", ("a",)), ("down", ("gw",))]),
    # A lone master: no empty phases.
    ("up", [MASTER], {}, [(PUSH, ("m",)), ("prepare", ("m",)), ("up", ("m",))]),
])
def test_plan(action: str, nodes: list[NodeInfo], kwargs: dict[str, object],
              expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert steps(plan_run(action, nodes, **kwargs)) == expected  # type: ignore[arg-type]


def test_titles_say_why() -> None:
    titles = [p.title for p in plan_run("up", [GW, A])]
    assert titles == [PUSH, "prepare (DNS64/NAT64)", "prepare (the others)", "up (master)", "up (minions)"]


def test_unknown_action() -> None:
    with pytest.raises(ValueError, match="unknown cluster action 'status'"):
        plan_run("status", [GW])
