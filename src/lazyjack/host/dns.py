"""DNS questions lazyjack asks itself: AAAA records from one server over UDP (RFC 1035 wire format).

Only what pre-flight needs: ask a DNS64 server for the AAAA records of `ipv4only.arpa`
(RFC 7050) and read them back. The query and the answer are built and parsed by pure
functions; `Dns` does the one side effect, a UDP exchange with a timeout.
"""

from __future__ import annotations

import secrets
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Protocol

AAAA = 28
IN = 1
HEADER = struct.Struct(">HHHHHH")
#: Recursion desired: a DNS64 server answers (and synthesises) on behalf of the client.
FLAG_RD = 0x0100
FLAG_QR = 0x8000
FLAG_TC = 0x0200
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_POINTERS = 64


class DnsFormatError(ValueError):
    """An answer that is not a well-formed reply to the question."""


@dataclass(frozen=True)
class DnsAnswer:
    """What a server said: its response code and the AAAA records of the name (in answer order)."""

    rcode: int
    addresses: tuple[IPv6Address, ...] = ()
    truncated: bool = False

    @property
    def status(self) -> str:
        return RCODES.get(self.rcode, f"RCODE {self.rcode}")


class DnsAPI(Protocol):
    def aaaa(self, server: IPv6Address, name: str, *, timeout: float = 2.0, tries: int = 2) -> DnsAnswer: ...


def encode_query(query_id: int, name: str, qtype: int = AAAA) -> bytes:
    """A standard query with recursion desired for (name, qtype, IN)."""
    text = name.removesuffix(".")
    labels = [label.encode("ascii") for label in text.split(".")] if text else []
    if any(not 0 < len(label) < 64 for label in labels):
        raise ValueError(f"{name!r} is not a DNS name (labels of 1-63 characters)")
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return HEADER.pack(query_id, FLAG_RD, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, IN)


def _skip_name(data: bytes, offset: int) -> int:
    """The offset after the (possibly compressed) name at `offset`."""
    for _ in range(MAX_POINTERS):
        if offset >= len(data):
            raise DnsFormatError("a name runs past the end of the message")
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2  # a pointer ends the name here
        if length & 0xC0:
            raise DnsFormatError(f"unknown label type {length:#x}")
        offset += 1 + length
    raise DnsFormatError("a name has too many labels")


def decode_aaaa(query_id: int, message: bytes) -> DnsAnswer:
    """The AAAA records in a reply to query `query_id` (records of other types, CNAMEs included, are skipped)."""
    if len(message) < HEADER.size:
        raise DnsFormatError(f"{len(message)} bytes is shorter than a DNS header")
    ident, flags, qdcount, ancount, _, _ = HEADER.unpack_from(message)
    if ident != query_id or not flags & FLAG_QR:
        raise DnsFormatError("not a reply to this query")
    offset = HEADER.size
    for _ in range(qdcount):
        offset = _skip_name(message, offset) + 4
    found = []
    for _ in range(ancount):
        offset = _skip_name(message, offset)
        if offset + 10 > len(message):
            raise DnsFormatError("a record runs past the end of the message")
        rtype, rclass, _ttl, length = struct.unpack_from(">HHIH", message, offset)
        offset += 10
        rdata = message[offset:offset + length]
        if len(rdata) != length:
            raise DnsFormatError("record data runs past the end of the message")
        if rtype == AAAA and rclass == IN and length == 16:
            found.append(IPv6Address(rdata))
        offset += length
    return DnsAnswer(rcode=flags & 0x000F, addresses=tuple(found), truncated=bool(flags & FLAG_TC))


class Dns:
    """Asks over UDP from this host's network namespace; OSError (no route, ...) propagates."""

    def __init__(self, *, port: int = 53) -> None:
        self.port = port

    def aaaa(self, server: IPv6Address, name: str, *, timeout: float = 2.0, tries: int = 2) -> DnsAnswer:
        """The server's answer, or TimeoutError when `tries` questions of `timeout` seconds went unanswered."""
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((str(server), self.port))
            for _ in range(tries):
                query_id = secrets.randbits(16)
                sock.send(encode_query(query_id, name))
                try:
                    while True:
                        try:
                            return decode_aaaa(query_id, sock.recv(4096))
                        except DnsFormatError:
                            continue  # a stray or late datagram: keep waiting for ours
                except TimeoutError:
                    continue
        raise TimeoutError(f"no answer from {server} within {tries} x {timeout:g}s")
