"""The server's memory of recurrent fighters between /act calls (ingest/sessions.py), without sockets."""

import numpy as np
import pytest

from ingest.sessions import SessionError, SessionStore


class Zeros:
    """What the store needs of a policy: fresh state for n fighters."""

    def initial_state(self, n):
        return np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def step(store, session="m1", rows=2, reset=False, checkpoint=7, fighter=1):
    """One call: begin, then keep a state that marks how many calls the rows have seen."""
    begun = store.begin(fighter, session, checkpoint, rows, Zeros(), reset)
    h, c = begun.h + 1.0, begun.c + 1.0
    store.keep(fighter, session, checkpoint, h, c)
    return begun


def test_state_carries_over_calls_and_resets_on_request():
    store = SessionStore()
    assert step(store).started == "new"
    second = step(store)
    assert second.started is None and second.h.tolist() == [[1.0] * 4] * 2
    assert step(store, reset=True).started == "reset"
    partial = step(store, reset=[True, False])  # the first fighter starts a new match
    assert partial.started is None and partial.h[:, 0].tolist() == [0.0, 1.0]


def test_sessions_are_per_fighter_and_follow_the_serving_checkpoint():
    store = SessionStore()
    step(store, fighter=1)
    assert step(store, fighter=2).started == "new"  # the same id under another fighter is another session
    assert step(store, fighter=1, checkpoint=8).started == "checkpoint"  # a new best model: fresh memory


def test_another_number_of_rows_is_an_error_unless_reset():
    store = SessionStore()
    step(store, rows=2)
    with pytest.raises(SessionError, match="holds the memory of 2 fighters; this request has 3"):
        step(store, rows=3)
    assert step(store, rows=3, reset=True).started == "reset"
    with pytest.raises(SessionError, match="reset has 2 values for 3"):
        step(store, rows=3, reset=[True, False])


def test_sessions_expire_and_the_least_recently_used_go_past_the_bounds():
    clock = Clock()
    store = SessionStore(max_sessions=3, max_rows=8, ttl_s=10.0, clock=clock)
    for name in "abc":
        step(store, session=name)
    clock.now = 5.0
    step(store, session="a")  # a is now the most recently used
    step(store, session="d")  # a fourth session: b, the least recently used, goes
    assert len(store) == 3 and store.evicted == 1
    assert step(store, session="b").started == "new"
    clock.now = 100.0
    assert step(store, session="a").started == "new"  # expired
    assert store.expired >= 2 and len(store) == 1 and store.rows == 2
    step(store, session="big", rows=8)  # 10 rows in all: past max_rows, a goes
    assert store.rows <= 8
    with pytest.raises(SessionError, match="at most 8"):
        step(store, session="huge", rows=9)
