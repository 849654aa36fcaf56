"""`Arena`: the Python owner of the state arrays, the rules and the seeds.

It validates its configuration once, allocates every array once, and calls the
numba kernels in arena/kernel.py with them. The envs in envs/ wrap it.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np

from arena import kernel
from arena.results import MatchResults
from arena.rules import (
    BOT_NAMES,
    LEARNER,
    MAX_FIGHTERS,
    MIN_FIGHTERS,
    ArenaConfigError,
    RewardWeights,
    Rules,
)
from arena.variants import VARIANTS, BotVariant, VariantTable, resolve_variant

MASK64 = (1 << 64) - 1

# Named views of the packed state columns (see arena/kernel.py), for Python code and tests.
FLOAT_VIEWS = {
    "pos": slice(kernel.X, kernel.Y + 1),
    "vel": slice(kernel.VX, kernel.VY + 1),
    "facing": kernel.FACING,
    "health": kernel.HEALTH,
    "size": kernel.SIZE,
    "speed": kernel.SPEED,
    "mass": kernel.MASS,
    "base_size": kernel.BASE_SIZE,
    "base_speed": kernel.BASE_SPEED,
    "base_mass": kernel.BASE_MASS,
    "ep_return": kernel.EP_RETURN,
    "final_return": kernel.FINAL_RETURN,
    "step_reward": kernel.STEP_REWARD,
}
INT_VIEWS = {
    "cooldown": kernel.COOLDOWN,
    "alive": kernel.ALIVE,
    "last_hitter": kernel.LAST_HITTER,
    "last_hit_frame": kernel.LAST_HIT_FRAME,
    "elim_order": kernel.ELIM_ORDER,
    "fate": kernel.FATE,
    "bot": kernel.BOT,
    "action": kernel.ACTION,
    "ep_hits": kernel.EP_HITS,
    "ep_kos": kernel.EP_KOS,
    "ep_ringouts": kernel.EP_RINGOUTS,
    "hit_target": kernel.HIT_TARGET,
    "agent_row": kernel.AGENT_ROW,
    "final_rank": kernel.FINAL_RANK,
    "final_hits": kernel.FINAL_HITS,
    "final_kos": kernel.FINAL_KOS,
    "final_ringouts": kernel.FINAL_RINGOUTS,
    "final_fate": kernel.FINAL_FATE,
}
ARENA_VIEWS = {
    "frame": kernel.FRAME,
    "elim_count": kernel.ELIM_COUNT,
    "match_end": kernel.MATCH_END,
    "final_length": kernel.FINAL_LENGTH,
}
# The arrays that are the simulation state (what a checkpoint of the arena would hold).
STATE_ARRAYS = ("fl", "it", "ar", "rng")


def state_views(state: dict) -> dict:
    """Named views (pos, health, alive, frame, ...) into a state dict of packed arrays."""
    views = {name: state["fl"][:, :, col] for name, col in FLOAT_VIEWS.items()}
    views.update({name: state["it"][:, :, col] for name, col in INT_VIEWS.items()})
    views.update({name: state["ar"][:, col] for name, col in ARENA_VIEWS.items()})
    views["rng"] = state["rng"]
    return views


def arena_seeds(seed: int, num_arenas: int, first_arena: int = 0) -> np.ndarray:
    """Independent splitmix64 starting states, one per arena, from one integer seed: those of
    arenas first_arena.. of a larger set (a process's shard of a distributed run's arenas)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ArenaConfigError(f"seed must be an integer, got {seed!r}")
    base = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
    return np.array(
        [(base + a * 0xD1B54A32D192ED03) & MASK64 for a in range(first_arena, first_arena + num_arenas)],
        dtype=np.uint64,
    )


def parse_slots(fighters: int, opponents) -> list:
    """Turn an opponents list into one entry per slot: None for agents, else a list of
    BotVariants.

    Agents take the first slots; `opponents` fills the last ones. An opponent entry is a bot
    (a name, a named variant or ``bot[key=value;...]``, see arena/variants.py), or a list of
    them sampled uniformly at every match start.
    """
    if isinstance(fighters, bool) or not isinstance(fighters, (int, np.integer)):
        raise ArenaConfigError(f"fighters_per_arena must be an integer, got {fighters!r}")
    if not MIN_FIGHTERS <= fighters <= MAX_FIGHTERS:
        raise ArenaConfigError(
            f"fighters_per_arena must be between {MIN_FIGHTERS} and {MAX_FIGHTERS}, got {fighters!r}"
        )
    opponents = [] if opponents is None else list(opponents)
    if len(opponents) > fighters:
        raise ArenaConfigError(f"{len(opponents)} opponents do not fit in {fighters} fighter slots")
    slots = [None] * (fighters - len(opponents))
    for entry in opponents:
        names = (
            [entry]
            if isinstance(entry, (str, BotVariant))
            else list(entry)
            if isinstance(entry, (list, tuple))
            else None
        )
        if not names:
            raise ArenaConfigError(
                f"an opponent must be a bot name or a non-empty list of bot names "
                f"({', '.join(BOT_NAMES)}, or a variant: {', '.join(VARIANTS)}), got {entry!r}"
            )
        slots.append([resolve_variant(name) for name in names])
    return slots


class Arena:
    """`num_arenas` independent rings with `fighters` fighters each, stepped together.

    slots: one entry per fighter slot, None for a policy-driven agent or a list of bots (see
    parse_slots: BotVariants, or built-in bot ids). Agents' rows in the flat buffers are ordered
    arena-major. The bots' parameters are rows of ``variants`` (arena/variants.py): rows 0-6 are
    the built-in bots by id, the variants of the slots follow, and the ``bot`` column holds rows.
    threads: how many threads step the arenas (1 = the calling thread only); None uses
    numba's current setting (numba.set_num_threads). Results are identical either way.
    """

    def __init__(
        self,
        num_arenas: int,
        fighters: int,
        slots=None,
        rules: Rules | None = None,
        rewards=None,
        seed: int = 0,
        autoreset: bool = True,
        threads: int | None = None,
        first_arena: int = 0,
    ):
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
        if threads is not None and (
            isinstance(threads, bool)
            or not isinstance(threads, int)
            or not 1 <= threads <= numba.config.NUMBA_NUM_THREADS
        ):
            raise ArenaConfigError(
                f"threads must be None or an integer from 1 to {numba.config.NUMBA_NUM_THREADS}, got {threads!r}"
            )
        self.threads = threads
        self.params = self.rules.pack()
        self.reward_weights = self.weights.pack()
        self.agent_slots = [f for f, s in enumerate(slots) if s is None]
        self.num_agents = self.num_arenas * len(self.agent_slots)

        A, F = self.num_arenas, self.fighters
        self.fl = np.zeros((A, F, kernel.NUM_FL))
        self.it = np.zeros((A, F, kernel.NUM_IT), dtype=np.int32)
        self.ar = np.zeros((A, kernel.NUM_AR), dtype=np.int32)
        self.first_arena = int(first_arena)
        self.rng = arena_seeds(seed, A, self.first_arena)
        for name, view in state_views(self.__dict__).items():
            if name != "rng":
                setattr(self, name, view)
        for f in range(F):
            stats = self.rules.stats_for(f)
            self.size[:, f], self.speed[:, f], self.mass[:, f] = stats.size, stats.speed, stats.mass
            self.base_size[:, f], self.base_speed[:, f], self.base_mass[:, f] = stats.size, stats.speed, stats.mass
        self.variant_table = VariantTable()  # the bots' behaviour rows: the built-in bots, then variants
        pool_width = max([len(s) for s in slots if s is not None] + [1])
        self.bot_pool = np.zeros((F, pool_width), dtype=np.int32)
        self.pool_len = np.zeros(F, dtype=np.int32)
        self.bot[:] = LEARNER
        for f, s in enumerate(slots):
            if s is not None:
                rows = [self.variant_row(entry) for entry in s]
                self.bot_pool[f, : len(s)] = rows
                self.pool_len[f] = len(s)
                self.bot[:, f] = rows[0]
        self.last_hitter[:] = kernel.NO_FIGHTER
        self.agent_row[:] = -1
        for k, f in enumerate(self.agent_slots):
            self.agent_row[:, f] = np.arange(A, dtype=np.int32) * len(self.agent_slots) + k

    # ------------------------------------------------------------ stepping
    def seed(self, seed: int) -> None:
        self.rng[:] = arena_seeds(seed, self.num_arenas, self.first_arena)

    def reset(self, obs, rewards, terminals, truncations, masks, seed: int | None = None) -> None:
        """Start a new match everywhere (reseeding first if `seed` is given)."""
        if seed is not None:
            self.seed(seed)
        kernel.reset_arenas(
            self.fl,
            self.it,
            self.ar,
            self.rng,
            self.bot_pool,
            self.pool_len,
            obs,
            rewards,
            terminals,
            truncations,
            masks,
            self.params,
        )

    def step(self, actions, obs, rewards, terminals, truncations, masks) -> int:
        """One decision for all arenas; returns how many matches ended (see match_end)."""
        previous = numba.get_num_threads()
        if self.threads is not None:
            numba.set_num_threads(self.threads)
        try:
            return kernel.step_arenas(
                self.fl,
                self.it,
                self.ar,
                self.rng,
                self.bot_pool,
                self.pool_len,
                actions,
                obs,
                rewards,
                terminals,
                truncations,
                masks,
                self.params,
                self.variants,
                self.reward_weights,
                self.rules.frame_skip,
                self.rules.max_frames,
                self.autoreset,
            )
        finally:
            numba.set_num_threads(previous)

    # ------------------------------------------------------------ results and bots
    def ended(self) -> np.ndarray:
        """The arenas whose match ended with the last step (their next match has begun when autoreset)."""
        return np.flatnonzero(self.match_end)

    def results(self, arenas) -> MatchResults:
        """How the last ended match of each of ``arenas`` (indices) ended."""
        return MatchResults(
            rank=self.final_rank[arenas],
            ret=self.final_return[arenas],
            hits=self.final_hits[arenas],
            knockouts=self.final_kos[arenas],
            ring_outs=self.final_ringouts[arenas],
            fate=self.final_fate[arenas],
            length=self.final_length[arenas],
        )

    @property
    def variants(self) -> np.ndarray:
        """The kernels' variant table (arena/variants.py): row k plays the bots whose ``bot`` is k."""
        return self.variant_table.array

    def variant_row(self, bot) -> int:
        """The row of ``variants`` that plays ``bot`` (a built-in bot id, a name, a spec or a
        BotVariant), appending a row for a variant the table lacks (VariantTable.row)."""
        if isinstance(bot, (int, np.integer)) and not isinstance(bot, bool):
            if not 0 <= bot < len(self.variant_table):
                last = len(self.variant_table) - 1
                raise ArenaConfigError(f"bot id {bot!r} is not a row of the variant table (0..{last})")
            return int(bot)
        return self.variant_table.row(bot)

    def bot_actions(self, bot, arenas, slots, out=None) -> np.ndarray:
        """The action bot ``bot`` (a name, variant spec, BotVariant or variant row) takes now for
        fighter ``slots[k]`` of arena ``arenas[k]``, computed from the current state by the
        kernel's own bot code (idle for an eliminated fighter): a bot playing an agent row, as
        evaluation and the demos seat them. Random bots and variants with noise, lag, hesitation
        or a slow approach draw from, and so advance, their arena's generator."""
        row = self.variant_row(bot)
        arenas = np.asarray(arenas, dtype=np.int64)
        slots = np.asarray(slots, dtype=np.int64)
        if out is None:
            out = np.empty(len(arenas), dtype=np.int32)
        kernel.bot_actions(row, arenas, slots, self.fl, self.it, self.rng, self.params, self.variants, out)
        return out

    # ------------------------------------------------------------ inspection
    def state_hash(self) -> str:
        """A digest of the full simulation state, for determinism checks."""
        digest = hashlib.sha256()
        for name in STATE_ARRAYS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()

    def copy_state(self) -> dict:
        return {name: getattr(self, name).copy() for name in STATE_ARRAYS}

    def load_state(self, state: dict) -> None:
        for name in STATE_ARRAYS:
            getattr(self, name)[...] = state[name]
