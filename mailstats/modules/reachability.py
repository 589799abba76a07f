"""Opt-in: does the origin IP accept TCP on port 25 *now*?

Why it looks like this:
- A real mail server listens on 25; a hijacked home PC or a one-shot cloud VM usually does
  not. But checking contacts the senders (spammers may notice), so it never runs unless the
  user names it in settings.modules (`opt_in`), and it opens nothing itself: the engine
  hands in `services.probe` (services/probe.py) only when this module is enabled.
- Probing happens in concurrent batches: `prefetch` queues the message's IP on the prober
  and returns no DNS queries; the first `evaluate` of the batch probes the whole queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailstats.modules import HEADER, PROBE, Module, Setting, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

DEFAULT_PORT = 25


class Reachability(Module):
    name = "reachability"
    version = "1"
    description = "Opt-in: the origin IP accepts TCP on port 25 within 3 s (tested now)."
    needs = frozenset({HEADER, PROBE})
    checks = ("origin_reachable",)
    opt_in = True
    evidence = "now"
    settings = (Setting("port", int, DEFAULT_PORT, "TCP port to probe on the origin IP"),)

    def __init__(self) -> None:
        self._probe = None
        self._port = DEFAULT_PORT

    def prepare(self, services: Services) -> None:
        self._probe = services.probe
        try:
            self._port = int(services.settings.get("reachability_port", DEFAULT_PORT))
        except (TypeError, ValueError):
            self._port = DEFAULT_PORT

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        probe = services.probe
        if probe is not None:
            ip = msg.origin_ip(services.identity)
            if ip:
                probe.want(ip)
        return ()

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        probe = services.probe
        if probe is None:
            return _out(None, "reachability probing is not enabled for this run")
        ip = msg.origin_ip(services.identity)
        if not ip:
            return _out(None, "no public origin IP in the Received headers")
        port = getattr(probe, "port", self._port)
        value = probe.reachable(ip)
        if value is None:
            return _out(None, f"could not probe {ip} from this network")
        state = "accepted" if value else "did not accept"
        return _out(value, f"{ip} {state} TCP on port {port}")

    def fingerprint(self, services: Services) -> str:
        return super().fingerprint(services) + f":{self._port}"

    def warnings(self) -> list[str]:
        probe = self._probe
        if probe is not None and probe.suspect_blocked():
            return [
                f"reachability: none of {probe.probed} origin IPs accepted TCP on port "
                f"{probe.port}. Your network probably blocks outbound port {probe.port} "
                "(common on home connections); the results say nothing about the senders. "
                "Run from a network that allows it, or leave this module off."
            ]
        return []

    def counters(self) -> dict[str, int]:
        probe = self._probe
        return dict(getattr(probe, "stats", {}) or {}) if probe is not None else {}


def _out(value: bool | None, why: str) -> dict[str, Value | dict]:
    return {"origin_reachable": value, "_why": {"origin_reachable": why}}


MODULE = Reachability
