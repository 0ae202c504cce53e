"""A real DNS server for tests (dnslib, UDP and TCP on 127.0.0.1) answering the
TXT records the test puts in ``records``; NXDOMAIN for anything else."""

from __future__ import annotations

import socket

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Resolver(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for v in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(v), ttl=1))
        return reply


class DnsBox:
    def __init__(self) -> None:
        self.resolver = _Resolver()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data")
        self.udp = DNSServer(self.resolver, port=self.port, address="127.0.0.1", logger=quiet)
        self.tcp = DNSServer(self.resolver, port=self.port, address="127.0.0.1", tcp=True,
                             logger=quiet)

    @property
    def records(self) -> dict[str, list[str]]:
        return self.resolver.records

    def start(self) -> DnsBox:
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def stop(self) -> None:
        self.udp.stop()
        self.tcp.stop()
