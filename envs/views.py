"""The two views the wider ecosystem expects, on the same kernels as ArenaEnv:

- `ArenaGymEnv`: Gymnasium single-agent env, one learner against scripted bots.
- `ArenaParallelEnv`: PettingZoo ParallelEnv, every fighter an agent.

Both run one arena without auto-reset: an episode ends and the caller resets, as those
APIs require. See envs/arena_env.py for the spaces, rewards and episode end.
"""

from __future__ import annotations

import functools

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from arena import OBS_SIZE, Arena, ArenaConfigError, Rules, parse_slots
from envs.arena_env import action_space, observation_space


class _OneArena:
    """One arena with its own agent buffers, stepped one decision at a time."""

    def __init__(self, fighters, opponents, rewards, rules):
        self.arena = Arena(1, fighters, parse_slots(fighters, opponents), rules, rewards, seed=0, autoreset=False)
        n = self.arena.num_agents
        self.obs = np.zeros((n, OBS_SIZE), np.float32)
        self.rewards = np.zeros(n, np.float32)
        self.terminals = np.zeros(n, bool)
        self.truncations = np.zeros(n, bool)
        self.masks = np.ones(n, bool)
        self.actions = np.zeros(n, np.int32)
        self.over = True

    def reset(self, seed=None):
        self.arena.reset(self.obs, self.rewards, self.terminals, self.truncations, self.masks, seed=seed)
        self.over = False

    def step(self):
        self.arena.step(self.actions, self.obs, self.rewards, self.terminals, self.truncations, self.masks)
        self.over = bool(self.arena.match_end[0])


class ArenaGymEnv(gymnasium.Env):
    """One learner (slot 0) against scripted `opponents` in a single ring.

    The episode terminates when the learner is eliminated or is the last one standing,
    and is truncated at max_frames. info holds the match's rank, win and stats at the end.
    """

    metadata = {"render_modes": []}

    def __init__(self, opponents=("chaser",), seed=None, rewards=None, **rules):
        opponents = list(opponents)
        if not opponents:
            raise ArenaConfigError("ArenaGymEnv needs at least one opponent bot")
        self.rules = Rules.from_kwargs(**rules)
        self._ring = _OneArena(1 + len(opponents), opponents, rewards, self.rules)
        self.observation_space = observation_space()
        self.action_space = action_space()
        self._pending_seed = seed
        self._seeded = False

    def reset(self, *, seed=None, options=None):
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        super().reset(seed=seed)
        # The arena's generator is drawn from np_random when a seed is given (and on the
        # first reset); later unseeded resets continue the same random stream.
        if seed is not None or not self._seeded:
            self._ring.arena.seed(int(self.np_random.integers(2**62)))
            self._seeded = True
        self._ring.reset()
        return self._ring.obs[0].copy(), {}

    def step(self, action):
        if self._ring.over:
            raise RuntimeError("the episode is over: call reset before using step method")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self._ring.actions[0] = int(action)
        self._ring.step()
        arena = self._ring.arena
        terminated = bool(self._ring.terminals[0])
        truncated = bool(self._ring.truncations[0])
        info = {}
        if terminated or truncated:
            self._ring.over = True
            info["win"] = False
            if arena.match_end[0]:
                result = arena.results([0])
                info = {"rank": int(result.rank[0, 0]), "frames": int(result.length[0]), "win": bool(result.win[0, 0])}
        return self._ring.obs[0].copy(), float(self._ring.rewards[0]), terminated, truncated, info


class ArenaParallelEnv(ParallelEnv):
    """Every fighter of one ring is an agent ("fighter_0" ...). Eliminated fighters leave
    `agents` after the step that eliminated them; the match ends when at most one stands
    or at max_frames, and then `agents` is empty."""

    metadata = {"render_modes": [], "name": "wrestling_arena_v0", "is_parallelizable": True}

    def __init__(self, fighters=2, seed=None, rewards=None, **rules):
        self.rules = Rules.from_kwargs(**rules)
        self._ring = _OneArena(fighters, None, rewards, self.rules)
        self.possible_agents = [f"fighter_{i}" for i in range(fighters)]
        self.agents = []
        self._seed = 0 if seed is None else seed
        self._index = {name: i for i, name in enumerate(self.possible_agents)}

    @functools.cache  # noqa: B019 (PettingZoo's documented pattern: one space object per agent)
    def observation_space(self, agent):
        return observation_space()

    @functools.cache  # noqa: B019 (as above)
    def action_space(self, agent):
        return action_space()

    def reset(self, seed=None, options=None):
        self._ring.reset(self._seed if seed is None else seed)
        self._seed = None
        self.agents = list(self.possible_agents)
        return {a: self._ring.obs[self._index[a]].copy() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("the match is over: call reset before using step method")
        for agent in self.agents:
            if agent not in actions:
                raise ValueError(f"missing an action for {agent!r}")
            action = actions[agent]
            if not self.action_space(agent).contains(action):
                raise ValueError(f"action {action!r} for {agent!r} is not in Discrete(10)")
            self._ring.actions[self._index[agent]] = int(action)
        self._ring.step()
        ring = self._ring
        idx = [self._index[a] for a in self.agents]
        obs = {a: ring.obs[i].copy() for a, i in zip(self.agents, idx, strict=True)}
        rewards = {a: float(ring.rewards[i]) for a, i in zip(self.agents, idx, strict=True)}
        terminations = {a: bool(ring.terminals[i]) for a, i in zip(self.agents, idx, strict=True)}
        truncations = {a: bool(ring.truncations[i]) for a, i in zip(self.agents, idx, strict=True)}
        infos = {a: {} for a in self.agents}
        if ring.over:
            for a, i in zip(self.agents, idx, strict=True):
                infos[a] = {"rank": int(ring.arena.final_rank[0, i])}
            self.agents = []
        else:
            self.agents = [a for a, i in zip(self.agents, idx, strict=True) if ring.masks[i]]
        return obs, rewards, terminations, truncations, infos
