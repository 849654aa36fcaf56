"""The wrestling ring: its interface (spec), rules, numba kernels, the Arena that owns their
state, and how matches end (results).

    from arena import Arena, Rules, OBS_SIZE, NUM_ACTIONS

Names are imported lazily, so that ``from arena import OBS_SIZE`` (or ``arena.spec``) does
not load numba: the ingest server and the storage layer read the interface only.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "OBS_SIZE": "arena.spec",
    "FULL_OBS_SIZE": "arena.spec",
    "OBSERVATIONS": "arena.spec",
    "NUM_ACTIONS": "arena.spec",
    "ACTION_IDLE": "arena.spec",
    "ACTION_ATTACK": "arena.spec",
    "ACTION_NAMES": "arena.spec",
    "FATE_ALIVE": "arena.spec",
    "FATE_KNOCKED_OUT": "arena.spec",
    "FATE_RING_OUT": "arena.spec",
    "BOT_NAMES": "arena.rules",
    "REWARD_PRESETS": "arena.rules",
    "REWARD_TERMS": "arena.rules",
    "ArenaConfigError": "arena.rules",
    "FighterStats": "arena.rules",
    "RewardWeights": "arena.rules",
    "Rules": "arena.rules",
    "BotParams": "arena.variants",
    "BotVariant": "arena.variants",
    "VARIANTS": "arena.variants",
    "HELD_OUT_VARIANTS": "arena.variants",
    "GAUNTLET_OPPONENTS": "arena.variants",
    "resolve_variant": "arena.variants",
    "is_variant_spec": "arena.variants",
    "MatchResults": "arena.results",
    "wins": "arena.results",
    "draws": "arena.results",
    "sole_first": "arena.results",
    "Arena": "arena.core",
    "arena_seeds": "arena.core",
    "parse_slots": "arena.core",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
