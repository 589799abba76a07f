"""DNS on the wire: many queries in flight on connected UDP sockets, retransmitted, classified.

Why it looks like this:
- Thread-per-query costs more in Python than the look-ups themselves (measured: 1,500 PTR
  queries to a local dnsmasq took 0.8 s with 32 threads, 0.05 s on one socket), so every
  look-up, a single one included, goes through `exchange`: one code path, no second resolver
  asking the same name again after this one gave up.
- A lost datagram is sent again after a short timeout that follows the measured round trip
  (RFC 6298's estimator, Karn's rule), doubling per try, instead of the whole look-up lifetime.
- The sockets are connected, so a closed port comes back at once as ECONNREFUSED (ICMP port
  unreachable) instead of after the lifetime, and datagrams from any other address are
  dropped by the kernel.
- SERVFAIL and REFUSED are answers too: they are final for the run (another configured server
  is tried once first), never retried in a loop.
- A CNAME chain that loops, or that ends without the asked type and without the SOA that
  proves "no data", is an answer the resolver could not complete: unknown, never cached.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from mailstats.services.dns_codec import (
    FLAG_TC,
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    T_CNAME,
    T_SOA,
    TYPES,
    FormError,
    Labels,
    Response,
    RRSet,
    decode,
    encode_query,
    is_response,
    name_labels,
    rdata_text,
)

OK = "ok"
NXDOMAIN = "nxdomain"
NODATA = "nodata"
TIMEOUT = "timeout"
SERVFAIL = "servfail"
REFUSED = "refused"
ERROR = "error"
LOOP = "cname_loop"  # the CNAME chain comes back to a name it passed
INCOMPLETE = "incomplete"  # the chain stops short of the asked type with no proof of absence

DEFAULT_NEGATIVE_TTL = 900
#: Queries in flight per exchange: more overflow a server's default UDP receive buffer (about
#: 200 datagrams of 208 KB), and what the kernel drops there has to be sent again.
WINDOW = 128
MAX_TRIES = 3  # one send and two retransmissions
MIN_RTO = 0.2
MAX_CHAIN = 16


class WireAnswer(NamedTuple):
    """One answer as it came off the wire (a NamedTuple, as DnsAnswer: one per query)."""

    status: str
    records: tuple[str, ...] = ()
    ttl: int = 0
    responded: bool = True  # some server sent a DNS message back (any rcode)


@dataclass
class RttEstimator:
    """Smoothed round trip and its variance (RFC 6298); the retransmission timeout follows."""

    initial: float = 1.0
    ceiling: float = 2.0
    srtt: float | None = None
    rttvar: float = 0.0

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    @property
    def rto(self) -> float:
        if self.srtt is None:
            return min(self.initial, self.ceiling)
        return min(max(MIN_RTO, self.srtt + 4 * self.rttvar), self.ceiling)


@dataclass
class _Flight:
    key: tuple[str, str]
    labels: Labels  # the question's name as sent
    rdtype: int
    wire: bytes
    server: int
    first_sent: float = 0.0
    sent: float = 0.0
    tries: int = 0
    rto: float = 0.0
    tried: set[int] = field(default_factory=set)
    last: WireAnswer | None = None  # a SERVFAIL/REFUSED kept while another server is asked

    @property
    def qid(self) -> int:
        return (self.wire[0] << 8) | self.wire[1]


def parse_response(msg: Response, labels: Labels, rdtype: int) -> WireAnswer:
    """One response as a WireAnswer, following the CNAME chain in its answer section."""
    rcode = msg.rcode
    if rcode == RCODE_SERVFAIL:
        return WireAnswer(SERVFAIL)
    if rcode == RCODE_REFUSED:
        return WireAnswer(REFUSED)
    if rcode not in (RCODE_NOERROR, RCODE_NXDOMAIN):
        return WireAnswer(ERROR)
    current = tuple(x.lower() for x in labels)
    seen = {current}
    for _ in range(MAX_CHAIN):
        rrset = _find(msg, current, rdtype)
        if rrset is not None:
            if rcode == RCODE_NXDOMAIN:
                return WireAnswer(ERROR)  # records and "no such name" at once: not an answer
            return WireAnswer(OK, tuple(rdata_text(r, rdtype) for r in rrset.rdatas), rrset.ttl)
        alias = _find(msg, current, T_CNAME) if rdtype != T_CNAME else None
        if alias is None:
            break
        current = alias.rdatas[0]  # type: ignore[assignment]
        if current in seen:
            return WireAnswer(LOOP)
        seen.add(current)
    else:
        return WireAnswer(INCOMPLETE)
    chased = len(seen) > 1
    if rcode == RCODE_NXDOMAIN:
        return WireAnswer(NXDOMAIN, (), negative_ttl(msg))
    if chased and not any(r.rdtype == T_SOA for r in msg.authority):
        return WireAnswer(INCOMPLETE)  # the resolver stopped at an alias it did not follow
    return WireAnswer(NODATA, (), negative_ttl(msg))


def _find(msg: Response, name: Labels, rdtype: int) -> RRSet | None:
    for rrset in msg.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def negative_ttl(response: Response) -> int:
    """RFC 2308: the SOA's minimum (capped by its TTL) from the authority section."""
    for rrset in response.authority:
        if rrset.rdtype == T_SOA:
            return int(min(rrset.ttl, rrset.rdatas[0]))  # type: ignore[call-overload]
    return DEFAULT_NEGATIVE_TTL


class Exchanger:
    """Sends queries to a resolver's servers and collects one answer per key.

    `alive[i]` turns False when server i refuses the connection (nothing listens): its
    queries move to the next server at once, and when none is left they end as TIMEOUT.
    """

    def __init__(self, servers: list[tuple[str, int]], lifetime: float) -> None:
        self.servers = servers
        self.lifetime = lifetime
        self.rtt = RttEstimator(initial=min(1.0, max(lifetime / 3, 0.1)), ceiling=lifetime / 2)
        self.alive = [True] * len(servers)
        self.sent = 0  # datagrams (and TCP queries) put on the network
        self.retransmits = 0
        self.tcp = 0
        self.responses = 0  # DNS messages received from a server, any rcode
        self._last_rx = 0.0  # when the last one came
        self._urgent = False  # a flight was made due now (look at the timers at once)

    def any_alive(self) -> bool:
        return any(self.alive)

    def exchange(
        self,
        keys: list[tuple[str, str]],
        *,
        may_send: Callable[[tuple[str, str]], bool] = lambda k: True,
    ) -> dict[tuple[str, str], WireAnswer]:
        """Answers for `keys`; a key `may_send` refuses is left out of the result."""
        out: dict[tuple[str, str], WireAnswer] = {}
        socks: dict[int, socket.socket] = {}
        try:
            self._run(keys, out, socks, may_send)
        finally:
            for s in socks.values():
                s.close()
        return out

    # -- internals ----------------------------------------------------------------------
    def _socket(self, socks: dict[int, socket.socket], i: int) -> socket.socket | None:
        if i in socks:
            return socks[i]
        host, port = self.servers[i]
        try:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.connect((host, port))
        except OSError:
            self.alive[i] = False
            return None
        socks[i] = s
        return s

    def _pick(self, flight: _Flight) -> int | None:
        """The first server for a new query, the next one for a retransmission, and an
        untried one after a SERVFAIL/REFUSED."""
        n = len(self.servers)
        start = flight.server + 1 if flight.tries else 0
        alive = [i for i in ((start + k) % n for k in range(n)) if self.alive[i]]
        if flight.last is not None:
            alive = [i for i in alive if i not in flight.tried] or alive
        return alive[0] if alive else None

    def _run(
        self,
        keys: list[tuple[str, str]],
        out: dict[tuple[str, str], WireAnswer],
        socks: dict[int, socket.socket],
        may_send: Callable[[tuple[str, str]], bool],
    ) -> None:
        queue = list(reversed(keys))
        flights: dict[int, _Flight] = {}
        next_check = 0.0  # no flight is due before this
        self._urgent = False
        next_id = int(time.monotonic_ns()) & 0xFFFF
        while queue or flights:
            now = time.monotonic()
            while queue and len(flights) < WINDOW:
                key = queue.pop()
                if not may_send(key):
                    continue
                rdtype = TYPES.get(key[1])
                try:
                    if rdtype is None:
                        raise ValueError(f"type {key[1]} is not asked by this resolver")
                    labels = name_labels(key[0])
                except ValueError:
                    out[key] = WireAnswer(ERROR, responded=False)
                    continue
                while next_id in flights:
                    next_id = (next_id + 1) & 0xFFFF
                qid = next_id
                next_id = (next_id + 1) & 0xFFFF
                flight = _Flight(key, labels, rdtype, encode_query(qid, labels, rdtype), 0, now)
                if not self._send(flight, socks, now):
                    out[key] = WireAnswer(TIMEOUT, responded=False)
                    continue
                flights[qid] = flight
                next_check = min(next_check, self._due(flight))
            if not flights:
                continue
            # Every flight's timer is looked at only when the earliest one may be due: a
            # flight's due time only moves later (answers coming in push it out), so the
            # minimum taken once bounds them all until a flight is due now (a server gone,
            # a SERVFAIL to be asked elsewhere). Looking at all of them per datagram cost
            # about 400 us of CPU per answer from a server that answers one at a time.
            if self._urgent or not all(self.alive) or time.monotonic() >= next_check:
                self._urgent = False
                for f in flights.values():
                    if not self.alive[f.server]:
                        f.sent, f.rto = 0.0, 0.0  # its server is gone: due now
                next_check = min(self._due(f) for f in flights.values())
            wait = max(0.0, next_check - time.monotonic())
            readable, _, _ = select.select(list(socks.values()), [], [], min(wait, 0.5))
            for s in readable:
                self._drain(s, socks, flights, out)
            if self._urgent or not all(self.alive) or time.monotonic() >= next_check:
                self._expire(flights, socks, out)
                next_check = 0.0  # retransmissions moved some timers: look again

    def _send(self, flight: _Flight, socks: dict[int, socket.socket], now: float) -> bool:
        while True:
            i = self._pick(flight)
            if i is None:
                return False
            s = self._socket(socks, i)
            if s is None:
                continue
            try:
                s.send(flight.wire)
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    self._kill(i, socks)
                    continue
                if exc.errno in (errno.EAGAIN, errno.ENOBUFS):
                    pass  # the kernel dropped it: the retransmission timer covers it
                else:
                    self._kill(i, socks)
                    continue
            if flight.tries:
                self.retransmits += 1
            self.sent += 1
            flight.server = i
            flight.tried.add(i)
            flight.tries += 1
            flight.sent = now
            flight.rto = self.rtt.rto * (2 ** (flight.tries - 1))
            return True

    def _kill(self, i: int, socks: dict[int, socket.socket]) -> None:
        self.alive[i] = False
        s = socks.pop(i, None)
        if s is not None:
            s.close()

    def _drain(
        self,
        s: socket.socket,
        socks: dict[int, socket.socket],
        flights: dict[int, _Flight],
        out: dict[tuple[str, str], WireAnswer],
    ) -> None:
        while True:
            try:
                wire = s.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP port unreachable: nothing listens there. Re-route what it held.
                i = next((k for k, v in socks.items() if v is s), None)
                if i is not None:
                    self._kill(i, socks)
                return
            try:
                msg = decode(wire)
            except FormError:  # garbage on the socket is simply ignored
                continue
            flight = flights.get(msg.qid)
            if flight is None or not is_response(msg, msg.qid, flight.labels, flight.rdtype):
                continue
            self.responses += 1
            self._last_rx = time.monotonic()
            if flight.tries == 1:
                self.rtt.sample(time.monotonic() - flight.sent)
            key = flight.key
            if msg.flags & FLAG_TC:
                del flights[msg.qid]
                out[key] = self._tcp(flight)
                continue
            answer = parse_response(msg, flight.labels, flight.rdtype)
            if answer.status in (SERVFAIL, REFUSED) and self._untried(flight):
                flight.last = answer  # another server gets one chance
                flight.sent, flight.rto = 0.0, 0.0
                self._urgent = True
                continue
            del flights[msg.qid]
            out[key] = answer

    def _untried(self, flight: _Flight) -> bool:
        return any(self.alive[i] and i not in flight.tried for i in range(len(self.servers)))

    def _expire(
        self,
        flights: dict[int, _Flight],
        socks: dict[int, socket.socket],
        out: dict[tuple[str, str], WireAnswer],
    ) -> None:
        now = time.monotonic()
        for qid, f in list(flights.items()):
            if not self.alive[f.server]:
                f.sent, f.rto = 0.0, 0.0
            if now < self._due(f):
                continue
            spent = now - f.first_sent
            if f.tries >= MAX_TRIES or spent >= self.lifetime or not self._send(f, socks, now):
                del flights[qid]
                out[f.key] = f.last or WireAnswer(TIMEOUT, responded=False)
            else:
                f.rto = min(f.rto, max(0.01, self.lifetime - spent))

    def _due(self, f: _Flight) -> float:
        """When a flight is sent again. While answers keep coming the server is working
        through a burst, not losing datagrams: wait for the flow to stop first."""
        if f.rto == 0.0:
            return 0.0
        return max(f.sent + f.rto, min(self._last_rx + self.rtt.rto, f.first_sent + self.lifetime))

    def _tcp(self, flight: _Flight) -> WireAnswer:
        """A truncated UDP answer: ask the same server over TCP (RFC 7766 length framing)."""
        host, port = self.servers[flight.server]
        self.tcp += 1
        self.sent += 1
        deadline = time.monotonic() + self.lifetime
        try:
            with socket.create_connection((host, port), timeout=self.lifetime) as s:
                s.sendall(len(flight.wire).to_bytes(2, "big") + flight.wire)
                size = int.from_bytes(_recv_exactly(s, 2, deadline), "big")
                msg = decode(_recv_exactly(s, size, deadline))
        except TimeoutError:
            return WireAnswer(TIMEOUT, responded=False)
        except (FormError, OSError, EOFError):
            return WireAnswer(ERROR, responded=False)
        if not is_response(msg, flight.qid, flight.labels, flight.rdtype):
            return WireAnswer(ERROR, responded=False)
        return parse_response(msg, flight.labels, flight.rdtype)


def _recv_exactly(s: socket.socket, size: int, deadline: float) -> bytes:
    """`size` bytes from a stream socket, within the look-up's lifetime."""
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        s.settimeout(left)
        chunk = s.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed mid-message")
        data += chunk
    return bytes(data)
