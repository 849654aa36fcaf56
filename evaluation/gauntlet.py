"""The gauntlet: one fighter against every built-in bot and every held-out bot variant.

    from evaluation.gauntlet import gauntlet
    result = gauntlet("runs/a/checkpoints/best.pt", matches=200, seed=0)
    result.worst.opponent, result.worst.win_rate, result.results["far_kiter"]["draw_rate"]

A fighter that beats the bots it trained against may still lose to behaviour it never met.
The gauntlet plays the seven built-in bots (arena.rules.BOT_NAMES) and the named variants
whose parameters lie outside the training ranges (arena.variants.HELD_OUT_VARIANTS), plus any
extra opponents (checkpoints, module:function players, more variants), each over the same
seeded matches as ``evaluate``, and reports the worst case: the opponent it wins least
against. A mean over opponents hides the one a player will find.
"""

from __future__ import annotations

from dataclasses import dataclass

from arena import GAUNTLET_OPPONENTS, HELD_OUT_VARIANTS
from evaluation.evaluate import evaluate, opponent_table
from evaluation.tables import format_table


@dataclass(frozen=True)
class WorstCase:
    """The opponent the fighter wins least against (the first such in the gauntlet's order)."""

    opponent: str
    win_rate: float


@dataclass(frozen=True)
class GauntletResult:
    """The figures per opponent (evaluate's fields, in the gauntlet's order) and the worst case."""

    results: dict
    """opponent -> the figures ``evaluate`` gives (win_rate, ci95, draw_rate, ...)"""
    worst: WorstCase

    def to_json(self) -> dict:
        return {
            "results": self.results,
            "worst": {"opponent": self.worst.opponent, "win_rate": self.worst.win_rate},
        }


def gauntlet_opponents(extra=()) -> dict:
    """name -> spec: the gauntlet's opponents followed by ``extra`` (specs, keyed by NAME for
    ``NAME=SPEC``, or a mapping name -> spec or object), without repeats; a name that is already
    another opponent's is a PlayerError (evaluation.evaluate.opponent_table)."""
    if isinstance(extra, str):
        extra = [extra]
    return opponent_table(extra, {name: name for name in GAUNTLET_OPPONENTS})


def worst_case(results: dict) -> WorstCase:
    """The lowest win rate of ``results`` and its opponent (the first in order on a tie)."""
    if not results:
        raise ValueError("no results to take the worst case of")
    name = min(results, key=lambda k: results[k]["win_rate"])
    return WorstCase(name, float(results[name]["win_rate"]))


def gauntlet(
    policy,
    matches: int = 200,
    seed: int = 0,
    extra=(),
    fighters: int = 2,
    greedy: bool = True,
    rewards="standard",
    threads=None,
    **rules,
) -> GauntletResult:
    """Evaluate ``policy`` (anything ``evaluate`` takes) against the gauntlet and ``extra``
    opponents, ``matches`` seeded matches each. rewards, rules: as in ``evaluate``."""
    results = evaluate(
        policy,
        gauntlet_opponents(extra),
        matches=matches,
        seed=seed,
        fighters=fighters,
        greedy=greedy,
        rewards=rewards,
        threads=threads,
        **rules,
    )
    return GauntletResult(results, worst_case(results))


def format_gauntlet(result: GauntletResult) -> str:
    """The per-opponent table, held-out variants marked, and the worst-case line."""
    held_out = set(HELD_OUT_VARIANTS)
    marked = {(f"{k} *" if k in held_out else k): v for k, v in result.results.items()}
    worst = result.worst
    return (
        format_table(marked)
        + "\n* held-out variant (parameters outside the training ranges; docs/evaluation.md)"
        + f"\nworst case: {worst.opponent}, win rate {worst.win_rate:.1%}"
    )
