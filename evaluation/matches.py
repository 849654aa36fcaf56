"""Seeded matches between players, and the figures that summarise them.

One ArenaEnv holds one arena per match. Its agent slots (the first ones) are driven by
players: `seats[a, k]` names the player in agent slot k of arena a, and every player's
rows are batched into one call per decision. The remaining slots may hold the kernel's
scripted bots (`bots`). Only each arena's first match counts; the env resets arenas as
they end, and the loop stops when all have ended once.

A bot can also sit in an agent slot (evaluating "chaser" as the learner, or a round robin
between bots): its actions are then computed from the arena state by the kernel's own bot
code (``Arena.bot_actions``) before each decision, so it plays exactly as the built-in bot does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena import ACTION_IDLE, FATE_ALIVE, FATE_KNOCKED_OUT, FATE_RING_OUT, MatchResults
from evaluation.players import Player, PlayerError, check_actions

Z95 = 1.959963984540054
"""two-sided 95% normal quantile, for the Wilson score interval"""
NO_PLAYER = -1
"""seat_player value of a slot held by a scripted bot of the env"""


def wilson_interval(wins: float, n: int, z: float = Z95) -> list[float]:
    """Wilson score interval of a binomial proportion: [lo, hi] (the whole [0, 1] for n = 0)."""
    if n == 0:
        return [0.0, 1.0]
    p = wins / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


class ActionRouter:
    """Chooses every agent row's action: each player's rows in one batch per decision."""

    def __init__(self, players: list[Player], seats: np.ndarray, arena, seed: int = 0):
        num_arenas, per_arena = seats.shape
        assert per_arena == len(arena.agent_slots) and num_arenas == arena.num_arenas
        self.arena = arena
        agent_slots = np.asarray(arena.agent_slots, dtype=np.int64)
        flat = seats.reshape(-1)  # agent row = arena * per_arena + k, as the env orders them
        self.groups = []
        for p, player in enumerate(players):
            rows = np.flatnonzero(flat == p)
            if len(rows) == 0:
                continue
            if player.kind == "bot":
                bot = (
                    arena.variant_row(player.bot),  # resolved once: the bot's row of the variant table
                    rows // per_arena,
                    agent_slots[rows % per_arena],
                    np.zeros(len(rows), dtype=np.int32),
                )
                self.groups.append((player, rows, None, bot))
            else:
                self.groups.append((player, rows, player.actor(seed + p), None))
        self.actions = np.full(arena.num_agents, ACTION_IDLE, dtype=np.int32)
        self.starts = np.ones(arena.num_agents, dtype=bool)  # the row's next decision is a match's first

    def ended(self, done: np.ndarray) -> None:
        """The last decision ended these rows' matches (a recurrent player's memory starts afresh)."""
        self.starts[:] = done

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        for player, rows, act, bot in self.groups:
            if bot is not None:
                name, arenas, slots, out = bot
                self.actions[rows] = self.arena.bot_actions(name, arenas, slots, out)
            else:
                batch = obs[rows, : player.obs_size]  # a basic-observation player reads the first 30
                try:
                    actions = act(batch, self.starts[rows]) if getattr(act, "recurrent", False) else act(batch)
                except Exception as exc:  # a user's function may fail in any way; name it and the input
                    if player.kind != "callable":
                        raise
                    raise PlayerError(
                        f"player {player.name!r} failed on observations of shape {batch.shape}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self.actions[rows] = check_actions(player, actions, len(rows))
        return self.actions


@dataclass
class Outcomes:
    """How each arena's first match ended, and who sat where."""

    results: MatchResults
    """per match (first axis) and fighter slot (second axis)"""
    seat_player: np.ndarray
    """player index per slot, NO_PLAYER for the env's scripted bots"""

    @property
    def matches(self) -> int:
        return len(self.results.length)


def observation_for(players) -> str:
    """The observation kind an env must give for these players: full if any reads it."""
    from arena import OBSERVATIONS

    widest = max([p.obs_size for p in players] + [OBSERVATIONS["basic"]])
    return next(kind for kind, size in OBSERVATIONS.items() if size == widest)


def play(players: list[Player], seats, bots=(), seed: int = 0, rewards="standard", threads=None, **rules) -> Outcomes:
    """Play one first match per row of ``seats`` (int, (matches, agent slots)).

    bots: bot names for the env's scripted slots after the agent slots. rewards, rules: the
    ArenaEnv's. Each player's actor is seeded with ``seed + its index``. The env gives the
    full observation when a player reads it (the basic one is its first 30 numbers).
    """
    from envs import ArenaEnv

    seats = np.asarray(seats, dtype=np.int64)
    matches, per_arena = seats.shape
    env = ArenaEnv(
        num_arenas=matches,
        fighters_per_arena=per_arena + len(bots),
        seed=seed,
        opponents=list(bots) or None,
        rewards=rewards,
        report_interval=1 << 30,
        threads=threads,
        observation=observation_for(players),
        **rules,
    )
    arena = env.arena
    router = ActionRouter(players, seats, arena, seed)
    obs, _ = env.reset(seed=seed)
    shape = (matches, arena.fighters)
    results = MatchResults(
        rank=np.zeros(shape, dtype=np.int64),
        ret=np.zeros(shape),
        hits=np.zeros(shape, dtype=np.int64),
        knockouts=np.zeros(shape, dtype=np.int64),
        ring_outs=np.zeros(shape, dtype=np.int64),
        fate=np.zeros(shape, dtype=np.int8),
        length=np.zeros(matches, dtype=np.int64),
    )
    finished = np.zeros(matches, dtype=bool)
    max_steps = math.ceil(env.rules.max_frames / env.rules.frame_skip) + 1
    for _ in range(max_steps):
        obs, _, terminal, truncation, _ = env.step(router(obs))
        router.ended(terminal | truncation)
        ended = arena.ended()
        ended = ended[~finished[ended]]
        if len(ended):
            first = arena.results(ended)
            for name in ("rank", "ret", "hits", "knockouts", "ring_outs", "fate", "length"):
                getattr(results, name)[ended] = getattr(first, name)
            finished[ended] = True
            if finished.all():
                break
    else:
        raise RuntimeError(
            f"{int((~finished).sum())} matches did not end within max_frames; the env broke its contract"
        )
    env.close()
    seat_player = np.full(shape, NO_PLAYER, dtype=np.int64)
    seat_player[:, arena.agent_slots] = seats
    return Outcomes(results, seat_player)


def summarize(out: Outcomes, player: int) -> dict:
    """The figures of one player over the matches it took part in (its first seat in each).

    win_rate (sole rank 1) with its Wilson 95% interval, draw_rate (shared rank 1),
    avg_reward, hits, knockouts and ring_outs (dealt, per match), knocked_out and rung_out
    (how often it fell that way), survival_rate, mean_rank, match_length (frames), matches.
    """
    r = out.results
    present = (out.seat_player == player).any(axis=1)
    rows = np.flatnonzero(present)
    seat = (out.seat_player[rows] == player).argmax(axis=1)
    n = len(rows)

    def pick(a):
        return a[rows, seat].astype(float)

    def mean(x):
        return float(np.mean(x)) if n else float("nan")

    fate = r.fate[rows, seat]
    wins = int(r.win[rows, seat].sum())
    return {
        "win_rate": wins / n if n else float("nan"),
        "ci95": [round(x, 6) for x in wilson_interval(wins, n)],
        "draw_rate": mean(r.draw[rows, seat]),
        "avg_reward": mean(pick(r.ret)),
        "hits": mean(pick(r.hits)),
        "knockouts": mean(pick(r.knockouts)),
        "ring_outs": mean(pick(r.ring_outs)),
        "knocked_out": mean(fate == FATE_KNOCKED_OUT),
        "rung_out": mean(fate == FATE_RING_OUT),
        "survival_rate": mean(fate == FATE_ALIVE),
        "mean_rank": mean(pick(r.rank)),
        "match_length": mean(r.length[rows]),
        "matches": n,
    }


def pairwise(out: Outcomes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of players' seats in every match as (i, j, score of i, match): score 1 when
    i finished better, 0.5 on an equal rank, 0 worse. The input of the ratings."""
    n_matches, fighters = out.results.rank.shape
    first, second = np.triu_indices(fighters, k=1)
    pi, pj = out.seat_player[:, first], out.seat_player[:, second]
    ri, rj = out.results.rank[:, first], out.results.rank[:, second]
    score = np.where(ri < rj, 1.0, np.where(ri == rj, 0.5, 0.0))
    match = np.broadcast_to(np.arange(n_matches)[:, None], pi.shape)
    keep = (pi != NO_PLAYER) & (pj != NO_PLAYER) & (pi != pj)
    return pi[keep], pj[keep], score[keep], match[keep]
