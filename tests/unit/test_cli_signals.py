"""SIGTERM during `lazyjack` unwinds like Ctrl-C: exit 143 with a one-line message, handler restored after."""

from __future__ import annotations

import argparse
import os
import signal

import pytest

from lazyjack import cli


def test_sigterm_while_acting_exits_143_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unwound: list[str] = []

    def acting(args: argparse.Namespace, out: list[str]) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            # Python runs the handler as soon as kill() returns: this line is never reached.
            unwound.append("not interrupted")
            return cli.EXIT_OK
        finally:
            unwound.append("finally")  # where rollbacks and the release of the node lock happen

    monkeypatch.setattr(cli, "_run", acting)
    assert cli.main(["version"]) == cli.EXIT_TERMINATED == 143
    assert unwound == ["finally"]
    err = capsys.readouterr().err
    assert err == "lazyjack: terminated (SIGTERM)\n"


def test_ctrl_c_still_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace, out: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["version"]) == cli.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "lazyjack: interrupted\n"


def test_previous_sigterm_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["version"]) == cli.EXIT_OK
    assert signal.getsignal(signal.SIGTERM) == before
