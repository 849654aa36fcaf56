"""Builders for arena tests: a ring with hand-placed fighters and its agent buffers."""

import math

import numpy as np

from arena import Arena, RewardWeights, Rules, parse_slots
from arena.kernel import ACTION_IDLE


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
    """Reward weights with a single non-zero term."""
    return RewardWeights(
        **{name: 0.0 for name in ("survive", "hit", "knockout", "damage_taken", "edge", "death", "win")}
        | {term: weight}
    )


EAST = 0.0
WEST = math.pi
