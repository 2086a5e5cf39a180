"""Marker-tagged edits of /etc/hosts and /etc/resolv.conf and their inverse, as pure functions.

The markers are the contract with lazyjack 1.x (docs/ARCHITECTURE.md, "The 1.x markers"), so a node
prepared by either version can be cleaned by the other:

- a line we add ends with two spaces and ``#[+]`` (``fd00:20::2 my-master  #[+]``);
- a line we disable is prefixed with ``#[-] ``.

Every transform starts from :func:`clean_markers` of its input, so applying it twice
gives the same text as applying it once, and cleaning its output gives back the
input. The price: text that already holds marker-like lines is taken to have been
prepared before (see :func:`clean_markers`).

Only ``\\n`` ends a line; every other character, ``\\r`` included, is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import ip_address

from lazyjack.addresses import IPAddr

ADD_MARK = "#[+]"
DEL_MARK = "#[-] "


# glibc splits hosts fields at any C-locale space (hosts(5) names blanks and tabs; a
# CRLF file leaves a \r after the last name); "#" starts a comment anywhere.
_HOSTS_BLANKS = " \t\v\f\r"
_HOSTS_FIELD_SEP = re.compile(f"[{_HOSTS_BLANKS}]+")

# glibc's res_init: the keyword stands at the very start of the line, is followed by a
# blank, and the address ends at the first blank, "#" or ";".
_NAMESERVER = re.compile(r"nameserver[ \t]+([^ \t#;\n]*)")


def clean_markers(text: str) -> str:
    """Undo the edits of :func:`hosts_with_nodes` or :func:`resolv_with_nameserver`.

    Drops every line that ends with ``#[+]`` (trailing whitespace allowed) and strips
    one leading ``#[-] `` from every line, as lazyjack 1.x's clean did; 1.x only
    dropped lines ending with two spaces and the marker, so its files are covered.

    When the dropped line is the last one and has no newline, the newline before it is
    dropped too: our transforms add that newline to a file that lacked one, and
    removing it gives back the file byte for byte. (1.x always ended its output with
    a newline, so this never applies to its files.)

    A line of the original file that itself ends with ``#[+]`` or starts with
    ``#[-] `` cannot be told apart from our edits: it is treated as one of them, so
    such a file does not round-trip.
    """
    kept: list[str] = []
    for line in _split_lines(text):
        if _is_added(line):
            if not line.endswith("\n") and kept:
                kept[-1] = kept[-1].removesuffix("\n")
            continue
        kept.append(line.removeprefix(DEL_MARK))
    return "".join(kept)


def has_markers(text: str) -> bool:
    """Tell whether :func:`clean_markers` would change ``text``."""
    return any(_is_added(line) or line.startswith(DEL_MARK) for line in _split_lines(text))


def hosts_with_nodes(text: str, entries: Sequence[tuple[str, IPAddr]]) -> str:
    """Return /etc/hosts ``text`` edited so that every node name resolves to its IP.

    ``entries`` holds ``(name, ip)`` for every cluster node, in the order the lines are
    to be appended (the caller sorts by name). Starting from the cleaned text:

    - an uncommented line whose IP field is an address and whose host names (the
      fields after the IP, up to a ``#`` comment) include a node name with another IP
      is disabled as a whole, other names included, as 1.x did; names are compared as
      whole tokens, ignoring ASCII case as the resolver does, never as substrings;
    - a line that maps a node to its IP (compared as addresses, so ``fd00:20:0::2``
      equals ``fd00:20::2``) and is not disabled is kept, and no line is added for
      that node;
    - for every other node ``"{ip} {name}  #[+]"`` is appended.

    All other bytes are kept. Names are expected to be valid host names (the
    configuration checks them).
    """
    lines = _split_lines(clean_markers(text))
    satisfied = [False] * len(entries)
    for index, line in enumerate(lines):
        mapping = _hosts_mapping(line)
        if mapping is None:
            continue
        line_ip, names = mapping
        named = [i for i, (name, _) in enumerate(entries) if name.lower() in names]
        # The resolver answers with the first line that names the host, so a stale
        # mapping has to go even when it carries other names as well.
        if any(entries[i][1] != line_ip for i in named):
            lines[index] = DEL_MARK + line
        else:
            for i in named:
                satisfied[i] = True
    missing = [f"{ip} {name}  {ADD_MARK}" for (name, ip), done in zip(entries, satisfied, strict=True) if not done]
    return _append(lines, missing)


def resolv_with_nameserver(text: str, nameserver: IPAddr) -> str:
    """Return /etc/resolv.conf ``text`` edited so that ``nameserver`` is asked first.

    Starting from the cleaned text: if the first ``nameserver`` line already names
    that address (compared as addresses), the text is returned as it is. Otherwise
    ``"nameserver {ip}  #[+]"`` is inserted before the first ``nameserver`` line, and
    later ``nameserver`` lines with the same address are disabled, since they would
    only use up one of the resolver's few nameserver slots. With no ``nameserver``
    line at all, the line is appended.

    A ``nameserver`` line is one that starts with the keyword and a blank, as glibc
    reads it; an indented or commented one does not count.
    """
    lines = _split_lines(clean_markers(text))
    servers = [(i, address) for i, line in enumerate(lines) if (address := _nameserver_of(line)) is not None]
    ours = f"nameserver {nameserver}  {ADD_MARK}"
    if not servers:
        return _append(lines, [ours])
    first_index, first_address = servers[0]
    if _parse_ip(first_address) == nameserver:
        return "".join(lines)
    for index, address in servers:
        if _parse_ip(address) == nameserver:
            lines[index] = DEL_MARK + lines[index]
    lines.insert(first_index, ours + "\n")
    return "".join(lines)


def _split_lines(text: str) -> list[str]:
    """Split ``text`` after each ``\\n`` (kept), so that joining gives ``text`` back.

    str.splitlines would also break at \\r, \\v, \\x1c and friends, which the files'
    readers treat as ordinary characters.
    """
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _is_added(line: str) -> bool:
    return line.rstrip().endswith(ADD_MARK)


def _append(lines: list[str], added: list[str]) -> str:
    """Join ``lines`` and append ``added``, each on its own line.

    A last line without newline gets one, and the last added line then goes without,
    so that :func:`clean_markers` can restore the missing newline exactly.
    """
    body = "".join(lines)
    if not added:
        return body
    if body and not body.endswith("\n"):
        return body + "\n" + "\n".join(added)
    return body + "".join(line + "\n" for line in added)


def _parse_ip(field: str) -> IPAddr | None:
    try:
        return ip_address(field)
    except ValueError:
        return None


def _hosts_mapping(line: str) -> tuple[IPAddr, frozenset[str]] | None:
    """Return the address and lower-cased names of a hosts entry, or None for any other line.

    The resolver skips lines whose first field is not an address, so they are left alone.
    """
    before_comment = line.removesuffix("\n").split("#", 1)[0]
    fields = _HOSTS_FIELD_SEP.split(before_comment.strip(_HOSTS_BLANKS))
    address = _parse_ip(fields[0])
    if address is None or len(fields) < 2:
        return None
    return address, frozenset(name.lower() for name in fields[1:])


def _nameserver_of(line: str) -> str | None:
    """Return the address field of a ``nameserver`` line (maybe not an address), else None."""
    match = _NAMESERVER.match(line)
    return match.group(1) if match else None
