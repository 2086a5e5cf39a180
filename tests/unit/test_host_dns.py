"""The DNS client of the RFC 7050 pre-flight check: the wire format both ways, and a real UDP exchange."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address

import pytest

from lazyjack.host.dns import AAAA, Dns, DnsFormatError, decode_aaaa, encode_query

QUESTION = b"\x08ipv4only\x04arpa\x00" + struct.pack(">HH", AAAA, 1)


def _reply(query_id: int, records: list[bytes], *, flags: int = 0x8180, question: bytes = QUESTION) -> bytes:
    return struct.pack(">HHHHHH", query_id, flags, 1, len(records), 0, 0) + question + b"".join(records)


def _record(rtype: int, rdata: bytes, *, name: bytes = b"\xc0\x0c") -> bytes:
    return name + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata


def test_query_is_a_recursive_aaaa_question() -> None:
    assert encode_query(0x1234, "ipv4only.arpa.") == struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + QUESTION


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".arpa"])
def test_query_refuses_names_that_are_not_dns_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a DNS name"):
        encode_query(1, name)


def test_answer_gives_the_aaaa_records_and_skips_others() -> None:
    wkp = IPv6Address("64:ff9b::c000:aa")
    records = [
        _record(5, b"\x03www\xc0\x0c"),  # a CNAME, compressed
        _record(AAAA, wkp.packed, name=b"\x08ipv4only\x04arpa\x00"),  # an uncompressed owner name
        _record(1, bytes([192, 0, 0, 170])),
        _record(AAAA, IPv6Address("64:ff9b::c000:ab").packed),
    ]
    answer = decode_aaaa(7, _reply(7, records))
    assert answer.rcode == 0 and answer.status == "NOERROR" and not answer.truncated
    assert answer.addresses == (wkp, IPv6Address("64:ff9b::c000:ab"))


def test_answer_codes_and_truncation() -> None:
    assert decode_aaaa(7, _reply(7, [], flags=0x8183)).status == "NXDOMAIN"
    assert decode_aaaa(7, _reply(7, [], flags=0x8185)).status == "REFUSED"
    assert decode_aaaa(7, _reply(7, [], flags=0x8380)).truncated


@pytest.mark.parametrize(
    ("message", "why"),
    [
        pytest.param(b"\x00\x07", "shorter than a DNS header", id="short"),
        pytest.param(_reply(8, []), "not a reply to this query", id="other-id"),
        pytest.param(_reply(7, [], flags=0x0100), "not a reply to this query", id="a-query"),
        pytest.param(_reply(7, [_record(AAAA, b"\x00" * 16)])[:-3], "runs past the end", id="cut-short"),
        pytest.param(_reply(7, [], question=b"\x08ipv4only"), "runs past the end", id="name-cut-short"),
        pytest.param(_reply(7, [_record(AAAA, b"\x00" * 16, name=b"\x80x")]), "unknown label type", id="bad-label"),
    ],
)
def test_malformed_answers_are_refused(message: bytes, why: str) -> None:
    with pytest.raises(DnsFormatError, match=why):
        decode_aaaa(7, message)


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[bytes], list[bytes]]], int]]:
    """serve(answer): a UDP server on ::1 answering each query with answer(query)'s datagrams; its port."""
    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def serve(answer: Callable[[bytes], list[bytes]]) -> int:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::1", 0))
        sock.settimeout(0.05)
        sockets.append(sock)

        def loop() -> None:
            while not stop.is_set():
                try:
                    query, peer = sock.recvfrom(512)
                except TimeoutError:
                    continue
                for datagram in answer(query):
                    sock.sendto(datagram, peer)

        threads.append(threading.Thread(target=loop, daemon=True))
        threads[-1].start()
        return int(sock.getsockname()[1])

    yield serve
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    for sock in sockets:
        sock.close()


def test_dns_asks_over_udp_and_waits_past_a_stray_datagram(server: Callable[..., int]) -> None:
    address = IPv6Address("fd00:10:64:ff9b::c000:aa")

    def answer(query: bytes) -> list[bytes]:
        query_id = struct.unpack(">H", query[:2])[0]
        return [_reply(query_id ^ 1, []), _reply(query_id, [_record(AAAA, address.packed)])]

    port = server(answer)
    assert Dns(port=port).aaaa(IPv6Address("::1"), "ipv4only.arpa", timeout=2).addresses == (address,)


def test_dns_gives_up_after_its_tries(server: Callable[..., int]) -> None:
    asked: list[bytes] = []
    port = server(lambda query: asked.append(query) or [])
    with pytest.raises(TimeoutError, match=r"no answer from ::1 within 2 x 0.2s"):
        Dns(port=port).aaaa(IPv6Address("::1"), "ipv4only.arpa", timeout=0.2, tries=2)
    assert len(asked) == 2
