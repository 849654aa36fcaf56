"""The ring's interface to policies and the game: observation size, actions, fates.

These numbers are the design card's and the game's JavaScript's as much as the kernel's:
the 30-number observation, the 10 actions and how a fighter's match ended. Every package
takes them from here (``from arena import OBS_SIZE``); this module imports nothing, so the
ingest server can read them without loading numba.

arena/kernel.py compiles them in as constants: numba's cache only notices edits to
kernel.py, so after changing a value here touch kernel.py (or clear __pycache__).
"""

OBS_SIZE = 30
"""floats per observation: own x, y, health, vx, vy, then 5 values for each of the 5 nearest enemies"""
OBS_ENEMIES = 5
"""nearest enemies in an observation"""
ENEMY_FEATURES = 5
"""per enemy: relative x, y, relative vx, vy, health"""
FULL_EXTRA = 3
"""what the full observation adds per fighter: attack cooldown left as a fraction of the rules'
cooldown (in [0, 1)), cos and sin of its facing"""
FULL_OBS_SIZE = OBS_SIZE + FULL_EXTRA * (1 + OBS_ENEMIES)
"""floats per full observation (48): the 30 of the basic one, then the fighter's own cooldown and
facing, then those of the 5 nearest enemies in the same order (docs/arena.md)"""
OBSERVATIONS = {"basic": OBS_SIZE, "full": FULL_OBS_SIZE}
"""observation kinds (config env.observation) and their sizes; the basic one is the full one's prefix"""

NUM_ACTIONS = 10
"""0-7 move north, north-east, ..., north-west (clockwise); 8 idle; 9 attack"""
ACTION_IDLE = 8
ACTION_ATTACK = 9
ACTION_NAMES = (
    "north",
    "north_east",
    "east",
    "south_east",
    "south",
    "south_west",
    "west",
    "north_west",
    "idle",
    "attack",
)
"""a name per action, in action order (for logs and charts)"""

FATE_ALIVE = 0
"""still standing when the match ended"""
FATE_KNOCKED_OUT = 1
"""health reached 0"""
FATE_RING_OUT = 2
"""left the ring"""
