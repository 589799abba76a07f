"""A small asyncio DNS server on loopback (UDP and TCP, one free port) that misbehaves on purpose.

Modes (`HostileDns(mode, ...)`):
- "honest": answers from `zone` (NXDOMAIN with an SOA for anything else);
- "refuse" / "servfail": REFUSED / SERVFAIL to everything, at once;
- "silent": never answers (a black hole, not a closed port);
- "slow": honest, each answer `delay_ms` late (the loop is never blocked);
- "drop": honest, but every other datagram of each question is lost (the first, the third...);
- "loop": honest, except the names in `loops`, each of which is a CNAME
  loop (name -> loop.name -> name), NOERROR;
- "hijack": honest for the zone; every other A query gets `hijack_ip`, other types NODATA;
- "nxdomain": NXDOMAIN to everything.
It counts what it received: `queries` (UDP datagrams), `tcp_queries`, `asked[(name, type)]`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections import Counter
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from fixtures.zone import DnsRecords, split_txt

Zone = dict[tuple[str, str], list[str]]
MODES = ("honest", "refuse", "servfail", "silent", "slow", "drop", "loop", "hijack", "nxdomain")
SOA = "ns.hostile.test. hostmaster.hostile.test. 1 60 60 60 60"


def zone_from_records(records: DnsRecords) -> Zone:
    """The fixture zone (fixtures/zone.py) as (name, type) -> records, as dnsmasq serves it."""
    zone: Zone = {}

    def add(name: str, rdtype: str, value: str) -> None:
        zone.setdefault((name.lower().rstrip("."), rdtype), []).append(value)

    def addr_type(ip: str) -> str:
        return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"

    def rev(item: str) -> str:
        try:
            return ipaddress.ip_address(item).reverse_pointer
        except ValueError:
            return item

    for name, ip in records.hosts:
        add(name, addr_type(ip), ip)
        add(rev(ip), "PTR", name + ".")
    for name, ip in records.addresses:
        add(name, addr_type(ip), ip)
    for ip, name in records.ptrs:
        add(rev(ip), "PTR", name + ".")
    for domain, host, pref in records.mx:
        add(domain, "MX", f"{pref} {host}.")
    for name, text in records.txt:
        quoted = (c.replace("\\", "\\\\").replace('"', '\\"') for c in split_txt(text))
        add(name, "TXT", " ".join(f'"{c}"' for c in quoted))  # <= 255 bytes per string
    for zone_name, ip, answer in records.dnsbl:
        addr = ipaddress.ip_address(ip)
        if addr.version == 4:
            label = ".".join(reversed(ip.split(".")))
        else:
            label = ".".join(reversed(addr.exploded.replace(":", "")))
        add(f"{label}.{zone_name}", "A", answer)
    return zone


class HostileDns:
    def __init__(
        self,
        mode: str = "honest",
        *,
        zone: Zone | None = None,
        delay_ms: int = 0,
        loops: set[str] | None = None,
        hijack_ip: str = "198.51.100.77",
        ttl: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.zone = {(n.lower().rstrip("."), t): v for (n, t), v in (zone or {}).items()}
        self.names = {n for n, _ in self.zone}
        self.delay = delay_ms / 1000
        self.loops = {n.lower().rstrip(".") for n in (loops or set())}
        self.hijack_ip = hijack_ip
        self.ttl = ttl
        self.queries = 0
        self.tcp_queries = 0
        self.asked: Counter[tuple[str, str]] = Counter()
        self._sent_of: Counter[tuple[str, str]] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"hostile-dns-{mode}", daemon=True)
        self._transport: Any = None
        self._server: Any = None

    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> HostileDns:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile DNS server did not start")
        return self

    def __enter__(self) -> HostileDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # -- serving ----------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._bind())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            if self._transport is not None:
                self._transport.close()
            if self._server is not None:
                self._server.close()
            self._loop.close()

    async def _bind(self) -> None:
        # UDP first on port 0, then TCP on the same number (retry if it is taken).
        for _ in range(20):
            transport, _proto = await self._loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=("127.0.0.1", 0)
            )
            port = transport.get_extra_info("sockname")[1]
            sock = transport.get_extra_info("socket")
            if sock is not None:  # a burst of queries must not overflow it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            try:
                self._server = await asyncio.start_server(self._tcp, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self._transport, self.port = transport, port
            return
        raise RuntimeError("no free port for UDP and TCP")

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
            self.tcp_queries += 1
            reply = self.reply(data, tcp=True)
            if reply is not None:
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def datagram(self, data: bytes, addr: Any, transport: Any) -> None:
        self.queries += 1
        if self.mode == "drop":
            try:
                key = _key(dns.message.from_wire(data))
            except Exception:  # noqa: BLE001
                return
            self._sent_of[key] += 1
            if self._sent_of[key] % 2 == 1:
                self.asked[key] += 1
                return  # the 1st, 3rd... datagram of each question is lost
        reply = self.reply(data)
        if reply is None:
            return
        if self.mode == "slow" and self.delay:
            self._loop.call_later(self.delay, transport.sendto, reply, addr)
        else:
            transport.sendto(reply, addr)

    def reply(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The wire reply to one query, or None for no reply."""
        try:
            q = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - junk is ignored
            return None
        if not q.question:
            return None
        name, rdtype = _key(q)
        if not tcp:
            self.asked[(name, rdtype)] += 1
        mode = self.mode
        if mode == "silent":
            return None
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        if mode == "refuse":
            r.set_rcode(dns.rcode.REFUSED)
        elif mode == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
        elif mode == "nxdomain":
            self._negative(r, name, nx=True)
        elif mode == "loop" and name in self.loops:
            qname = q.question[0].name
            alias = dns.name.from_text("loop." + name)
            r.answer.append(dns.rrset.from_text(qname, self.ttl, "IN", "CNAME", alias.to_text()))
            r.answer.append(dns.rrset.from_text(alias, self.ttl, "IN", "CNAME", qname.to_text()))
        elif (name, rdtype) in self.zone:
            r.answer.append(
                dns.rrset.from_text(
                    q.question[0].name, self.ttl, "IN", rdtype, *self.zone[(name, rdtype)]
                )
            )
        elif mode == "hijack" and name not in self.names:
            if rdtype == "A":
                r.answer.append(
                    dns.rrset.from_text(q.question[0].name, self.ttl, "IN", "A", self.hijack_ip)
                )
            else:
                self._negative(r, name, nx=False)
        else:
            self._negative(r, name, nx=name not in self.names)
        wire = r.to_wire()
        if not tcp and len(wire) > 512 and not q.edns >= 0:
            r.flags |= dns.flags.TC
            r.answer.clear()
            wire = r.to_wire()
        return wire

    def _negative(self, r: dns.message.Message, name: str, nx: bool) -> None:
        if nx:
            r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(dns.rrset.from_text("hostile.test.", self.ttl, "IN", "SOA", SOA))


def _key(q: dns.message.Message) -> tuple[str, str]:
    question = q.question[0]
    return (
        question.name.to_text(omit_final_dot=True).lower(),
        dns.rdatatype.to_text(question.rdtype),
    )


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: HostileDns) -> None:
        self.server = server
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.datagram(data, addr, self.transport)
