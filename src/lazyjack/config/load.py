"""Reading the configuration file: bytes to plain Python values, with the line of every key.

YAML problems (syntax, duplicate keys, binary input, alias bombs) become `Problem`s;
the round-trip document is kept so that `init` can write the token back with the
file's comments and key order intact.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazyjack.errors import ConfigError, Problem

MAX_BYTES = 4 * 1024 * 1024
#: Values a document may expand to once aliases are followed; a real config has a few hundred.
MAX_VALUES = 100_000
MAX_FLOW_DEPTH = 64

KeyPath = tuple[str, ...]


@dataclass
class Source:
    """A parsed configuration file."""

    path: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    document: Any = None

    def line(self, path: KeyPath) -> int | None:
        """The 1-based line of the deepest key of `path` that the file has."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None


def _fail(path: str, message: str, line: int | None = None) -> ConfigError:
    return ConfigError(path, [Problem("", message, line)])


def read_config(path: str | Path) -> Source:
    """Read and parse the file at `path`; raise ConfigError naming the file on any problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise _fail(
            name,
            "the configuration file does not exist; give one with --config FILE (examples: lazyjack validate --help)",
        ) from None
    except IsADirectoryError:
        raise _fail(name, "is a directory, not a configuration file") from None
    except OSError as exc:
        raise _fail(name, f"cannot be read: {exc.strerror}") from None
    return parse_config(raw, name=name)


def parse_config(raw: bytes, *, name: str = "<config>") -> Source:
    """Parse configuration bytes into plain values and a line map."""
    if len(raw) > MAX_BYTES:
        raise _fail(name, f"is {len(raw)} bytes; a configuration file may be at most {MAX_BYTES}")
    if b"\0" in raw:
        raise _fail(name, "is a binary file (it contains NUL bytes), not YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(name, f"is not UTF-8 text (byte {exc.start} cannot be decoded)", line) from None
    if not text.strip():
        raise _fail(name, "is empty; it needs at least the general, topology and network sections")

    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    depth = _flow_depth(text)
    if depth > MAX_FLOW_DEPTH:
        raise _fail(name, f"YAML nesting is too deep ([ and {{ {depth} levels; at most {MAX_FLOW_DEPTH})")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        # The document was composed in full before a duplicate is found, so it parses again.
        duplicate = _duplicate_key(text) if isinstance(exc, DuplicateKeyError) else None
        if duplicate is not None:
            key, first, again = duplicate
            seen = f"line {first}" if first == again else f"lines {first} and {again}"
            raise ConfigError(name, [Problem(".".join(key), f"is given twice ({seen}); keep one", again)]) from None
        mark = exc.problem_mark or exc.context_mark
        where = f", column {mark.column + 1}" if mark is not None else ""
        what = exc.problem or "invalid YAML"
        raise _fail(name, f"YAML error{where}: {what}", mark.line + 1 if mark is not None else None) from None
    except YAMLError as exc:
        raise _fail(name, f"YAML error: {exc}") from None
    except RecursionError:
        raise _fail(name, "YAML nesting is too deep") from None

    if not isinstance(document, dict):
        from lazyjack.config.schema import describe

        raise _fail(name, f"the top level must be a mapping of sections, got {describe(plain_scalar(document))}")
    lines: dict[KeyPath, int] = {}
    budget = [MAX_VALUES]
    try:
        data = _plain(document, (), lines, budget)
    except _TooBig:
        raise _fail(
            name, f"expands to more than {MAX_VALUES} values (anchors and aliases); refusing to read it"
        ) from None
    except RecursionError:
        raise _fail(name, "YAML nesting is too deep (a recursive alias?)") from None
    return Source(path=name, data=data, lines=lines, document=document)


def _flow_depth(text: str) -> int:
    """The deepest nesting of YAML flow brackets; ruamel's parser slows sharply on deep nesting."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


class _TooBig(Exception):
    pass


@dataclass
class _Frame:
    path: KeyPath
    mapping: bool
    keys: dict[str, int] = field(default_factory=dict)
    key: str | None = None  # in a mapping: the key whose value comes next; None while a key is due
    index: int = 0


def _duplicate_key(text: str) -> tuple[KeyPath, int, int] | None:
    """The path of the first key given twice in one mapping, with both lines (1-based).

    ruamel's error names only the key; walking the parser's events (no recursion, no
    alias expansion) finds the section it is in.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, MappingStartEvent, NodeEvent, ScalarEvent

    stack: list[_Frame] = []
    for event in YAML(typ="rt").parse(text):
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, NodeEvent):
            continue
        path: KeyPath = ()
        if stack:
            top = stack[-1]
            if top.mapping and top.key is None:
                key = str(event.value) if isinstance(event, ScalarEvent) else "?"
                line = event.start_mark.line + 1
                if key in top.keys:
                    return (*top.path, key), top.keys[key], line
                top.keys[key] = line
                top.key = key
                path = (*top.path, key)
            elif top.mapping:
                path, top.key = (*top.path, str(top.key)), None
            else:
                path, top.index = (*top.path, str(top.index)), top.index + 1
        if isinstance(event, CollectionStartEvent):
            stack.append(_Frame(path, isinstance(event, MappingStartEvent)))
    return None


def plain_scalar(value: Any) -> Any:
    """Turn ruamel's scalar subclasses into plain bool/int/float/str."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _plain(node: Any, path: KeyPath, lines: dict[KeyPath, int], budget: list[int]) -> Any:
    # Aliases make one parsed object appear many times; count every visit so that an
    # alias bomb stops here instead of exhausting memory.
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        lc = getattr(node, "lc", None)
        for key, value in node.items():
            skey = str(plain_scalar(key))
            sub = (*path, skey)
            if lc is not None and sub not in lines:
                with contextlib.suppress(KeyError, TypeError):
                    lines[sub] = lc.key(key)[0] + 1
            out[skey] = _plain(value, sub, lines, budget)
        return out
    if isinstance(node, list):
        return [_plain(item, (*path, str(i)), lines, budget) for i, item in enumerate(node)]
    return plain_scalar(node)
