"""Memory of recurrent fighters between ``POST /api/fighters/{id}/act`` calls.

A recurrent checkpoint (policy.kind lstm) chooses each action from what it saw earlier in the
match, so the server keeps its state (h, c) from one call to the next under a session id the
client chooses: one session per match and fighter batch, the rows in the same order at every
call. Sans-IO: the clock is a function, nothing here touches a socket or the database.

Bounded: at most ``max_sessions`` sessions holding ``max_rows`` rows in all; a session unused
for ``ttl_s`` seconds expires, and past either bound the least recently used one goes. A
session the server does not hold (its first call, or expired, or evicted) starts with fresh
memory, and the response says so (``started``), as it does when the fighter's serving
checkpoint changed since the last call.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .limits import MAX_SESSION_ROWS, MAX_SESSIONS, SESSION_TTL_S


class SessionError(ValueError):
    """A request that cannot go on with the session it names (the handler answers 422)."""


@dataclass
class Session:
    checkpoint_id: int
    h: np.ndarray
    c: np.ndarray
    last_used: float

    @property
    def rows(self) -> int:
        return len(self.h)


@dataclass(frozen=True)
class Begun:
    """The state a call starts from, and why it is fresh (None: carried on from the last call)."""

    h: np.ndarray
    c: np.ndarray
    started: str | None
    """new (first call, expired or evicted), reset (the client asked), checkpoint (the fighter's
    serving checkpoint changed), or None"""


class SessionStore:
    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        max_rows: int = MAX_SESSION_ROWS,
        ttl_s: float = SESSION_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_sessions, self.max_rows, self.ttl_s, self.clock = max_sessions, max_rows, ttl_s, clock
        self._sessions: OrderedDict[tuple[int, str], Session] = OrderedDict()  # least recently used first
        self._rows = 0
        self.expired = self.evicted = 0

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def rows(self) -> int:
        return self._rows

    def begin(self, fighter_id: int, session_id: str, checkpoint_id: int, rows: int, policy, reset) -> Begun:
        """The state for a call of ``rows`` observations. ``reset``: False, True (every row
        starts a match) or one bool per row. SessionError for a session that holds another
        number of rows without a full reset."""
        if rows > self.max_rows:
            raise SessionError(f"a session holds at most {self.max_rows} fighters; this request has {rows}")
        self._expire()
        session = self._sessions.get((fighter_id, session_id))
        row_reset = None
        if reset is True:
            started = "reset"
        elif session is None:
            started = "new"
        elif session.checkpoint_id != checkpoint_id:
            started = "checkpoint"
        elif session.rows != rows:
            raise SessionError(
                f"session {session_id!r} holds the memory of {session.rows} fighters; this request has {rows} "
                f"observations: send the same fighters in the same order, or reset: true to start over"
            )
        else:
            started = None
            if reset is not False:
                row_reset = np.asarray(reset, dtype=bool)
                if row_reset.shape != (rows,):
                    raise SessionError(f"reset has {row_reset.size} values for {rows} observations")
        if started is not None:
            h, c = policy.initial_state(rows)
        else:
            h, c = session.h, session.c
            if row_reset is not None and row_reset.any():
                h, c = h.copy(), c.copy()
                h[row_reset] = 0.0
                c[row_reset] = 0.0
        return Begun(h, c, started)

    def keep(self, fighter_id: int, session_id: str, checkpoint_id: int, h: np.ndarray, c: np.ndarray) -> None:
        """Hold the state after a call (the most recently used session), evicting past the bounds."""
        key = (fighter_id, session_id)
        old = self._sessions.pop(key, None)
        if old is not None:
            self._rows -= old.rows
        self._sessions[key] = Session(checkpoint_id, h, c, self.clock())
        self._rows += len(h)
        while len(self._sessions) > self.max_sessions or self._rows > self.max_rows:
            _, gone = self._sessions.popitem(last=False)
            self._rows -= gone.rows
            self.evicted += 1

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl_s
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if oldest.last_used > deadline:
                break
            del self._sessions[key]
            self._rows -= oldest.rows
            self.expired += 1
