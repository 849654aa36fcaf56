"""``evaluate()``: how good a fighter is, over seeded matches against each of some opponents.

    from evaluation.evaluate import evaluate        # also: from evaluate import evaluate
    results = evaluate(policy, opponents=["random", "chaser"], matches=200, seed=0)
    results["chaser"]["win_rate"], results["chaser"]["ci95"]

Each opponent gets exactly ``matches`` matches: one ArenaEnv with one arena per match and only
each arena's first match counts. Against a bot, the evaluated fighter is in slot 0 and the
other slots are that bot; against a policy (checkpoint or callable) every slot is an agent,
the evaluated fighter taking slot ``match % fighters`` so that no slot is favoured, and each
side's rows are batched into one call per decision. Everything is seeded, so the same
players, seed and rules give the same numbers. A win is finishing as the sole rank-1 fighter
(arena.results).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from configs import split_name
from evaluation.matches import play, summarize
from evaluation.players import Player, PlayerError, resolve_player


def versus(
    learner: Player,
    opponent: Player,
    matches: int,
    seed: int,
    fighters: int = 2,
    rewards="standard",
    threads=None,
    **rules,
) -> dict:
    """The learner's figures over ``matches`` first matches against ``fighters - 1`` copies of
    the opponent (see summarize in evaluation/matches.py for the keys)."""
    if opponent.kind == "bot":
        players, bots = [learner], [opponent.bot] * (fighters - 1)
        seats = np.zeros((matches, 1), dtype=np.int64)
    else:
        players, bots = [learner, opponent], []
        seats = np.ones((matches, fighters), dtype=np.int64)
        seats[np.arange(matches), np.arange(matches) % fighters] = 0
    out = play(players, seats, bots, seed=seed, rewards=rewards, threads=threads, **rules)
    return summarize(out, 0)


def play_matches(act, opponent, matches: int, seed: int, fighters: int = 2, rewards="standard", **rules) -> dict:
    """Play ``matches`` first matches of a callable ``obs -> actions`` against ``fighters - 1``
    copies of one opponent (a spec or a Player)."""
    learner = resolve_player(act, name="learner")
    return versus(learner, resolve_player(opponent), matches, seed, fighters, rewards, **rules)


def evaluate(
    policy,
    opponents=("random", "chaser"),
    matches: int = 200,
    seed: int = 0,
    fighters: int = 2,
    greedy: bool = True,
    rewards="standard",
    threads=None,
    **rules,
) -> dict:
    """Results per opponent: win_rate, ci95 (Wilson, 95%), draw_rate, avg_reward, hits,
    knockouts and ring_outs (per match, dealt by the evaluated fighter), knocked_out and
    rung_out (how often it fell that way), survival_rate (still standing at the end),
    mean_rank, match_length (frames at 60 Hz), matches.

    policy: an AgentCheckpoint, a torch policy, a callable obs (n, 30) -> actions (n,), or a
    player spec (a bot name, checkpoint path, module:function, uniform).
    opponents: specs (results are keyed by the spec as written, or by NAME for ``NAME=SPEC``),
    or a mapping name -> spec or object.
    rewards: the weights avg_reward is measured in. rules: arena.Rules overrides.
    threads: numba threads stepping the arenas (None: numba's setting).
    """
    if isinstance(opponents, str):
        opponents = [opponents]
    if not isinstance(matches, int) or isinstance(matches, bool) or matches < 1:
        raise ValueError(f"matches must be an integer >= 1, got {matches!r}")
    pairs = list(opponent_table(opponents).items())
    if not pairs:
        raise ValueError("give at least one opponent")
    learner = resolve_player(policy, greedy, name=None if isinstance(policy, str) else "learner")
    resolved = []
    for key, spec in pairs:
        opponent = resolve_player(spec, greedy)
        resolved.append((key if isinstance(key, str) else opponent.name, opponent))
    return {
        key: versus(learner, opponent, matches, seed, fighters, rewards, threads, **rules) for key, opponent in resolved
    }


def result_key(spec):
    """The results key of an opponent given in a list: NAME for ``NAME=SPEC``, else the spec as
    written (an object: itself)."""
    return (split_name(spec)[0] or spec) if isinstance(spec, str) else spec


def opponent_table(opponents, table=None) -> dict:
    """name -> spec: ``table`` (if given) extended by ``opponents``, a mapping name -> spec or
    object, or specs keyed by result_key. A spec given twice counts once; one name for two
    different opponents is a PlayerError, since one result would silently replace the other."""
    table = dict(table or {})
    pairs = opponents.items() if isinstance(opponents, Mapping) else ((result_key(o), o) for o in opponents)
    for key, spec in pairs:
        known = table.setdefault(key, spec)
        if known is not spec and not (isinstance(known, str) and known == spec):
            raise PlayerError(
                f"two opponents are named {key!r} ({known!r} and {spec!r}); give each its own name with NAME=SPEC"
            )
    return table


def mean_over_opponents(results: dict, key: str = "win_rate") -> float:
    """The mean of one figure over the opponents of an ``evaluate`` result."""
    return float(np.mean([r[key] for r in results.values()]))
