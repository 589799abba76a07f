"""Is the resolver honest? Two tests that hold for any resolver, a lab's fixture-only one too.

Why it looks like this:
- (a) Hijacking: a name under the reserved `invalid.` TLD (RFC 6761) cannot exist, so the
  first network exchange of a run also asks a random one. Anything but NXDOMAIN (an address,
  or "exists without data") means the resolver invents answers for misses. A failure says
  nothing either way.
- (b) NXDOMAIN for everything (this machine's default resolver does it): when at least
  `MIN_DOMAINS` distinct names asked for MX (From domains) are NXDOMAIN for MX, A and AAAA
  alike, every PTR asked is NXDOMAIN too, and not one answer in the run said a name exists
  (OK or NODATA), nothing the resolver says can be told from "it does not know". A and AAAA
  that the modules did not ask are asked here for those few names, so the rule is checked,
  not assumed. A lab resolver serving only a fixture zone passes: its zone answers something.
- Once lying, a resolver stays lying for the run (the engine reports every DNS-derived check
  as unknown, and nothing it said is kept for the next run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailstats.services.dns_wire import NODATA, NXDOMAIN, OK, TIMEOUT, WireAnswer

if TYPE_CHECKING:
    from mailstats.services.dns import Resolver

MIN_DOMAINS = 5
HIJACK = "hijack"
EVERYTHING_NX = "nxdomain_everything"
_POSITIVE = (OK, NODATA)


class Trust:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.verdict = ""  # "" (no evidence against it), HIJACK or EVERYTHING_NX
        self.reason = ""
        self.probe = ""  # the probe's status once asked
        self._probe_sent = False
        self.positive = 0  # answers saying a name exists
        self.mx_nx: list[str] = []
        self.ptr_asked = 0
        self.ptr_nx = 0
        self._gave_up = False

    @property
    def lying(self) -> bool:
        return bool(self.verdict)

    def state(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "probe": self.probe}

    def adopt(self, state: dict[str, Any]) -> None:
        if state.get("verdict") and not self.verdict:
            self.verdict, self.reason = str(state["verdict"]), str(state.get("reason", ""))
        if state.get("probe"):
            self.probe, self._probe_sent = str(state["probe"]), True

    # -- (a) ---------------------------------------------------------------------------
    def probe_name(self) -> str:
        return f"mailstats-{self.resolver.run_id[:16]}.invalid"

    def probe_key(self) -> tuple[str, str] | None:
        """The probe, the first time the run goes to the network (and never again)."""
        if self._probe_sent:
            return None
        self._probe_sent = True
        return (self.probe_name(), "A")

    def judge_probe(self, answer: WireAnswer) -> None:
        self.probe = answer.status
        if answer.status == OK:
            self._lie(
                HIJACK,
                f"the resolver ({self.resolver.description}) answered "
                f"{self.probe_name()}, a name that cannot exist, with "
                f"{', '.join(answer.records[:3])}: it replaces 'no such domain' with an address",
            )
        elif answer.status == NODATA:
            self._lie(
                HIJACK,
                f"the resolver ({self.resolver.description}) says {self.probe_name()}, a "
                "name that cannot exist, exists: it does not report missing names",
            )

    # -- (b) ---------------------------------------------------------------------------
    def observe(self, key: tuple[str, str], status: str) -> None:
        name, rdtype = key
        if status in _POSITIVE:
            self.positive += 1
        if (
            rdtype == "MX"
            and status == NXDOMAIN
            and len(self.mx_nx) < MIN_DOMAINS
            and name not in self.mx_nx
        ):
            self.mx_nx.append(name)
        if rdtype == "PTR" and status != TIMEOUT:
            self.ptr_asked += 1
            self.ptr_nx += status == NXDOMAIN

    def check_everything_nx(self) -> None:
        """Decide (b) when the evidence is there; asks at most 2 x MIN_DOMAINS queries once."""
        if self.lying or self.positive or self._gave_up or len(self.mx_nx) < MIN_DOMAINS:
            return
        if self.ptr_nx != self.ptr_asked:
            return
        r = self.resolver
        names = self.mx_nx[:MIN_DOMAINS]
        keys = [(n, t) for n in names for t in ("A", "AAAA")]
        need = [k for k in keys if r._known(k) is None]
        if need:
            from mailstats.services.dns import DnsAnswer

            got = r._exchange_raw(need)
            with r._lock:
                for k in need:
                    w = got.get(k, WireAnswer(TIMEOUT, responded=False))
                    r._remember(k, DnsAnswer(w.status, w.records, w.ttl))
        statuses = [r._known(k) for k in keys]
        if any(s != NXDOMAIN for s in statuses):
            self._gave_up = True  # an answer or a failure: (b) cannot be shown this run
            return
        ptrs = f"all {self.ptr_asked} PTR look-ups" if self.ptr_asked else "no PTR look-up"
        self._lie(
            EVERYTHING_NX,
            f"the resolver ({r.description}) answered NXDOMAIN to everything: "
            f"{len(names)} From domains for MX, A and AAAA, {ptrs}, and not one name existed",
        )

    def _lie(self, verdict: str, reason: str) -> None:
        if not self.verdict:
            self.verdict, self.reason = verdict, reason
