"""How matches ended: the arena's own rule for a win, and a typed record of the results.

A match is won by finishing as the sole rank-1 fighter: the last one standing, or the
healthiest at the time limit. Two or more fighters sharing rank 1 is a draw for each of
them. Every part of the project that counts wins (the envs' reports, evaluation, the
league, the demo) asks this module, so the rule is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sole_first(rank: np.ndarray) -> np.ndarray:
    """Per match (rows of ``rank``, one column per fighter): whether one fighter alone has rank 1."""
    return (rank == 1).sum(axis=-1) == 1


def wins(rank: np.ndarray) -> np.ndarray:
    """Per match and fighter: finished as the sole rank-1 fighter."""
    return (rank == 1) & sole_first(rank)[..., None]


def draws(rank: np.ndarray) -> np.ndarray:
    """Per match and fighter: shared rank 1 with another fighter."""
    return (rank == 1) & ~sole_first(rank)[..., None]


@dataclass
class MatchResults:
    """The last ended match of some arenas: one row per arena, one column per fighter slot."""

    rank: np.ndarray
    """competition rank, 1 = best (int)"""
    ret: np.ndarray
    """return collected in the match, in the reward weights it was played with"""
    hits: np.ndarray
    """hits landed"""
    knockouts: np.ndarray
    """knockouts credited to the fighter"""
    ring_outs: np.ndarray
    """ring-outs credited to the fighter"""
    fate: np.ndarray
    """arena.spec FATE_ALIVE, FATE_KNOCKED_OUT or FATE_RING_OUT"""
    length: np.ndarray
    """match length in 60 Hz frames, one per arena"""

    @property
    def win(self) -> np.ndarray:
        """finished as the sole rank-1 fighter"""
        return wins(self.rank)

    @property
    def draw(self) -> np.ndarray:
        """shared rank 1"""
        return draws(self.rank)

    @property
    def sole_first(self) -> np.ndarray:
        """per arena: the match had a single winner"""
        return sole_first(self.rank)
