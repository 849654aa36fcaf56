"""Scripted fighters written as users would: plain functions obs (n, 30) -> actions (n,).

The evaluation tests load them as ``module:function`` players (``eval_bots:chase`` or
``tests/eval_bots.py:chase``).
"""

import numpy as np

RADIUS = 6.0  # the default ring radius: observations hold positions divided by it
STRIKE_DISTANCE = 1.2  # m, inside the default reach of 1.3 m


def compass(dx, dy):
    """The move action (0 north, 2 east, ...) closest to each direction (dx, dy)."""
    return np.floor((np.pi / 2 - np.arctan2(dy, dx)) / (np.pi / 4) + 0.5).astype(np.int64) % 8


def chase(obs):
    """Run at the nearest enemy and strike once in reach (moving there also turns to face it)."""
    dx, dy = obs[:, 5], obs[:, 6]
    distance = np.hypot(dx, dy) * RADIUS
    actions = np.where(distance <= STRIKE_DISTANCE, 9, compass(dx, dy))
    return np.where(distance == 0, 8, actions)  # no enemy (or eliminated): idle


def idle(obs):
    return np.full(len(obs), 8)


def wrong_shape(obs):
    return np.zeros((len(obs), 2), dtype=np.int64)


def out_of_range(obs):
    return np.full(len(obs), 12)


def broken(obs):
    raise RuntimeError("this bot has a bug")


NOT_CALLABLE = 3
