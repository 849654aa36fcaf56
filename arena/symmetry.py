"""The ring's symmetries: the 16 turns and mirrors that map a match onto another match.

The ring is a circle and a fighter moves in 8 compass directions, 45 degrees apart, so
turning the whole ring by a multiple of 45 degrees, or mirroring it across the x axis and
then turning it, maps every match onto another one that plays out the same way: positions,
velocities and facings turn with it, health and cooldowns stay, and each move action
becomes the move in the turned direction (the dihedral group of order 16). The spawn
rotation is uniform, so the two matches are equally likely.

A policy that fights well in one of them should fight as well in the other; a network
learns that only from data, and a rare situation (an opponent that never comes, seen from
one side of the ring) can stay badly played on one side. ``observation_matrices`` and
``action_permutations`` give each symmetry as a linear map of the observation and a
permutation of the actions, for training.symmetry's consistency loss.

Element ``g`` in 0..15: mirror first if ``g >= 8`` (y -> -y), then turn counter-clockwise by
``(g % 8) * 45`` degrees. Element 0 is the identity.
"""

from __future__ import annotations

import math

import numpy as np

from arena.spec import ENEMY_FEATURES, FULL_EXTRA, NUM_ACTIONS, OBS_ENEMIES, OBS_SIZE, OBSERVATIONS

ELEMENTS = 16
"""the group's size: 8 turns, each with and without the mirror"""
MOVES = 8
"""actions 0..7 are moves, 45 degrees apart clockwise from north; the others (idle, attack)
are the same action in every turned ring"""


def vector_map(g: int) -> np.ndarray:
    """The 2x2 matrix that element ``g`` applies to positions, velocities and (cos, sin) of facings."""
    _check_element(g)
    turn = (g % MOVES) * math.pi / 4
    c, s = math.cos(turn), math.sin(turn)
    rotation = np.array([[c, -s], [s, c]])
    mirror = np.diag([1.0, -1.0]) if g >= MOVES else np.eye(2)
    return rotation @ mirror


def vector_pairs(obs_size: int) -> list[tuple[int, int]]:
    """The (x, y) index pairs of an observation of ``obs_size`` numbers (docs/arena.md): own
    position and velocity, each enemy's relative position and velocity, and in the full
    observation the (cos, sin) of each facing. Every other number is a scalar."""
    if obs_size not in OBSERVATIONS.values():
        kinds = ", ".join(f"{k} ({n})" for k, n in OBSERVATIONS.items())
        raise ValueError(f"the ring's symmetries know the arena's observations only: {kinds}, not {obs_size} numbers")
    pairs = [(0, 1), (3, 4)]
    for k in range(OBS_ENEMIES):
        base = 5 + ENEMY_FEATURES * k
        pairs += [(base, base + 1), (base + 2, base + 3)]
    if obs_size == OBSERVATIONS["full"]:
        for slot in range(1 + OBS_ENEMIES):
            base = OBS_SIZE + FULL_EXTRA * slot
            pairs.append((base + 1, base + 2))
    return pairs


def observation_matrix(g: int, obs_size: int) -> np.ndarray:
    """(obs_size, obs_size) ``M`` with ``M @ obs`` the observation of the same fighter in the
    ring mapped by element ``g``."""
    m = np.eye(obs_size)
    v = vector_map(g)
    for i, j in vector_pairs(obs_size):
        m[np.ix_([i, j], [i, j])] = v
    return m


def observation_matrices(obs_size: int) -> np.ndarray:
    """(16, obs_size, obs_size): observation_matrix of every element, float32."""
    return np.stack([observation_matrix(g, obs_size) for g in range(ELEMENTS)]).astype(np.float32)


def action_permutation(g: int) -> np.ndarray:
    """(10,) int64 ``p`` with ``p[a]`` the action that does in the mapped ring what ``a`` does
    in the original one. Move k points at angle pi/2 - k pi/4; the mirror negates the angle
    and the turn adds (g % 8) pi/4."""
    _check_element(g)
    turn = g % MOVES
    perm = np.arange(NUM_ACTIONS, dtype=np.int64)
    for k in range(MOVES):
        perm[k] = ((4 - k if g >= MOVES else k) - turn) % MOVES
    return perm


def action_permutations() -> np.ndarray:
    """(16, 10) int64: action_permutation of every element."""
    return np.stack([action_permutation(g) for g in range(ELEMENTS)])


def _check_element(g: int) -> None:
    if not 0 <= g < ELEMENTS:
        raise ValueError(f"a symmetry of the ring is an element 0..{ELEMENTS - 1}, not {g}")
