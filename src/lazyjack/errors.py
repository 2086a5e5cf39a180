"""The exception hierarchy: every error lazyjack raises on purpose derives from LazyjackError."""

from __future__ import annotations


class LazyjackError(Exception):
    """Base of every error lazyjack raises on purpose; the CLI maps subclasses to exit codes."""

    exit_code = 1


def expected_failure(exc: BaseException) -> bool:
    """True for lazyjack's own errors and the host's (OSError); False for a ValueError, KeyError, ..."""
    return isinstance(exc, LazyjackError | OSError)


def describe_failure(exc: BaseException) -> str:
    """A failure as a user reads it: lazyjack's own errors and the host's by their message, any other
    exception with its type as well (`KeyError: 'path'` says nothing without it)."""
    return str(exc) if expected_failure(exc) else f"{type(exc).__name__}: {exc}"


class UsageError(LazyjackError):
    """The command line is wrong."""

    exit_code = 2


class Problem:
    """One thing wrong with the configuration: where, what value, and what would be valid.

    A plain class rather than a dataclass: every command, `version` too, imports this module,
    and the dataclasses module costs milliseconds of start-up (it imports inspect).
    """

    __slots__ = ("line", "message", "path")

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.message = message
        self.line = line

    def _fields(self) -> tuple[str, str, int | None]:
        return self.path, self.message, self.line

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Problem(path={self.path!r}, message={self.message!r}, line={self.line!r})"

    def __str__(self) -> str:
        where = f"{self.path}" if self.path else "(file)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class ConfigError(LazyjackError):
    """The configuration file cannot be used; carries every problem found."""

    exit_code = 2

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{source}: {count} {noun} in the configuration:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class HostError(LazyjackError):
    """A change to the host failed while acting."""

    exit_code = 1


class PreflightError(LazyjackError):
    """The host is not fit for the command; nothing was changed."""

    exit_code = 1


class CommandFailed(HostError):
    """An external program failed; keeps its argv and output for the message."""

    def __init__(self, argv: list[str], returncode: int | None, output: str, *, reason: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        how = reason or f"exited with {returncode}"
        text = f"{' '.join(argv)} {how}"
        if output.strip():
            text += "\n" + output.rstrip()
        super().__init__(text)


class NetlinkFailed(HostError):
    """The kernel refused a netlink request; `.code` is its errno, `.operation` what was asked."""

    def __init__(self, operation: str, code: int, *, detail: str = "") -> None:
        # Imported here so that this class can live at the end of the module.
        import errno
        import os

        self.operation = operation
        self.code = code
        self.detail = detail
        name = errno.errorcode.get(code, str(code))
        text = f"{operation}: {os.strerror(code)} ({name})"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class FileOperationFailed(HostError):
    """Reading or changing a file failed; `.path` is the host path, `.code` the errno."""

    def __init__(self, operation: str, path: str, code: int, *, root: str = "/") -> None:
        import os

        self.operation = operation
        self.path = path
        self.code = code
        where = path if root == "/" else f"{path} (under root {root})"
        super().__init__(f"cannot {operation} {where}: {os.strerror(code)}")
