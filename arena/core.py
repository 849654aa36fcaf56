"""`Arena`: the Python owner of the state arrays, the rules and the seeds.

It validates its configuration once, allocates every array once, and calls the
numba kernels in arena/kernel.py with them. The envs in envs/ wrap it.
"""
from __future__ import annotations

import hashlib

import numpy as np

from arena import kernel
from arena.rules import (
    BOT_NAMES, LEARNER, MAX_FIGHTERS, MIN_FIGHTERS, ArenaConfigError, RewardWeights, Rules,
    bot_id,
)

MASK64 = (1 << 64) - 1

# The arrays that make up an arena's state, in the order the kernels take them.
STATE_FIELDS = ("pos", "vel", "facing", "health", "cooldown", "alive", "last_hitter",
                "last_hit_frame", "elim_order", "fate", "size", "speed", "mass", "bot",
                "bot_pool", "pool_len", "action", "frame", "elim_count", "rng", "ep_return",
                "ep_hits", "ep_kos", "ep_ringouts")


def arena_seeds(seed: int, num_arenas: int) -> np.ndarray:
    """Independent splitmix64 starting states, one per arena, from one integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArenaConfigError(f"seed must be an integer, got {seed!r}")
    base = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
    return np.array([(base + a * 0xD1B54A32D192ED03) & MASK64 for a in range(num_arenas)],
                    dtype=np.uint64)


def parse_slots(fighters: int, opponents) -> list:
    """Turn an opponents list into one entry per slot: None for agents, else bot ids.

    Agents take the first slots; `opponents` fills the last ones. An opponent entry is a
    bot name, or a list of bot names sampled uniformly at every match start.
    """
    if isinstance(fighters, bool) or not isinstance(fighters, (int, np.integer)):
        raise ArenaConfigError(f"fighters_per_arena must be an integer, got {fighters!r}")
    if not MIN_FIGHTERS <= fighters <= MAX_FIGHTERS:
        raise ArenaConfigError(
            f"fighters_per_arena must be between {MIN_FIGHTERS} and {MAX_FIGHTERS}, got {fighters!r}")
    opponents = [] if opponents is None else list(opponents)
    if len(opponents) > fighters:
        raise ArenaConfigError(
            f"{len(opponents)} opponents do not fit in {fighters} fighter slots")
    slots = [None] * (fighters - len(opponents))
    for entry in opponents:
        names = [entry] if isinstance(entry, str) else list(entry) if isinstance(entry, (list, tuple)) else None
        if not names:
            raise ArenaConfigError(
                f"an opponent must be a bot name or a non-empty list of bot names "
                f"({', '.join(BOT_NAMES)}), got {entry!r}")
        slots.append([bot_id(name) for name in names])
    return slots


class Arena:
    """`num_arenas` independent rings with `fighters` fighters each, stepped together.

    slots: one entry per fighter slot, None for a policy-driven agent or a list of bot
    ids (see parse_slots). Agents' rows in the flat buffers are ordered arena-major.
    threads: 1 steps the arenas on the calling thread; None spreads them over numba's
    thread pool (numba.set_num_threads sets its size). Results are identical either way.
    """

    def __init__(self, num_arenas: int, fighters: int, slots=None, rules: Rules | None = None,
                 rewards=None, seed: int = 0, autoreset: bool = True, threads: int | None = None):
        if isinstance(num_arenas, bool) or not isinstance(num_arenas, (int, np.integer)) or num_arenas < 1:
            raise ArenaConfigError(f"num_arenas must be an integer >= 1, got {num_arenas!r}")
        if slots is None:
            slots = parse_slots(fighters, None)
        if len(slots) != fighters:
            raise ArenaConfigError(f"got {len(slots)} slot entries for {fighters} fighters")
        self.rules = rules if rules is not None else Rules()
        self.weights = RewardWeights.resolve(rewards)
        self.num_arenas = int(num_arenas)
        self.fighters = int(fighters)
        self.autoreset = bool(autoreset)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ArenaConfigError(f"threads must be None or an integer >= 1, got {threads!r}")
        self._step_kernel = kernel.step_arenas_serial if threads == 1 else kernel.step_arenas_parallel
        self.params = self.rules.pack()
        self.reward_weights = self.weights.pack()
        self.agent_slots = [f for f, s in enumerate(slots) if s is None]
        self.num_agents = self.num_arenas * len(self.agent_slots)

        A, F = self.num_arenas, self.fighters
        self.pos = np.zeros((A, F, 2))
        self.vel = np.zeros((A, F, 2))
        self.facing = np.zeros((A, F))
        self.health = np.ones((A, F))
        self.cooldown = np.zeros((A, F), dtype=np.int32)
        self.alive = np.zeros((A, F), dtype=np.bool_)
        self.last_hitter = np.full((A, F), kernel.NO_FIGHTER, dtype=np.int32)
        self.last_hit_frame = np.zeros((A, F), dtype=np.int32)
        self.elim_order = np.zeros((A, F), dtype=np.int32)
        self.fate = np.zeros((A, F), dtype=np.int8)
        stats = [self.rules.stats_for(f) for f in range(F)]
        self.size = np.tile(np.array([s.size for s in stats]), (A, 1))
        self.speed = np.tile(np.array([s.speed for s in stats]), (A, 1))
        self.mass = np.tile(np.array([s.mass for s in stats]), (A, 1))
        pool_width = max([len(s) for s in slots if s is not None] + [1])
        self.bot_pool = np.zeros((F, pool_width), dtype=np.int32)
        self.pool_len = np.zeros(F, dtype=np.int32)
        self.bot = np.full((A, F), LEARNER, dtype=np.int32)
        for f, s in enumerate(slots):
            if s is not None:
                self.bot_pool[f, :len(s)] = s
                self.pool_len[f] = len(s)
                self.bot[:, f] = s[0]
        self.action = np.full((A, F), kernel.ACTION_IDLE, dtype=np.int32)
        self.frame = np.zeros(A, dtype=np.int32)
        self.elim_count = np.zeros(A, dtype=np.int32)
        self.rng = arena_seeds(seed, A)
        self.ep_return = np.zeros((A, F))
        self.ep_hits = np.zeros((A, F), dtype=np.int32)
        self.ep_kos = np.zeros((A, F), dtype=np.int32)
        self.ep_ringouts = np.zeros((A, F), dtype=np.int32)
        # Scratch and per-step outputs.
        self.hit_target = np.zeros((A, F), dtype=np.int32)
        self.frame_rew = np.zeros((A, F))
        self.match_end = np.zeros(A, dtype=np.int8)
        self.final_rank = np.zeros((A, F), dtype=np.int32)
        self.final_return = np.zeros((A, F))
        self.final_hits = np.zeros((A, F), dtype=np.int32)
        self.final_kos = np.zeros((A, F), dtype=np.int32)
        self.final_ringouts = np.zeros((A, F), dtype=np.int32)
        self.final_fate = np.zeros((A, F), dtype=np.int8)
        self.final_length = np.zeros(A, dtype=np.int32)
        self.agent_row = np.full((A, F), -1, dtype=np.int32)
        for k, f in enumerate(self.agent_slots):
            self.agent_row[:, f] = np.arange(A, dtype=np.int32) * len(self.agent_slots) + k

    # ------------------------------------------------------------ stepping
    def state(self) -> tuple:
        return tuple(getattr(self, name) for name in STATE_FIELDS)

    def seed(self, seed: int) -> None:
        self.rng[:] = arena_seeds(seed, self.num_arenas)

    def reset(self, obs, rewards, terminals, truncations, masks, seed: int | None = None) -> None:
        """Start a new match everywhere (reseeding first if `seed` is given)."""
        if seed is not None:
            self.seed(seed)
        s = self
        kernel.reset_arenas(s.pos, s.vel, s.facing, s.health, s.cooldown, s.alive,
                            s.last_hitter, s.last_hit_frame, s.elim_order, s.fate, s.bot,
                            s.bot_pool, s.pool_len, s.action, s.frame, s.elim_count, s.rng,
                            s.ep_return, s.ep_hits, s.ep_kos, s.ep_ringouts, s.agent_row, obs,
                            rewards, terminals, truncations, masks, s.params)

    def step(self, actions, obs, rewards, terminals, truncations, masks) -> int:
        """One decision for all arenas; returns how many matches ended (see match_end)."""
        return self._step_kernel(*self.state(), self.hit_target, self.frame_rew, self.agent_row,
                                  actions, obs, rewards, terminals, truncations, masks,
                                  self.match_end, self.final_rank, self.final_return,
                                  self.final_hits, self.final_kos, self.final_ringouts,
                                  self.final_fate, self.final_length, self.params,
                                  self.reward_weights, self.rules.frame_skip,
                                  self.rules.max_frames, self.autoreset)

    # ------------------------------------------------------------ inspection
    def state_hash(self) -> str:
        """A digest of the full simulation state, for determinism checks."""
        digest = hashlib.sha256()
        for name in STATE_FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()

    def copy_state(self) -> dict:
        return {name: getattr(self, name).copy() for name in STATE_FIELDS}

    def load_state(self, state: dict) -> None:
        for name in STATE_FIELDS:
            getattr(self, name)[...] = state[name]
