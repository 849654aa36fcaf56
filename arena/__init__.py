"""The wrestling ring: rules, numba kernels and the Arena that owns their state."""
from arena.core import Arena, arena_seeds, parse_slots
from arena.kernel import NUM_ACTIONS, OBS_SIZE
from arena.rules import (
    BOT_NAMES, REWARD_PRESETS, REWARD_TERMS, ArenaConfigError, FighterStats, RewardWeights,
    Rules,
)

__all__ = ["Arena", "ArenaConfigError", "BOT_NAMES", "FighterStats", "NUM_ACTIONS", "OBS_SIZE",
           "REWARD_PRESETS", "REWARD_TERMS", "RewardWeights", "Rules", "arena_seeds",
           "parse_slots"]
