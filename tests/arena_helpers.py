"""Builders for arena tests: a ring with hand-placed fighters and its agent buffers."""

import math

import numpy as np

from arena import REWARD_TERMS, Arena, RewardWeights, Rules, parse_slots
from arena.kernel import ACTION_IDLE
from arena.reference import reference_step


class Ring:
    """One Arena plus its agent buffers, with helpers to place fighters and step."""

    def __init__(self, fighters=2, rewards=None, opponents=None, num_arenas=1, seed=0, autoreset=False, **rules):
        self.rules = Rules(**rules)
        self.arena = Arena(
            num_arenas, fighters, parse_slots(fighters, opponents), self.rules, rewards, seed=seed, autoreset=autoreset
        )
        n = self.arena.num_agents
        self.obs = np.zeros((n, 30), np.float32)
        self.rewards = np.zeros(n, np.float32)
        self.terminals = np.zeros(n, bool)
        self.truncations = np.zeros(n, bool)
        self.masks = np.ones(n, bool)
        self.arena.reset(*self.buffers())

    def buffers(self):
        return self.obs, self.rewards, self.terminals, self.truncations, self.masks

    def place(self, positions, facings=None, velocities=None, a=0):
        """Put fighter i at positions[i] (m), facing facings[i] (radians), at rest by default."""
        for i, (x, y) in enumerate(positions):
            self.arena.pos[a, i] = (x, y)
            self.arena.vel[a, i] = (0.0, 0.0) if velocities is None else velocities[i]
            if facings is not None:
                self.arena.facing[a, i] = facings[i]

    def step(self, *actions):
        """One decision; `actions` are the agents' actions (idle when none given)."""
        acts = np.full(self.arena.num_agents, ACTION_IDLE, np.int32)
        acts[: len(actions)] = actions
        ended = self.arena.step(acts, *self.buffers())
        return ended


def only(term, weight=1.0):
    """Reward weights with a single non-zero term (the draw weight, which must stay below the
    win weight, is 0 when the term is the win and -1 below it otherwise)."""
    weights = {name: 0.0 for name in REWARD_TERMS} | {term: weight}
    if term != "draw":
        weights["draw"] = min(weights["win"], 0.0) - 1.0
    return RewardWeights(**weights)


EAST = 0.0
WEST = math.pi


def compare_with_reference(fighters, opponents, full=False, steps=50, weights=None) -> int:
    """Step 16 arenas from random crowded states with random agent actions for ``steps``
    decisions, checking every state array and output against arena.reference after each;
    returns how many matches ended. ``weights``: the reward weights (the standard preset
    with a win of 5 by default)."""
    rng = np.random.default_rng(fighters)
    rules = Rules(frame_skip=3, max_frames=150, spawn_jitter=1.0)
    weights = weights or RewardWeights(win=5.0)
    arena = Arena(16, fighters, parse_slots(fighters, opponents), rules, weights, seed=fighters, autoreset=False)
    n = arena.num_agents
    bufs = (
        np.zeros((n, 48 if full else 30), np.float32),
        np.zeros(n, np.float32),
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.ones(n, bool),
    )
    arena.reset(*bufs)
    # Random starting states: crowded positions, velocities, health and cooldowns.
    arena.pos[:] = rng.uniform(-2.0, 2.0, arena.pos.shape)
    arena.vel[:] = rng.uniform(-5.0, 5.0, arena.vel.shape)
    arena.health[:] = rng.uniform(0.05, 1.0, arena.health.shape)
    arena.cooldown[:] = rng.integers(0, 3, arena.cooldown.shape)
    arena.facing[:] = rng.uniform(-math.pi, math.pi, arena.facing.shape)
    ended = 0
    for _ in range(steps):
        actions = rng.integers(0, 10, n).astype(np.int32)
        expected, out = reference_step(arena.copy_state(), actions, rules, arena.weights, n, full, arena.variants)
        ended += arena.step(actions, *bufs)
        np.testing.assert_allclose(arena.fl, expected["fl"], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(arena.it, expected["it"])
        np.testing.assert_array_equal(arena.ar, expected["ar"])
        np.testing.assert_array_equal(arena.rng, expected["rng"])
        for name, buf in zip(("obs", "rewards", "terminals", "truncations", "masks"), bufs, strict=True):
            np.testing.assert_allclose(buf, out[name], rtol=0, atol=1e-5, err_msg=name)
    return ended
