"""Who may take the server's time and sockets: rate limits, the connection budget, and the
counting of refusals. No I/O and no clock of its own (callers pass ``now``), so every rule
here is tested without sockets (tests/test_ingest_protocol.py).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict
from dataclasses import dataclass

from .limits import RESERVE_PEER_SHARE, Limits

MAX_TRACKED_PEERS = 4096
"""Addresses whose connection rate is remembered; beyond it those with a full bucket and no
open connection are forgotten (they are indistinguishable from a newcomer anyway)."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved. ``take`` may go into debt and says
    how long to wait until the debt is paid: callers sleep that long, which throttles them."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, n: float, now: float) -> float:
        """Spend ``n`` tokens; the seconds to wait before going on (0 if there were enough)."""
        self._refill(now)
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, n: float, now: float) -> bool:
        """Spend ``n`` tokens if there are that many."""
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


def peer_key(address: str | None) -> str:
    """The address the per-peer limits count by: IPv4 as is (also when IPv4-mapped), an IPv6
    address by its /64 network (one host usually holds a whole /64), anything else as given."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Admission:
    """What to do with a new connection: admit it (``ok``), first closing the idle
    connection ``evict`` if not None; or refuse it, saying ``reason``. ``answer``: whether a
    refused connection is still read and answered (503 or /health) rather than dropped."""

    ok: bool
    evict: int | None = None
    reason: str = ""
    answer: bool = True


class ConnectionBudget:
    """The sockets of one server: how many are open, from which peer, which are idle.

    Rules, in order, for a new connection from ``peer``:

    0. a peer penalised for abuse (``penalise``) is dropped without an answer for
       ``abuse_penalty_s``;
    1. its peer's connection rate (``connects_per_peer_per_s``, burst
       ``max_connections_per_peer``): beyond it, dropped without an answer;
    2. ``max_connections_per_peer``: its peer's oldest idle connection makes room, else 503;
    3. ``max_connections``: the server's oldest idle connection makes room, else 503;
    4. the last ``reserved_connections``: only for peers holding fewer than
       RESERVE_PEER_SHARE; others get their own oldest idle connection closed, else 503.

    Idle: an HTTP connection waiting for a request (new or keep-alive); closing it loses
    nothing, its client reconnects when it has something to send.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self.peer_of: dict[int, str] = {}
        self.per_peer: Counter = Counter()
        self.idle: OrderedDict[int, str] = OrderedDict()
        """conn id -> peer, oldest idle first"""
        self._rates: dict[str, TokenBucket] = {}
        self._penalties: dict[str, float] = {}
        """peer -> until when its new connections are dropped"""

    @property
    def open_count(self) -> int:
        return len(self.peer_of)

    def admit(self, peer: str, now: float) -> Admission:
        lim = self.limits
        until = self._penalties.get(peer)
        if until is not None:
            if now < until:
                return Admission(False, reason="closed for abuse moments ago", answer=False)
            del self._penalties[peer]
        rate = self._rates.get(peer)
        if rate is None:
            if len(self._rates) >= MAX_TRACKED_PEERS:
                self._forget_quiet_peers(now)
            rate = self._rates[peer] = TokenBucket(lim.connects_per_peer_per_s, lim.max_connections_per_peer, now)
        if not rate.try_take(1, now):
            return Admission(False, reason=f"over {lim.connects_per_peer_per_s:g} new connections/s", answer=False)
        mine = self.per_peer[peer]
        if mine >= lim.max_connections_per_peer:
            return self._make_room(peer, f"{mine} connections from this address (limit {lim.max_connections_per_peer})")
        total = len(self.peer_of)
        if total >= lim.max_connections:
            return self._make_room(None, f"{total} connections open (limit {lim.max_connections})")
        if total >= lim.max_connections - lim.reserved_connections and mine >= RESERVE_PEER_SHARE:
            return self._make_room(
                peer,
                f"the last {lim.reserved_connections} places are kept for addresses holding fewer "
                f"than {RESERVE_PEER_SHARE} connections; this one holds {mine}",
            )
        return Admission(True)

    def _make_room(self, peer: str | None, reason: str) -> Admission:
        for conn_id, idle_peer in self.idle.items():
            if peer is None or idle_peer == peer:
                return Admission(True, evict=conn_id)
        return Admission(False, reason=reason)

    def opened(self, conn_id: int, peer: str) -> None:
        self.peer_of[conn_id] = peer
        self.per_peer[peer] += 1

    def closed(self, conn_id: int) -> None:
        peer = self.peer_of.pop(conn_id, None)
        self.idle.pop(conn_id, None)
        if peer is not None:
            self.per_peer[peer] -= 1
            if self.per_peer[peer] <= 0:
                del self.per_peer[peer]

    def penalise(self, peer: str, now: float) -> None:
        """Drop ``peer``'s new connections for ``abuse_penalty_s`` (its stream broke the rules)."""
        if len(self._penalties) >= MAX_TRACKED_PEERS:
            self._penalties = {p: t for p, t in self._penalties.items() if t > now}
        self._penalties[peer] = now + self.limits.abuse_penalty_s

    def set_idle(self, conn_id: int, idle: bool) -> None:
        """Mark a connection evictable (waiting for a request) or busy."""
        if idle:
            if conn_id in self.peer_of:
                self.idle[conn_id] = self.peer_of[conn_id]
                self.idle.move_to_end(conn_id)
        else:
            self.idle.pop(conn_id, None)

    def _forget_quiet_peers(self, now: float) -> None:
        for peer in [p for p, b in self._rates.items() if p not in self.per_peer and b.full(now)]:
            del self._rates[peer]


class RefusalLog:
    """Counts refusals by kind (e.g. ``"stream message 422"``) and peer. The server logs
    the first refusal of each kind in full, then only ``summary()`` every
    LOG_SUMMARY_INTERVAL_S: a client sending a thousand bad messages a second costs one
    line per interval, not a thousand."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.peers: dict[str, Counter] = {}
        self._seen: set[str] = set()

    def count(self, kind: str, peer: str) -> bool:
        """Count one refusal; True if it is the first of its kind since the last summary
        (worth a line of its own)."""
        self.counts[kind] += 1
        self.peers.setdefault(kind, Counter())[peer] += 1
        if kind in self._seen:
            return False
        self._seen.add(kind)
        return True

    def summary(self) -> str | None:
        """One line of what was refused since the last call (None if nothing), then reset."""
        if not self.counts:
            return None
        parts = []
        for kind, n in self.counts.most_common():
            top = ", ".join(f"{p} x {k}" for p, k in self.peers[kind].most_common(3))
            parts.append(f"{n} x {kind} (from {top})")
        self.counts.clear()
        self.peers.clear()
        self._seen.clear()
        return "; ".join(parts)
