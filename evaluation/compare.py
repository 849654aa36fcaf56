"""Round robins: every pair of players in 1v1, then free-for-all matches, then ratings.

1v1: each pair plays ``matches`` matches from the same seed (common random numbers: every
pair meets the same spawns), the two players swapping slots every match so neither keeps
the advantage of a slot. Free-for-all: ``ffa_matches`` matches of ``ffa_fighters`` fighters
(default: everyone, at most 8), each match seating a seeded random draw of the players in a
random order.

Ratings (evaluation/ratings.py) are fitted separately to the 1v1 matches and to the
free-for-all ones (each pair of fighters in a match is one result), since the two are
different games (a fighter trained 1v1 may be lost in a crowd); ``rank_by="all"`` fits one
rating to both.
"""

from __future__ import annotations

import itertools

import numpy as np

from arena.rules import MAX_FIGHTERS, MIN_FIGHTERS
from evaluation.matches import pairwise, play, summarize, wilson_interval
from evaluation.players import Player, PlayerError, resolve_player
from evaluation.ratings import rate

RANK_BY = ("1v1", "ffa", "all")
"""which matches the sorting rating is fitted to"""


def unique_names(specs: list[str]) -> list[str]:
    """Short display names: a spec's shortest trailing path part that no other spec shares."""
    parts = [s.replace("\\", "/").split("/") for s in specs]
    names = []
    for k, p in enumerate(parts):
        for depth in range(1, len(p) + 1):
            tail = "/".join(p[-depth:])
            if all("/".join(q[-depth:]) != tail for m, q in enumerate(parts) if m != k):
                break
        names.append(tail)
    return names


def resolve_entrants(entrants, greedy: bool = True) -> list[Player]:
    """Players from specs or objects, with unique display names."""
    players = [resolve_player(e, greedy=greedy) for e in entrants]
    for p, name in zip(players, unique_names([p.name for p in players]), strict=True):
        p.name = name
    names = [p.name for p in players]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PlayerError(f"players {dupes} appear more than once; give each a name with NAME=SPEC")
    return players


def compare(
    entrants,
    matches: int = 100,
    ffa_matches: int = 100,
    ffa_fighters: int | None = None,
    seed: int = 0,
    greedy: bool = True,
    bootstrap: int = 200,
    rank_by: str = "1v1",
    rewards="standard",
    threads=None,
    **rules,
) -> dict:
    """Round robin of ``entrants`` (specs or objects, see evaluation.players): a win matrix,
    free-for-all results, and ratings sorted best first by ``rank_by``: the 1v1 rating, the
    free-for-all one ("ffa") or one fitted to both ("all"). See the module docstring."""
    players = resolve_entrants(entrants, greedy)
    n = len(players)
    if n < 2:
        raise ValueError(f"compare needs at least 2 players, got {n}")
    for name, value, low in (("matches", matches, 1), ("ffa_matches", ffa_matches, 0), ("bootstrap", bootstrap, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if rank_by not in RANK_BY or (rank_by != "1v1" and not (ffa_matches and n > MIN_FIGHTERS)):
        raise ValueError(
            f"rank_by must be one of {RANK_BY} ('ffa' and 'all' need free-for-all matches, so 3 or "
            f"more players and ffa_matches > 0), got {rank_by!r}"
        )
    ffa_fighters = min(n, MAX_FIGHTERS) if ffa_fighters is None else ffa_fighters
    if ffa_matches and n > MIN_FIGHTERS and not MIN_FIGHTERS + 1 <= ffa_fighters <= min(n, MAX_FIGHTERS):
        raise ValueError(
            f"ffa_fighters must be between 3 and {min(n, MAX_FIGHTERS)} (the players, at most "
            f"{MAX_FIGHTERS}), got {ffa_fighters!r}"
        )
    names = [p.name for p in players]
    pi, pj, ps, pm, pg = [], [], [], [], []
    offset = 0

    def collect(out, group, index):
        """Add a play's pairwise results; index maps its player list to the entrants."""
        nonlocal offset
        i, j, score, match = pairwise(out)
        pi.append(index[i]), pj.append(index[j]), ps.append(score)
        pm.append(match + offset), pg.append(np.full(len(i), group))
        offset += out.matches

    # 1v1: both orders of seats, alternating match by match.
    matrix = {a: {} for a in names}
    swap = np.arange(matches) % 2 == 1
    for g, (a, b) in enumerate(itertools.combinations(range(n), 2)):
        seats = np.where(swap[:, None], [1, 0], [0, 1])
        out = play([players[a], players[b]], seats, seed=seed, rewards=rewards, threads=threads, **rules)
        collect(out, g, np.array([a, b]))
        for me, other, index in ((a, b, 0), (b, a, 1)):
            s = summarize(out, index)
            wins = round(s["win_rate"] * matches)
            draws = round(s["draw_rate"] * matches)
            matrix[names[me]][names[other]] = {
                "win_rate": s["win_rate"],
                "ci95": s["ci95"],
                "draw_rate": s["draw_rate"],
                "wins": wins,
                "draws": draws,
                "losses": matches - wins - draws,
                "matches": matches,
                "avg_reward": s["avg_reward"],
                "match_length": s["match_length"],
            }
    pairs = n * (n - 1) // 2

    # Free-for-all: a seeded random draw of players per match, in random seat order.
    ffa = None
    if ffa_matches and n >= MIN_FIGHTERS + 1:
        rng = np.random.default_rng(seed)
        seats = np.stack([rng.permutation(n)[:ffa_fighters] for _ in range(ffa_matches)])
        out = play(players, seats, seed=seed, rewards=rewards, threads=threads, **rules)
        collect(out, pairs, np.arange(n))
        ffa = {"fighters": ffa_fighters, "matches": ffa_matches, "results": {}}
        for p, name in enumerate(names):
            s = summarize(out, p)
            ffa["results"][name] = {
                k: s[k]
                for k in (
                    "win_rate",
                    "ci95",
                    "draw_rate",
                    "mean_rank",
                    "avg_reward",
                    "knockouts",
                    "ring_outs",
                    "survival_rate",
                    "matches",
                )
            }

    def fit(groups):
        pick = np.isin(np.concatenate(pg), groups)
        cat = lambda parts: np.concatenate(parts)[pick]  # noqa: E731
        return rate(n, cat(pi), cat(pj), cat(ps), cat(pm), cat(pg), bootstrap=bootstrap, seed=seed)

    fits = {"1v1": fit(np.arange(pairs))}
    if ffa:
        fits["ffa"] = fit([pairs])
    if rank_by == "all":
        fits["all"] = fit(np.arange(pairs + 1))
    order = np.argsort(-fits[rank_by]["rating"], kind="stable")
    ratings = []
    for place, p in enumerate(order, start=1):
        vs = matrix[names[p]].values()
        wins = sum(v["wins"] for v in vs)
        played = sum(v["matches"] for v in vs)
        row = {
            "rank": place,
            "name": names[p],
            "rating": round(float(fits[rank_by]["rating"][p]), 1),
            "ci95": [round(float(x), 1) for x in fits[rank_by]["ci95"][p]],
        }
        for mode, r in fits.items():
            row[f"rating_{mode}"] = round(float(r["rating"][p]), 1)
            row[f"rating_{mode}_ci95"] = [round(float(x), 1) for x in r["ci95"][p]]
        row.update(
            {
                "win_rate_1v1": wins / played,
                "win_rate_1v1_ci95": [round(x, 6) for x in wilson_interval(wins, played)],
                "ffa_win_rate": ffa["results"][names[p]]["win_rate"] if ffa else None,
                "ffa_mean_rank": ffa["results"][names[p]]["mean_rank"] if ffa else None,
            }
        )
        ratings.append(row)
    return {
        "players": names,
        "seed": seed,
        "matches_1v1": matches,
        "rank_by": rank_by,
        "ratings": ratings,
        "matrix": matrix,
        "ffa": ffa,
        "bootstrap": bootstrap,
        "rating_model": "Bradley-Terry on the Elo scale (mean 1500), MAP fit with 1 virtual draw per player; "
        "ci95: 2.5-97.5 percentiles over bootstrap resamples of the matches",
    }
