"""Tests for the /etc/hosts and /etc/resolv.conf transforms: exact text, 1.x files, properties."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazyjack.render.etcfiles import (
    ADD_MARK,
    DEL_MARK,
    clean_markers,
    has_markers,
    hosts_with_nodes,
    resolv_with_nameserver,
)

Address = IPv4Address | IPv6Address
Entries = list[tuple[str, Address]]

MASTER = ("my-master", IPv6Address("fd00:20::2"))
MINION = ("my-minion", IPv6Address("fd00:20::3"))
DNS64 = IPv6Address("fd00:10::100")

DEBIAN_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "127.0.1.1\tmy-master\n"
    "\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "ff02::2 ip6-allrouters\n"
)


# --- /etc/hosts: (original, nodes) -> expected text -------------------------------------

HOSTS_CASES: list[tuple[str, str, Entries, str]] = [
    (
        "debian: the 127.0.1.1 line for this host is disabled, every node appended",
        DEBIAN_HOSTS,
        [MASTER, MINION],
        DEBIAN_HOSTS.replace("127.0.1.1\tmy-master\n", "#[-] 127.0.1.1\tmy-master\n")
        + "fd00:20::2 my-master  #[+]\n"
        + "fd00:20::3 my-minion  #[+]\n",
    ),
    (
        "a line with the right address in another spelling is kept, nothing added for it",
        "::1 localhost\nfd00:20:0::2 my-master\n",
        [MASTER],
        "::1 localhost\nfd00:20:0::2 my-master\n",
    ),
    (
        "exploded spelling is the same address too",
        "fd00:0020:0000:0000:0000:0000:0000:0002\tmy-master\n",
        [MASTER, MINION],
        "fd00:0020:0000:0000:0000:0000:0000:0002\tmy-master\nfd00:20::3 my-minion  #[+]\n",
    ),
    (
        "a node name is a whole token: 'a' matches neither 'alpha' nor 'a.example.com'",
        "10.0.0.1 alpha\n10.0.0.3 a.example.com\n",
        [("a", IPv4Address("10.0.0.2"))],
        "10.0.0.1 alpha\n10.0.0.3 a.example.com\n10.0.0.2 a  #[+]\n",
    ),
    (
        "a stale line with other names is disabled as a whole, as 1.x did",
        "10.0.0.9 my-master my-master.lab mm\n",
        [MASTER],
        "#[-] 10.0.0.9 my-master my-master.lab mm\nfd00:20::2 my-master  #[+]\n",
    ),
    (
        "a line right for one node but wrong for another is disabled; both are appended",
        "fd00:20::2 my-master my-minion\n",
        [MASTER, MINION],
        "#[-] fd00:20::2 my-master my-minion\nfd00:20::2 my-master  #[+]\nfd00:20::3 my-minion  #[+]\n",
    ),
    (
        "comments, also trailing ones, are not host names",
        "# 10.0.0.9 my-master\n10.0.0.8 other # was my-master\n",
        [MASTER],
        "# 10.0.0.9 my-master\n10.0.0.8 other # was my-master\nfd00:20::2 my-master  #[+]\n",
    ),
    (
        "names compare without ASCII case, like the resolver",
        "127.0.1.1 My-Master\n",
        [MASTER],
        "#[-] 127.0.1.1 My-Master\nfd00:20::2 my-master  #[+]\n",
    ),
    (
        "an indented, tab-separated stale line is disabled with its whitespace kept",
        " \t10.0.0.9\tmy-master\t# old\n",
        [MASTER],
        "#[-]  \t10.0.0.9\tmy-master\t# old\nfd00:20::2 my-master  #[+]\n",
    ),
    (
        "a stale line before a right one is disabled, and nothing is added",
        "10.0.0.9 my-master\nfd00:20::2 my-master\n",
        [MASTER],
        "#[-] 10.0.0.9 my-master\nfd00:20::2 my-master\n",
    ),
    (
        "a line whose first field is no address is ignored by the resolver, and by us",
        "my-master 10.0.0.9\n",
        [MASTER],
        "my-master 10.0.0.9\nfd00:20::2 my-master  #[+]\n",
    ),
    (
        "IPv4 nodes, appended in the caller's order",
        "127.0.0.1 localhost\n",
        [("m1", IPv4Address("10.192.0.2")), ("m0", IPv4Address("10.192.0.3"))],
        "127.0.0.1 localhost\n10.192.0.2 m1  #[+]\n10.192.0.3 m0  #[+]\n",
    ),
    (
        "an empty file gets just our lines",
        "",
        [MASTER],
        "fd00:20::2 my-master  #[+]\n",
    ),
    (
        "a file without final newline gets one before our lines; the last one goes without",
        "127.0.0.1 localhost",
        [MASTER, MINION],
        "127.0.0.1 localhost\nfd00:20::2 my-master  #[+]\nfd00:20::3 my-minion  #[+]",
    ),
    (
        "no nodes, no change",
        DEBIAN_HOSTS,
        [],
        DEBIAN_HOSTS,
    ),
]


@pytest.mark.parametrize(
    ("original", "entries", "expected"),
    [case[1:] for case in HOSTS_CASES],
    ids=[case[0] for case in HOSTS_CASES],
)
def test_hosts_with_nodes(original: str, entries: Entries, expected: str) -> None:
    assert hosts_with_nodes(original, entries) == expected
    assert clean_markers(expected) == original
    assert hosts_with_nodes(expected, entries) == expected


def test_hosts_prepared_before_with_other_addresses_gets_the_new_ones() -> None:
    prepared = "127.0.0.1 localhost\n#[-] 127.0.1.1 my-master\nfd00:20::9 my-master  #[+]\nfd00:20::3 my-minion  #[+]\n"
    assert hosts_with_nodes(prepared, [MASTER, MINION]) == (
        "127.0.0.1 localhost\n#[-] 127.0.1.1 my-master\nfd00:20::2 my-master  #[+]\nfd00:20::3 my-minion  #[+]\n"
    )


def test_hosts_entry_no_longer_in_the_cluster_is_restored() -> None:
    prepared = "#[-] 10.0.0.9 old-node\nfd00:20::9 old-node  #[+]\n"
    assert hosts_with_nodes(prepared, [MASTER]) == ("10.0.0.9 old-node\nfd00:20::2 my-master  #[+]\n")


# --- /etc/resolv.conf: (original, nameserver) -> expected text --------------------------

RESOLV_CASES: list[tuple[str, str, Address, str]] = [
    (
        "inserted before the first nameserver",
        "domain example.com\nsearch example.com\nnameserver 192.168.1.1\nnameserver 8.8.8.8\n",
        DNS64,
        "domain example.com\nsearch example.com\n"
        "nameserver fd00:10::100  #[+]\n"
        "nameserver 192.168.1.1\nnameserver 8.8.8.8\n",
    ),
    (
        "systemd-resolved stub file",
        "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
        IPv4Address("10.192.0.2"),
        "nameserver 10.192.0.2  #[+]\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
    ),
    (
        "already first, in another spelling: unchanged",
        "nameserver fd00:10:0::100\nnameserver 8.8.8.8\n",
        DNS64,
        "nameserver fd00:10:0::100\nnameserver 8.8.8.8\n",
    ),
    (
        "already first: a later duplicate is left alone too",
        "nameserver fd00:10::100\nnameserver 8.8.8.8\nnameserver fd00:10::100\n",
        DNS64,
        "nameserver fd00:10::100\nnameserver 8.8.8.8\nnameserver fd00:10::100\n",
    ),
    (
        "already first, with a trailing comment glued to the address",
        "nameserver\t10.96.0.10# cluster\n",
        IPv4Address("10.96.0.10"),
        "nameserver\t10.96.0.10# cluster\n",
    ),
    (
        "present but not first: inserted first, the later line disabled",
        "nameserver 8.8.8.8\nnameserver fd00:10::100 ; old\n",
        DNS64,
        "nameserver fd00:10::100  #[+]\nnameserver 8.8.8.8\n#[-] nameserver fd00:10::100 ; old\n",
    ),
    (
        "no nameserver line: appended",
        "search lab\n",
        DNS64,
        "search lab\nnameserver fd00:10::100  #[+]\n",
    ),
    (
        "indented, commented or misspelt nameserver lines do not count",
        "# nameserver 1.1.1.1\n nameserver 1.1.1.1\n;nameserver 1.1.1.1\nnameservers 1.1.1.1\n",
        DNS64,
        "# nameserver 1.1.1.1\n nameserver 1.1.1.1\n;nameserver 1.1.1.1\nnameservers 1.1.1.1\n"
        "nameserver fd00:10::100  #[+]\n",
    ),
    (
        "a nameserver line without a valid address still is the first one",
        "nameserver bogus\nnameserver fd00:10::100\n",
        DNS64,
        "nameserver fd00:10::100  #[+]\nnameserver bogus\n#[-] nameserver fd00:10::100\n",
    ),
    (
        "empty file",
        "",
        DNS64,
        "nameserver fd00:10::100  #[+]\n",
    ),
    (
        "no final newline, no nameserver: newline added before ours",
        "search lab",
        DNS64,
        "search lab\nnameserver fd00:10::100  #[+]",
    ),
    (
        "no final newline, the inserted line sits before the first nameserver",
        "nameserver 8.8.8.8",
        DNS64,
        "nameserver fd00:10::100  #[+]\nnameserver 8.8.8.8",
    ),
]


@pytest.mark.parametrize(
    ("original", "nameserver", "expected"),
    [case[1:] for case in RESOLV_CASES],
    ids=[case[0] for case in RESOLV_CASES],
)
def test_resolv_with_nameserver(original: str, nameserver: Address, expected: str) -> None:
    assert resolv_with_nameserver(original, nameserver) == expected
    assert clean_markers(expected) == original
    assert resolv_with_nameserver(expected, nameserver) == expected


def test_resolv_prepared_for_another_nameserver_gets_the_new_one() -> None:
    prepared = "nameserver fd00:10::99  #[+]\nnameserver 8.8.8.8\n#[-] nameserver fd00:10::99\n"
    assert resolv_with_nameserver(prepared, DNS64) == (
        "nameserver fd00:10::100  #[+]\nnameserver 8.8.8.8\nnameserver fd00:10::99\n"
    )


# --- Files prepared by lazyjack 1.x ------------------------------------------------------

# 1.x matched names by substring and wrote decimal node IDs into IPv6 addresses; both
# show up in its files (id 10 -> "::10"), and cleaning must still give the original.
ONE_X_HOSTS = [
    (
        DEBIAN_HOSTS,
        DEBIAN_HOSTS.replace("127.0.1.1\tmy-master\n", "#[-] 127.0.1.1\tmy-master\n")
        + "fd00:20::2 my-master  #[+]\n"
        + "fd00:20::10 my-minion  #[+]\n",
    ),
    (
        "127.0.0.1 localhost\n10.0.0.5 alpha\n",
        "127.0.0.1 localhost\n#[-] 10.0.0.5 alpha\n10.192.0.2 a  #[+]\n",
    ),
    (
        "127.0.0.1 localhost\n",
        "127.0.0.1 localhost\n",
    ),
]

ONE_X_RESOLV = [
    (
        "search lab\nnameserver 8.8.8.8\nnameserver fd00:10::100\n",
        "search lab\nnameserver fd00:10::100  #[+]\nnameserver 8.8.8.8\n#[-] nameserver fd00:10::100\n",
    ),
    (
        "search lab\n",
        "search lab\nnameserver fd00:10::100  #[+]\n",
    ),
]


@pytest.mark.parametrize(("original", "prepared"), ONE_X_HOSTS + ONE_X_RESOLV)
def test_clean_restores_files_prepared_by_1x(original: str, prepared: str) -> None:
    assert clean_markers(prepared) == original


@pytest.mark.parametrize(("original", "prepared"), ONE_X_HOSTS)
def test_hosts_prepared_by_1x_is_prepared_as_if_fresh(original: str, prepared: str) -> None:
    nodes: Entries = [("a", IPv4Address("10.192.0.2")), ("my-master", MASTER[1]), MINION]
    assert hosts_with_nodes(prepared, nodes) == hosts_with_nodes(original, nodes)


@pytest.mark.parametrize(("original", "prepared"), ONE_X_RESOLV)
def test_resolv_prepared_by_1x_is_prepared_as_if_fresh(original: str, prepared: str) -> None:
    assert resolv_with_nameserver(prepared, DNS64) == resolv_with_nameserver(original, DNS64)
    assert resolv_with_nameserver(prepared, DNS64) == prepared


def test_1x_hosts_substring_victim_is_left_enabled_by_us() -> None:
    prepared = ONE_X_HOSTS[1][1]
    assert hosts_with_nodes(prepared, [("a", IPv4Address("10.192.0.2"))]) == (
        "127.0.0.1 localhost\n10.0.0.5 alpha\n10.192.0.2 a  #[+]\n"
    )


# --- Markers in the original text: taken as ours (documented, cannot round-trip) ----------


def test_original_line_ending_in_add_mark_is_taken_as_ours() -> None:
    original = "10.0.0.1 foo #[+]\n10.0.0.2 bar\n"
    assert has_markers(original)
    assert clean_markers(original) == "10.0.0.2 bar\n"
    assert ADD_MARK not in hosts_with_nodes(original, [])


def test_original_line_starting_with_del_mark_is_taken_as_ours() -> None:
    original = "#[-] 10.0.0.1 foo\n"
    assert clean_markers(original) == "10.0.0.1 foo\n"
    assert hosts_with_nodes(original, [("foo", IPv4Address("10.0.0.1"))]) == "10.0.0.1 foo\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", False),
        (DEBIAN_HOSTS, False),
        ("# see #[+] and #[-] in the docs\n", False),
        ("#[-]10.0.0.1 no-space-after-mark\n", False),
        ("fd00:20::2 my-master  #[+]\n", True),
        ("fd00:20::2 my-master #[+] \t", True),
        ("x\n#[-] 10.0.0.1 foo\n", True),
    ],
)
def test_has_markers(text: str, expected: bool) -> None:
    assert has_markers(text) is expected


# --- Properties ---------------------------------------------------------------------------

NAME_POOL = ["a", "ab", "alpha", "master", "my-master", "my-master2", "minion", "b"]
IP_POOL: list[Address] = [
    IPv4Address("127.0.0.1"),
    IPv4Address("127.0.1.1"),
    IPv4Address("10.192.0.2"),
    IPv6Address("::1"),
    IPv6Address("fd00:20::2"),
    IPv6Address("fd00:20::3"),
    IPv6Address("fd00:10::100"),
]

# Any character but newline that UTF-8 can encode (files are UTF-8, so no surrogates).
_free_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=24)
_blanks = st.sampled_from([" ", "  ", "\t", " \t"])
_lead = st.sampled_from(["", "", " ", "\t"])
_names = st.one_of(
    st.sampled_from(NAME_POOL),
    st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True),
)
_ips: st.SearchStrategy[Address] = st.one_of(st.sampled_from(IP_POOL), st.ip_addresses())
_nodes = st.lists(st.tuples(_names, _ips), unique_by=lambda entry: entry[0], max_size=5)


def _no_markers(text: str) -> bool:
    """Independent of the module: no line ends in the add mark or starts with the del mark."""
    return not any(line.rstrip().endswith(ADD_MARK) or line.startswith(DEL_MARK) for line in text.split("\n"))


def _spelling(address: Address) -> st.SearchStrategy[str]:
    return st.sampled_from([str(address), address.exploded])


@st.composite
def _file(draw: st.DrawFn, line: st.SearchStrategy[str]) -> str:
    body = "\n".join(draw(st.lists(line, max_size=10)))
    return body + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def _hosts_case(draw: st.DrawFn, *, junk: bool = True) -> tuple[str, Entries]:
    entries = draw(_nodes)
    # Lines mostly use the nodes' own names and addresses, so that matches, stale
    # lines and right lines are all common.
    names = st.one_of(
        st.sampled_from([name for name, _ in entries] or NAME_POOL),
        _names,
        _names.map(str.upper),
    )
    ips = st.one_of(st.sampled_from([ip for _, ip in entries] or IP_POOL), _ips)

    @st.composite
    def entry(d: st.DrawFn) -> str:
        text = d(_lead) + d(ips.flatmap(_spelling))
        for name in d(st.lists(names, min_size=1, max_size=4)):
            text += d(_blanks) + name
        comment = d(st.one_of(st.just(""), names.map(lambda n: f" # {n}"), st.just("#x")))
        return text + comment + d(st.sampled_from(["", " ", "\t"]))

    kinds = [
        entry(),
        st.sampled_from(["", " ", "\t"]),
        names.map(lambda n: f"# 10.0.0.1 {n}"),
        ips.map(lambda ip: f"{ip}"),
    ]
    if junk:
        kinds.append(_free_text)
    return draw(_file(st.one_of(kinds)).filter(_no_markers)), entries


@st.composite
def _resolv_case(draw: st.DrawFn, *, junk: bool = True) -> tuple[str, Address]:
    nameserver = draw(_ips)
    ips = st.one_of(st.just(nameserver), _ips)
    nameserver_line = st.builds(
        lambda keyword, blank, address, tail: keyword + blank + address + tail,
        st.sampled_from(["nameserver", "nameserver", " nameserver", "# nameserver"]),
        _blanks,
        st.one_of(ips.flatmap(_spelling), st.just("bogus")),
        st.sampled_from(["", " ", "# local", " ; x"]),
    )
    kinds = [
        nameserver_line,
        st.sampled_from(["search lab example.com", "options edns0 trust-ad", "domain lab"]),
        st.sampled_from(["", " ", "# comment", "; comment"]),
    ]
    if junk:
        kinds.append(_free_text)
    return draw(_file(st.one_of(kinds)).filter(_no_markers)), nameserver


@settings(max_examples=400)
@given(_hosts_case())
def test_hosts_cleans_back_and_is_idempotent(case: tuple[str, Entries]) -> None:
    original, entries = case
    once = hosts_with_nodes(original, entries)
    assert clean_markers(once) == original
    assert hosts_with_nodes(once, entries) == once
    assert has_markers(once) == (once != original)


@settings(max_examples=400)
@given(_resolv_case())
def test_resolv_cleans_back_and_is_idempotent(case: tuple[str, Address]) -> None:
    original, nameserver = case
    once = resolv_with_nameserver(original, nameserver)
    assert clean_markers(once) == original
    assert resolv_with_nameserver(once, nameserver) == once
    assert has_markers(once) == (once != original)


def _active_lines(text: str) -> list[list[str]]:
    """Fields of lines a resolver reads (no junk in these files, so str.split is exact)."""
    fields = (line.split("#", 1)[0].split() for line in text.split("\n"))
    return [f for f in fields if f]


@given(_hosts_case(junk=False))
def test_hosts_every_node_resolves_to_its_address(case: tuple[str, Entries]) -> None:
    original, entries = case
    result = _active_lines(hosts_with_nodes(original, entries))
    for name, ip in entries:
        assert set(_addresses_of(name, result)) == {ip}, name


@given(_hosts_case(junk=False))
def test_hosts_already_right_is_left_alone(case: tuple[str, Entries]) -> None:
    original, entries = case
    before = _active_lines(original)
    if all(set(_addresses_of(name, before)) == {ip} for name, ip in entries):
        assert hosts_with_nodes(original, entries) == original


def _addresses_of(name: str, lines: list[list[str]]) -> list[Address]:
    return [ip_address(f[0]) for f in lines if name.lower() in map(str.lower, f[1:])]


@given(_resolv_case(junk=False))
def test_resolv_nameserver_is_asked_first_and_once(case: tuple[str, Address]) -> None:
    original, nameserver = case
    before = _nameservers(original)
    after = _nameservers(resolv_with_nameserver(original, nameserver))
    assert after[0] == nameserver
    if before and before[0] == nameserver:
        assert resolv_with_nameserver(original, nameserver) == original
    else:
        assert after.count(nameserver) == 1


def _nameservers(text: str) -> list[Address | None]:
    """Addresses of the nameserver lines glibc reads, None where it is not one."""
    result: list[Address | None] = []
    for line in text.split("\n"):
        if line.startswith(("nameserver ", "nameserver\t")):
            field = line.split(None, 2)[1].split("#")[0].split(";")[0]
            try:
                result.append(ip_address(field))
            except ValueError:
                result.append(None)
    return result


# Arbitrary text, markers included (also at odd places), to check the two inverse views.
_marker_text = _file(
    st.one_of(
        _free_text,
        _free_text.map(lambda t: DEL_MARK + t),
        _free_text.map(lambda t: t + "  " + ADD_MARK),
        _free_text.map(lambda t: t + ADD_MARK + " "),
    )
)


@given(_marker_text)
def test_has_markers_is_whether_clean_changes_anything(text: str) -> None:
    assert has_markers(text) == (clean_markers(text) != text)


@given(_marker_text)
def test_cleaned_text_has_no_added_lines(text: str) -> None:
    assert not any(line.rstrip().endswith(ADD_MARK) for line in clean_markers(text).split("\n"))
