"""The ring's rules and reward weights, validated, and packed into arrays for the kernels.

Units: meters, seconds, and frames at 60 Hz. The kernels take frames; the rules
take seconds where a person thinks in seconds (cooldown, ring-out credit) and
convert once here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

FRAME_RATE = 60  # frames per second; the physics always runs at this rate
MIN_FIGHTERS = 2
MAX_FIGHTERS = 8

# Scripted opponents built into the kernel. Learner (policy-driven) slots use LEARNER.
LEARNER = -1
BOT_NAMES = ("random", "idle", "chaser", "kiter", "edge_pusher", "counter", "striker")
BOT_IDS = {name: i for i, name in enumerate(BOT_NAMES)}

# Indices into the packed rules array the kernels read (see Rules.pack).
P_RADIUS = 0  # ring radius, m
P_EDGE_WIDTH = 1  # width of the edge zone inside the rim, m
P_ACCEL = 2  # self-propelled acceleration, m/s^2
P_FRICTION_DECAY = 3  # velocity multiplier per frame from floor friction, unitless
P_REACH = 4  # attack reach, centre to centre, m
P_COS_CONE = 5  # cosine of the attack cone's half angle
P_HIT_DAMAGE = 6  # health removed by one hit, health units
P_KNOCKBACK = 7  # knockback impulse on a full-health victim, kg m/s
P_KNOCKBACK_SCALE = 8  # extra knockback per unit of health already lost
P_COOLDOWN = 9  # frames between two attacks
P_CREDIT_WINDOW = 10  # frames after a hit during which a ring-out is credited to the hitter
P_RESTITUTION = 11  # bounciness of body collisions, 0..1
P_SPEED_NORM = 12  # velocity normaliser of the observation, m/s
P_SPAWN_JITTER = 13  # spawn radius jitter, m (the angle jitter is derived from it)
P_STATS_SPREAD = 14  # per-match spread of each fighter's size, speed and mass, as a fraction
NUM_PARAMS = 15

# Columns of the bot variant table the kernels read (see arena/variants.py): one row per
# variant, rows 0..len(BOT_NAMES)-1 the built-in bots with their default parameters.
V_KIND = 0  # the base behaviour, a BOT_IDS value
V_NOISE = 1  # probability per decision of a uniformly random action
V_LAG = 2  # probability per decision of repeating the previous action (reaction delay)
V_APPROACH = 3  # probability that a move towards the enemy is made (else idle)
V_STANDOFF = 4  # distance it keeps from the enemy while closing in, in units of reach
V_RETREAT = 5  # it backs away from an enemy closer than this while cooling down, in units of reach
V_RANGE = 6  # it strikes at enemies within this fraction of reach
V_HESITATE = 7  # probability per ready decision of holding a strike it could make
V_LEASH = 8  # it does not move on while farther than this from the centre, as a fraction of the radius
NUM_VARIANT_COLUMNS = 9

# Indices into the packed reward-weight array.
R_SURVIVE, R_HIT, R_KNOCKOUT, R_DAMAGE_TAKEN, R_EDGE, R_DEATH, R_WIN, R_DRAW, R_INSIDE = range(9)
REWARD_TERMS = ("survive", "hit", "knockout", "damage_taken", "edge", "death", "win", "draw", "inside")
DEFAULT_DRAW = -1.0
"""The draw weight of a reward mapping that does not set one: below any win weight of 0 or more."""


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class ArenaConfigError(ValueError):
    """A rule, reward weight or opponent given to the arena is invalid."""


@dataclass(frozen=True)
class FighterStats:
    """Per-fighter physical stats, as the game's fighter metadata gives them."""

    size: float = 0.5
    """body radius, m"""
    speed: float = 4.0
    """maximum self-propelled speed, m/s"""
    mass: float = 1.0
    """mass, kg (scales knockback and collision response)"""


@dataclass(frozen=True)
class Rules:
    """Rules of one ring. Every field can be overridden by keyword in the envs."""

    radius: float = 6.0
    """ring radius, m; the ring is centred at the origin"""
    edge_width: float = 1.0
    """the edge zone is the band this wide inside the rim, m"""
    max_frames: int = 3000
    """match length limit, frames (3000 = 50 s); reaching it is a truncation"""
    frame_skip: int = 4
    """frames one decision is held for (action repeat); rewards are summed over them"""
    size: float = 0.5
    """default body radius, m"""
    speed: float = 4.0
    """default maximum self-propelled speed, m/s; also the observation's velocity scale"""
    mass: float = 1.0
    """default mass, kg"""
    fighter_stats: tuple = ()
    """optional per-slot overrides: a sequence of {size, speed, mass} mappings"""
    accel: float = 20.0
    """acceleration of a move action, m/s^2"""
    friction: float = 3.0
    """floor friction: velocity decays as exp(-friction * t), 1/s"""
    reach: float = 1.3
    """attack reach, centre to centre, m"""
    attack_cone_deg: float = 90.0
    """half angle of the attack cone around the facing, degrees (90 = the front half)"""
    hit_damage: float = 0.1
    """health removed by one hit"""
    knockback: float = 3.0
    """knockback impulse of a hit on a full-health victim, kg m/s"""
    knockback_scale: float = 2.0
    """knockback grows by this factor per unit of health lost: k * (1 + scale * (1 - health))"""
    cooldown: float = 0.5
    """time between two attacks, s"""
    ringout_credit: float = 2.0
    """a ring-out is credited to the last hitter if the hit is at most this old, s"""
    restitution: float = 0.5
    """bounciness of body collisions, 0 (none) to 1 (elastic)"""
    spawn_jitter: float = 0.3
    """spawn jitter, m along the radius and the same arc length along the circle"""
    stats_spread: float = 0.0
    """each match, every fighter's size, speed and mass are its own (``fighter_stats`` or the
    defaults) times independent factors drawn uniformly from [1 - spread, 1 + spread]; 0 = off.
    Training with a spread makes a fighter that holds up against bodies of other sizes, speeds and
    masses, as the game's fighter metadata may give them (at most 0.5)"""

    def __post_init__(self):
        positive = ("radius", "size", "speed", "mass", "accel", "reach", "hit_damage")
        for name in positive:
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise ArenaConfigError(f"rules.{name} must be a positive number, got {value!r}")
        non_negative = (
            "edge_width",
            "friction",
            "knockback",
            "knockback_scale",
            "cooldown",
            "ringout_credit",
            "spawn_jitter",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                raise ArenaConfigError(f"rules.{name} must be a number >= 0, got {value!r}")
        for name in ("max_frames", "frame_skip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ArenaConfigError(f"rules.{name} must be an integer >= 1, got {value!r}")
        if not _is_number(self.attack_cone_deg) or not 0 < self.attack_cone_deg <= 180:
            raise ArenaConfigError(f"rules.attack_cone_deg must be in (0, 180], got {self.attack_cone_deg!r}")
        if not _is_number(self.restitution) or not 0 <= self.restitution <= 1:
            raise ArenaConfigError(f"rules.restitution must be in [0, 1], got {self.restitution!r}")
        if self.edge_width >= self.radius:
            raise ArenaConfigError(
                f"rules.edge_width ({self.edge_width!r}) must be smaller than rules.radius ({self.radius!r})"
            )
        if not _is_number(self.stats_spread) or not 0 <= self.stats_spread <= 0.5:
            raise ArenaConfigError(f"rules.stats_spread must be a fraction in [0, 0.5], got {self.stats_spread!r}")
        if self.spawn_jitter >= self.radius / 4:
            raise ArenaConfigError(
                f"rules.spawn_jitter ({self.spawn_jitter!r}) must be below radius / 4 so fighters spawn inside the ring"
            )
        stats = []
        for i, entry in enumerate(self.fighter_stats):
            if isinstance(entry, FighterStats):
                stats.append(entry)
                continue
            if not isinstance(entry, dict):
                raise ArenaConfigError(f"rules.fighter_stats[{i}] must be a mapping of size/speed/mass, got {entry!r}")
            unknown = set(entry) - {"size", "speed", "mass"}
            if unknown:
                raise ArenaConfigError(
                    f"rules.fighter_stats[{i}] has unknown key(s) {sorted(unknown)}; allowed: size, speed, mass"
                )
            merged = {"size": self.size, "speed": self.speed, "mass": self.mass, **entry}
            for key, value in merged.items():
                if not _is_number(value) or not value > 0:
                    raise ArenaConfigError(f"rules.fighter_stats[{i}].{key} must be a positive number, got {value!r}")
            stats.append(FighterStats(**{k: float(v) for k, v in merged.items()}))
        object.__setattr__(self, "fighter_stats", tuple(stats))

    @classmethod
    def from_kwargs(cls, **kwargs) -> Rules:
        """Build rules from keyword overrides, naming any unknown key."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ArenaConfigError(f"unknown rule(s) {unknown}; valid rules are: {', '.join(sorted(names))}")
        return cls(**kwargs)

    @property
    def cooldown_frames(self) -> int:
        return int(round(self.cooldown * FRAME_RATE))

    @property
    def credit_frames(self) -> int:
        return int(round(self.ringout_credit * FRAME_RATE))

    def stats_for(self, slot: int) -> FighterStats:
        if slot < len(self.fighter_stats):
            return self.fighter_stats[slot]
        return FighterStats(self.size, self.speed, self.mass)

    def pack(self) -> np.ndarray:
        """The float64 parameter array the kernels read, indexed by the P_* constants."""
        p = np.zeros(NUM_PARAMS, dtype=np.float64)
        p[P_RADIUS] = self.radius
        p[P_EDGE_WIDTH] = self.edge_width
        p[P_ACCEL] = self.accel
        p[P_FRICTION_DECAY] = math.exp(-self.friction / FRAME_RATE)
        p[P_REACH] = self.reach
        p[P_COS_CONE] = math.cos(math.radians(self.attack_cone_deg))
        p[P_HIT_DAMAGE] = self.hit_damage
        p[P_KNOCKBACK] = self.knockback
        p[P_KNOCKBACK_SCALE] = self.knockback_scale
        p[P_COOLDOWN] = self.cooldown_frames
        p[P_CREDIT_WINDOW] = self.credit_frames
        p[P_RESTITUTION] = self.restitution
        p[P_SPEED_NORM] = self.speed
        p[P_SPAWN_JITTER] = self.spawn_jitter
        p[P_STATS_SPREAD] = self.stats_spread
        return p


@dataclass(frozen=True)
class RewardWeights:
    """Weight of each reward term. A term's reward is its weight times its event count.

    survive: per frame alive; hit: per hit landed; knockout: per credited knockout or
    ring-out of an enemy; damage_taken: per 0.1 health lost to hits; edge: per frame in the
    edge zone; death: once when eliminated; win: once for the sole rank-1 fighter at match end;
    draw: once for each fighter sharing rank 1 at match end (a time-out with equal health, or
    falling on the same frame); inside: per decision, the change of the fighter's ring position
    (its nearest standing enemy's distance from the centre minus its own, in ring radii; 0 once
    the match ended or the fighter fell), a potential-based shaping term: over a whole match it
    adds up to minus the position at the start, whatever the fighter does.

    Stalling never pays, whatever the weights: ``draw`` must be below ``win`` (checked here), and
    a fighter that wins before the time limit is also paid a positive ``survive`` for every frame
    left to it, so ending a match with a win never forfeits what surviving to the limit would
    have earned. A draw at the time limit is therefore worth less than the win it could have been.
    """

    survive: float = 1.0
    hit: float = 2.0
    knockout: float = 10.0
    damage_taken: float = -1.0
    edge: float = -3.0
    death: float = -10.0
    win: float = 0.0
    draw: float = DEFAULT_DRAW
    inside: float = 0.0

    def __post_init__(self):
        for name in REWARD_TERMS:
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ArenaConfigError(f"rewards.{name} must be a finite number, got {value!r}")
        if not self.draw < self.win:
            raise ArenaConfigError(
                f"rewards.draw ({self.draw:g}) must be below rewards.win ({self.win:g}): a draw must be "
                f"worth less than a win, or stalling to the time limit pays"
            )

    @classmethod
    def resolve(cls, rewards) -> RewardWeights:
        """Accept None (the standard preset), a preset name, a mapping of weights, or an instance."""
        if rewards is None:
            return REWARD_PRESETS[DEFAULT_REWARD_PRESET]
        if isinstance(rewards, RewardWeights):
            return rewards
        if isinstance(rewards, str):
            name = reward_preset(rewards)
            if name is None:
                raise ArenaConfigError(f"unknown reward preset {rewards!r}; presets: {', '.join(REWARD_PRESETS)}")
            return REWARD_PRESETS[name]
        if isinstance(rewards, dict):
            unknown = sorted(set(rewards) - set(REWARD_TERMS))
            if unknown:
                raise ArenaConfigError(f"unknown reward term(s) {unknown}; terms are: {', '.join(REWARD_TERMS)}")
            base = {name: 0.0 for name in REWARD_TERMS}
            base["draw"] = DEFAULT_DRAW
            base.update(rewards)
            return cls(**base)
        raise ArenaConfigError(f"rewards must be a preset name, a mapping of term weights or None, got {rewards!r}")

    def pack(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in REWARD_TERMS], dtype=np.float64)


REWARD_PRESETS = {
    # The product description's reward function as written; it has no win term, so win is 0.
    "standard": RewardWeights(),
}
DEFAULT_REWARD_PRESET = "standard"
REWARD_PRESET_ALIASES = {"seed": "standard"}
"""Older names of presets, still read (configs and checkpoints written before the rename)."""


def reward_preset(name) -> str | None:
    """The preset a name means (an alias resolved), or None if it names none."""
    name = REWARD_PRESET_ALIASES.get(name, name)
    return name if name in REWARD_PRESETS else None


def bot_id(name) -> int:
    """The kernel id of a scripted bot, with a clear error for an unknown name."""
    if name not in BOT_IDS:
        raise ArenaConfigError(f"unknown bot {name!r}; bots are: {', '.join(BOT_NAMES)}")
    return BOT_IDS[name]
