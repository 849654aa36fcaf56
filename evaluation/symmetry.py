"""How symmetric a fighter plays: the same situation, turned or mirrored, gets the turned move?

    from evaluation.symmetry import symmetry_report
    report = symmetry_report("runs/a/checkpoints/best.pt", opponents=["idle", "chaser"], matches=8)
    report.agreement, report.kl, report.per_opponent["idle"].agreement

The ring's 16 symmetries (arena.symmetry) map every match onto an equally likely match, so a
fighter should answer a turned situation with the turned move. This plays a few seeded
matches against each opponent, takes the states the fighter saw, and turns each by every
symmetry but the identity: ``agreement`` is the share of (state, symmetry) pairs whose greedy
action in the turned state is the turned greedy action, ``kl`` the mean KL divergence of the
turned state's action distribution (moves permuted back) from the state's, in nats; ``turns``
and ``mirrors`` the agreement under the 7 turns and the 8 mirrored symmetries apart. A fighter
that ignores the ring's orientation scores 1.0 and 0.0; one trained without
``train.symmetry_coef`` scored about 0.4 and 3.5 (docs/training.md, "The symmetry loss").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from arena.symmetry import ELEMENTS, MOVES, action_permutations, observation_matrices
from evaluation.replay import record_match
from policies import AgentCheckpoint


@dataclass(frozen=True)
class Symmetry:
    """One set of states' figures."""

    states: int
    agreement: float
    """share of (state, symmetry) pairs with the turned greedy action in the turned state"""
    kl: float
    """mean KL(pi(.|s) || P_g pi(.|g s)), nats"""
    turns: float
    """agreement under the 7 turns alone"""
    mirrors: float
    """agreement under the 8 mirrored symmetries alone"""


@dataclass(frozen=True)
class SymmetryReport:
    """Over all the states, and per opponent."""

    agreement: float
    kl: float
    turns: float
    mirrors: float
    states: int
    per_opponent: dict
    """opponent -> Symmetry"""

    def to_json(self) -> dict:
        return asdict(self)  # per_opponent's Symmetry records become dicts too


def symmetry_report(checkpoint, opponents=("idle", "chaser", "striker", "kiter"), matches: int = 8, seed: int = 0):
    """SymmetryReport of a feed-forward checkpoint over ``matches`` seeded matches per opponent."""
    if matches < 1:
        raise ValueError(f"matches must be at least 1, got {matches}")
    model = AgentCheckpoint.load(checkpoint)
    if model.recurrent:
        raise ValueError(
            f"{checkpoint} is a recurrent fighter: its action depends on its memory, not on one state; "
            "the symmetry figures are for feed-forward fighters"
        )
    per_opponent, totals = {}, []
    for opponent in opponents:
        states = []
        for match in range(matches):
            obs = record_match(model, opponent, seed=seed, match=match).obs
            states.append(obs[np.abs(obs).sum(axis=1) > 0])  # an eliminated fighter's zeros say nothing
        figures = _measure(model.policy, np.concatenate(states))
        per_opponent[opponent] = figures
        totals.append(figures)
    count = sum(f.states for f in totals)

    def mean(name):
        return sum(getattr(f, name) * f.states for f in totals) / count

    return SymmetryReport(
        agreement=mean("agreement"),
        kl=mean("kl"),
        turns=mean("turns"),
        mirrors=mean("mirrors"),
        states=count,
        per_opponent=per_opponent,
    )


def turned_kl(logp: torch.Tensor, turned_logp: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Per row, KL(pi(.|s) || P_g pi(.|g s)) in nats: ``logp`` the log-probabilities in the state,
    ``turned_logp`` those in the state turned by the row's symmetry g, ``permutations`` (rows,
    actions) the row's action_permutation (the moves of the turned state permuted back). The
    symmetry loss (training.symmetry) minimises it; symmetry_report reports its mean."""
    aligned = turned_logp.gather(1, permutations)  # aligned[:, a]: the turned state's probability of a's turned move
    return (logp.exp() * (logp - aligned)).sum(-1)


def _measure(policy, obs: np.ndarray) -> Symmetry:
    matrices = torch.as_tensor(observation_matrices(obs.shape[1]))
    permutations = torch.as_tensor(action_permutations())
    x = torch.as_tensor(obs, dtype=torch.float32)
    agree, kl = [], []
    with torch.no_grad():
        logp = torch.log_softmax(policy(x)[0], dim=-1)
        greedy = logp.argmax(-1)
        for g in range(1, ELEMENTS):
            turned = torch.log_softmax(policy(x @ matrices[g].T)[0], dim=-1)
            perm = permutations[g]
            agree.append((turned.argmax(-1) == perm[greedy]).float())
            kl.append(turned_kl(logp, turned, perm.expand_as(logp)))
    agree = torch.stack(agree)  # (15, states): elements 1..7 turn, 8..15 mirror (arena.symmetry)
    return Symmetry(
        states=len(obs),
        agreement=float(agree.mean()),
        kl=float(torch.stack(kl).mean()),
        turns=float(agree[: MOVES - 1].mean()),
        mirrors=float(agree[MOVES - 1 :].mean()),
    )


def format_symmetry(report: SymmetryReport) -> str:
    lines = [f"{'opponent':<16} {'states':>7} {'agreement':>10} {'turns':>7} {'mirrors':>8} {'KL (nats)':>10}"]
    for name, s in [*report.per_opponent.items(), ("all", report)]:
        lines.append(
            f"{name:<16} {s.states:>7} {100 * s.agreement:>9.1f}% {100 * s.turns:>6.1f}% {100 * s.mirrors:>7.1f}% "
            f"{s.kl:>10.3f}"
        )
    return "\n".join(lines)
