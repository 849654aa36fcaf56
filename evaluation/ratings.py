"""Ratings on the Elo scale from pairwise results, with bootstrap confidence intervals.

The model is Bradley-Terry, the model behind Elo: player i beats player j with probability
``1 / (1 + 10 ** ((R_j - R_i) / 400))``. Instead of Elo's sequential updates, whose result
depends on the order of the games (and every match here is played at once), the ratings
are the maximum a posteriori fit to all results together (Newton's method on the
log-likelihood, which is concave). A draw counts as half a win for each side. A
free-for-all match contributes one result per pair of fighters in it (who finished
better).

Prior: every player is given ``prior_games`` virtual draws against a fixed anchor. This
keeps ratings finite for a perfect record (a chaser that beats an idle bot every time would
otherwise be infinitely better) and otherwise moves them by a few points at most. Ratings
are reported with their mean set to BASE_RATING.

Uncertainty: the matches are resampled with replacement (within each pairing, so every
pairing keeps its number of matches) and the ratings refitted; ci95 is the 2.5th and
97.5th percentile of each player's rating over those fits. Resampling whole matches keeps
the pairs of one free-for-all match together, so their correlation is accounted for.
"""

from __future__ import annotations

import math

import numpy as np

ELO_SCALE = 400.0 / math.log(10.0)
"""Elo points per unit of the logistic model's log-strength"""
BASE_RATING = 1500.0
"""the mean rating of the players compared"""
PRIOR_GAMES = 1.0
"""virtual draws each player has against a fixed anchor (keeps perfect records finite)"""
NEWTON_TOL = 1e-9
"""stop when the largest Newton step is below this (log-strength units)"""
MAX_NEWTON_STEPS = 100


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def fit_log_strengths(games: np.ndarray, wins: np.ndarray, prior_games: float = PRIOR_GAMES) -> np.ndarray:
    """Log-strengths theta (n,) maximising the Bradley-Terry posterior.

    games[i, j]: results between i and j (symmetric); wins[i, j]: i's score against j
    (wins + draws / 2), so wins + wins.T == games.
    """
    n = games.shape[0]
    theta = np.zeros(n)

    def log_posterior(t):
        d = t[:, None] - t[None, :]
        log_p = -np.logaddexp(0.0, -d)  # log sigmoid(d)
        return float((wins * log_p).sum() + prior_games * 0.5 * (-np.logaddexp(0.0, -t) - np.logaddexp(0.0, t)).sum())

    current = log_posterior(theta)
    for _ in range(MAX_NEWTON_STEPS):
        p = _sigmoid(theta[:, None] - theta[None, :])
        grad = (wins - games * p).sum(axis=1) + prior_games * (0.5 - _sigmoid(theta))
        w = games * p * (1.0 - p)
        s = _sigmoid(theta)
        hess = w - np.diag(w.sum(axis=1) + prior_games * s * (1.0 - s))  # negative definite
        step = np.linalg.solve(hess, -grad)
        scale = 1.0
        while True:  # damped Newton: halve the step until the posterior does not drop
            candidate = theta + scale * step
            value = log_posterior(candidate)
            if value >= current - 1e-12 or scale < 1e-6:
                break
            scale *= 0.5
        theta, current = candidate, value
        if np.abs(scale * step).max() < NEWTON_TOL:
            break
    return theta


def _tables(n, i, j, score, weight):
    games = np.zeros((n, n))
    wins = np.zeros((n, n))
    np.add.at(games, (i, j), weight)
    np.add.at(games, (j, i), weight)
    np.add.at(wins, (i, j), weight * score)
    np.add.at(wins, (j, i), weight * (1.0 - score))
    return games, wins


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Log-strengths to Elo points with mean BASE_RATING."""
    return BASE_RATING + ELO_SCALE * (theta - theta.mean())


def rate(
    n: int, i, j, score, match=None, group=None, bootstrap: int = 200, seed: int = 0, prior_games: float = PRIOR_GAMES
) -> dict:
    """Ratings of players 0..n-1 from pairwise results.

    i, j, score: one entry per result, score being i's (1 win, 0.5 draw, 0 loss); match: the
    match each result came from (results of one match are resampled together; default: each
    its own); group: the pairing each match belongs to (resampling keeps the matches per
    pairing; default: one group). Returns rating (n,), ci95 (n, 2), games (n,), score (n,:
    mean score per result) and the bootstrap count.
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    score = np.asarray(score, dtype=float)
    match = np.arange(len(i)) if match is None else np.asarray(match, dtype=np.int64)
    games, wins = _tables(n, i, j, score, np.ones(len(i)))
    rating = to_elo(fit_log_strengths(games, wins, prior_games))

    # Bootstrap: resample matches (within each group) with replacement and refit.
    match_ids, match_of = np.unique(match, return_inverse=True)
    if group is None:
        group_of_match = np.zeros(len(match_ids), dtype=np.int64)
    else:
        group = np.asarray(group, dtype=np.int64)
        group_of_match = np.zeros(len(match_ids), dtype=np.int64)
        group_of_match[match_of] = group
    members = [np.flatnonzero(group_of_match == g) for g in np.unique(group_of_match)]
    rng = np.random.default_rng(seed)
    samples = np.empty((bootstrap, n))
    for b in range(bootstrap):
        counts = np.zeros(len(match_ids))
        for m in members:
            counts[m] = np.bincount(rng.integers(0, len(m), len(m)), minlength=len(m))
        g, w = _tables(n, i, j, score, counts[match_of])
        samples[b] = to_elo(fit_log_strengths(g, w, prior_games))
    if bootstrap:
        ci95 = np.percentile(samples, [2.5, 97.5], axis=0).T
    else:
        ci95 = np.full((n, 2), np.nan)
    played = games.sum(axis=1)
    return {
        "rating": rating,
        "ci95": ci95,
        "games": played,
        "score": np.divide(wins.sum(axis=1), played, out=np.full(n, np.nan), where=played > 0),
        "bootstrap": bootstrap,
    }


def expected_score(rating_i: float, rating_j: float) -> float:
    """The model's probability that i beats j (a draw counting half)."""
    return 1.0 / (1.0 + 10.0 ** ((rating_j - rating_i) / 400.0))
