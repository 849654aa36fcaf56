"""Bot variants: the built-in bots with behaviour parameters, named, parsed and range-checked.

A variant is a base bot (arena.rules.BOT_NAMES) and seven parameters. Every bot has them, and
a bot's default parameters reproduce it exactly (the golden runs and the kernel-vs-reference
tests hold this), so ``chaser`` and ``chaser[noise=0]`` are the same fighter.

    kiter                          a built-in bot: its default parameters
    far_kiter                      a named variant (VARIANTS below)
    kiter[retreat=2.0;noise=0.1]   parameters given explicitly, on a bot or a named variant

The parameters are separated by ``;`` so that a spec fits in evaluate.py's comma-separated
``--opponents`` (quote it in a shell: ``'kiter[retreat=2.0;noise=0.1]'``).

Each parameter has an allowed range (VALID), a TRAINING range that training may draw variants
from, and what lies outside it is held out: HELD_OUT_VARIANTS are named variants with at least
one parameter there, so a fighter's results against them measure behaviour it never trained
against (evaluation.gauntlet plays them). docs/evaluation.md has the table.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from arena.rules import (
    BOT_IDS,
    BOT_NAMES,
    NUM_VARIANT_COLUMNS,
    V_APPROACH,
    V_HESITATE,
    V_KIND,
    V_LAG,
    V_LEASH,
    V_NOISE,
    V_RANGE,
    V_RETREAT,
    V_STANDOFF,
    ArenaConfigError,
)


@dataclass(frozen=True)
class BotParams:
    """How a scripted bot behaves around its base rules. Distances are in units of the rules' reach."""

    noise: float = 0.0
    """probability per decision of a uniformly random action instead of its own"""
    lag: float = 0.0
    """reaction delay: probability per decision of repeating its previous action instead of deciding"""
    approach: float = 1.0
    """approach speed: probability that a move towards the nearest enemy is made; else it idles"""
    standoff: float = 0.0
    """chaser, kiter, striker: between this distance and its strike range it does not step in (it
    brakes while still closing in, else waits); edge_pusher: the distance of its spot on the
    centre side of the enemy (default 0.8); counter ignores it"""
    retreat: float = 0.0
    """while its attack cools down it backs away from an enemy closer than this (kiter default 1.2)"""
    range: float = 1.0
    """attack timing: it strikes only at enemies within this fraction of reach (closing in further)"""
    hesitate: float = 0.0
    """attack timing: probability per decision of holding a ready strike it could make"""
    leash: float = 1.0
    """how far from the centre it goes, as a fraction of the ring's radius: farther out it walks
    back instead of moving on (it still strikes); 1, the default, is the whole ring"""


PARAMETERS = tuple(f.name for f in dataclasses.fields(BotParams))
COLUMNS = {
    "noise": V_NOISE,
    "lag": V_LAG,
    "approach": V_APPROACH,
    "standoff": V_STANDOFF,
    "retreat": V_RETREAT,
    "range": V_RANGE,
    "hesitate": V_HESITATE,
    "leash": V_LEASH,
}

BOT_DEFAULTS = {
    name: BotParams(
        standoff=0.8 if name == "edge_pusher" else 0.0,  # edge_pusher's spot, 0.8 reach from the enemy
        retreat=1.2 if name == "kiter" else 0.0,  # kiter keeps 1.2 reach away while cooling down
    )
    for name in BOT_NAMES
}
"""Each built-in bot's parameters: the values its kernel code had as constants."""

VALID = {
    "noise": (0.0, 1.0),
    "lag": (0.0, 0.95),
    "approach": (0.05, 1.0),
    "standoff": (0.0, 4.0),
    "retreat": (0.0, 4.0),
    "range": (0.8, 1.0),
    "hesitate": (0.0, 0.95),
    "leash": (0.05, 1.0),
}
"""Allowed values of each parameter, inclusive (a lag or hesitation of 1 would freeze a bot, and
a strike range below 0.8 reach, 1.04 m, would be inside two default bodies' contact distance)."""

TRAINING = {
    "noise": (0.0, 0.2),
    "lag": (0.0, 0.3),
    "approach": (0.5, 1.0),
    "standoff": (0.0, 1.5),
    "retreat": (0.0, 1.6),
    "range": (0.9, 1.0),
    "hesitate": (0.0, 0.3),
    "leash": (0.25, 1.0),
}
"""The part of each range that training may use, inclusive; the rest is held out for evaluation.
Every built-in bot's defaults lie inside it."""


@dataclass(frozen=True)
class BotVariant:
    """A base bot with its behaviour parameters, under the name it is shown by."""

    name: str
    """display name and spec: a bot name, a named variant, or an explicit ``bot[key=value;...]``"""
    bot: str
    """the base behaviour, one of arena.rules.BOT_NAMES"""
    params: BotParams
    """its parameters (BOT_DEFAULTS[bot] for a built-in bot)"""

    @property
    def kind(self) -> int:
        return BOT_IDS[self.bot]

    @property
    def builtin(self) -> bool:
        """Whether it plays exactly as the built-in bot of its kind."""
        return self.params == BOT_DEFAULTS[self.bot]

    @property
    def held_out(self) -> bool:
        """Whether some parameter lies outside its TRAINING range."""
        return bool(outside_training(self.params))

    def pack(self) -> np.ndarray:
        """Its row of the kernels' variant table (the V_* columns of arena.rules)."""
        row = np.zeros(NUM_VARIANT_COLUMNS, dtype=np.float64)
        row[V_KIND] = self.kind
        for key, column in COLUMNS.items():
            row[column] = getattr(self.params, key)
        return row


_EXPLICIT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[(.*)\]$")


def outside_training(params: BotParams) -> list[str]:
    """The parameters of ``params`` outside their TRAINING range."""
    return [k for k, (lo, hi) in TRAINING.items() if not lo <= getattr(params, k) <= hi]


def check_params(params: BotParams, spec: str) -> BotParams:
    """``params`` if every value is a finite number in its VALID range, else an ArenaConfigError."""
    for key, (lo, hi) in VALID.items():
        value = getattr(params, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ArenaConfigError(f"bot {spec!r}: {key} must be a number in [{lo:g}, {hi:g}], got {value!r}")
        if not lo <= value <= hi:
            raise ArenaConfigError(f"bot {spec!r}: {key} must be in [{lo:g}, {hi:g}], got {value!r}")
    return params


def _variant(name: str, bot: str, **params) -> BotVariant:
    return BotVariant(name, bot, check_params(dataclasses.replace(BOT_DEFAULTS[bot], **params), name))


VARIANTS = {
    v.name: v
    for v in (
        # Inside the training ranges.
        _variant("slow_chaser", "chaser", approach=0.6),
        _variant("noisy_striker", "striker", noise=0.15),
        _variant("laggy_chaser", "chaser", lag=0.25),
        _variant("wary_chaser", "chaser", standoff=1.2, retreat=1.0),
        _variant("hesitant_striker", "striker", hesitate=0.25),
        _variant("close_kiter", "kiter", retreat=1.5, range=0.9),
        _variant("sloppy_edge_pusher", "edge_pusher", noise=0.1, lag=0.2),
        # Held out: each has a parameter outside its training range.
        _variant("far_kiter", "kiter", retreat=2.5),
        _variant("patient_counter", "counter", hesitate=0.6),
        _variant("lurking_striker", "striker", standoff=2.0, retreat=2.0),
        _variant("crawling_chaser", "chaser", approach=0.3, lag=0.4),
        _variant("erratic_edge_pusher", "edge_pusher", noise=0.4),
        _variant("close_striker", "striker", range=0.82),
    )
}
"""Named variants, by name. docs/evaluation.md lists them with what each tests."""

HELD_OUT_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.held_out)
"""The named variants outside the training ranges, in the order the gauntlet plays them."""
TRAINING_VARIANTS = tuple(name for name, v in VARIANTS.items() if not v.held_out)
"""The named variants inside the training ranges."""
GAUNTLET_OPPONENTS = (*BOT_NAMES, *HELD_OUT_VARIANTS)
"""Who the gauntlet plays: every built-in bot, then the held-out variants. A config's
``eval.opponents`` may say ``gauntlet`` for all of them."""
GAUNTLET = "gauntlet"
"""The word that stands for GAUNTLET_OPPONENTS in a config's eval.opponents."""


def expand_gauntlet(opponents) -> list:
    """``opponents`` with the word ``gauntlet`` replaced by GAUNTLET_OPPONENTS (no repeats)."""
    out: list = []
    for entry in opponents:
        for name in GAUNTLET_OPPONENTS if entry == GAUNTLET else (entry,):
            if name not in out:
                out.append(name)
    return out


WIDE = "wide"
"""The word that stands for WIDE_OPPONENTS in a config's env.opponents (or league.bot_names)."""
WIDE_RANDOM = 35
"""how many random variants WIDE_OPPONENTS holds"""
WIDE_SEED = 0
"""the seed of WIDE_OPPONENTS' random variants: every run draws from the same documented list"""
_WIDE_BASES = ("chaser", "kiter", "edge_pusher", "counter", "striker")
"""the bots the random variants are drawn around (random and idle have no behaviour to vary)"""


RANDOM_KEYS = ("noise", "lag", "approach", "standoff", "retreat", "range", "hesitate")
"""the parameters random_variants draws (the leash, added later, stays at its default there, so
that the list a seed gives is the same as before it existed)"""


def random_variants(count: int, seed: int = WIDE_SEED) -> list[str]:
    """``count`` variant specs ``bot[key=value;...]``, the bots in turn from chaser, kiter,
    edge_pusher, counter and striker, each parameter of RANDOM_KEYS drawn uniformly from its
    TRAINING range (two decimals, so the spec is exact); none is held out."""
    rng = np.random.default_rng(seed)
    specs = []
    for k in range(count):
        values = {key: round(float(rng.uniform(*TRAINING[key])), 2) for key in RANDOM_KEYS}
        body = ";".join(f"{key}={value:g}" for key, value in values.items())
        specs.append(f"{_WIDE_BASES[k % len(_WIDE_BASES)]}[{body}]")
    return specs


WIDE_OPPONENTS = (*BOT_NAMES, *TRAINING_VARIANTS, *random_variants(WIDE_RANDOM))
"""The wide training distribution: every built-in bot, the named training variants and
WIDE_RANDOM random variants inside the TRAINING ranges (drawn per match like any list). The
held-out variants are outside it by construction."""


def expand_wide(names) -> list:
    """``names`` (a slot's list of bots) with the word ``wide`` replaced by WIDE_OPPONENTS;
    repeats stay, so ``[wide, striker]`` draws the striker a little more often."""
    out: list = []
    for name in names:
        out.extend(WIDE_OPPONENTS if name == WIDE else (name,))
    return out


def expand_wide_slots(opponents):
    """A config's env.opponents with ``wide`` expanded in every slot (a slot that is the word
    itself becomes the list)."""
    if opponents is None:
        return None
    return [
        expand_wide(entry) if isinstance(entry, list) else (list(WIDE_OPPONENTS) if entry == WIDE else entry)
        for entry in opponents
    ]


def is_variant_spec(spec) -> bool:
    """Whether a string names a bot or variant (rather than a file or module:function)."""
    return isinstance(spec, str) and (spec in BOT_IDS or spec in VARIANTS or _EXPLICIT.match(spec.strip()) is not None)


def known_names() -> list[str]:
    return [*BOT_NAMES, *VARIANTS]


def resolve_variant(spec) -> BotVariant:
    """A BotVariant from a bot name, a named variant, ``base[key=value;...]`` or a BotVariant.

    Raises ArenaConfigError naming the bad bot, key or value and what is allowed.
    """
    if isinstance(spec, BotVariant):
        return spec
    if not isinstance(spec, str):
        raise ArenaConfigError(f"a bot must be a name or bot[key=value;...], got {spec!r}")
    text = spec.strip()
    if text in BOT_IDS:
        return BotVariant(text, text, BOT_DEFAULTS[text])
    if text in VARIANTS:
        return VARIANTS[text]
    match = _EXPLICIT.match(text)
    if match is None:
        close = difflib.get_close_matches(text, known_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ArenaConfigError(
            f"unknown bot {spec!r}; {hint}bots: {', '.join(BOT_NAMES)}; variants: {', '.join(VARIANTS)}; "
            f"or give parameters: bot[key=value;...]"
        )
    base_name, body = match.groups()
    if base_name not in BOT_IDS and base_name not in VARIANTS:
        close = difflib.get_close_matches(base_name, known_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ArenaConfigError(
            f"unknown bot {base_name!r} in {spec!r}; {hint}bots: {', '.join(BOT_NAMES)}; "
            f"variants: {', '.join(VARIANTS)}"
        )
    base = resolve_variant(base_name)
    overrides = {}
    for item in filter(None, (part.strip() for part in body.split(";"))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key or not value:
            raise ArenaConfigError(f"bot {spec!r}: {item!r} is not key=value (separate parameters with ';')")
        if key not in COLUMNS:
            close = difflib.get_close_matches(key, PARAMETERS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ArenaConfigError(
                f"bot {spec!r}: unknown parameter {key!r}; {hint}parameters: "
                + ", ".join(f"{k} [{lo:g}, {hi:g}]" for k, (lo, hi) in VALID.items())
            )
        if key in overrides:
            raise ArenaConfigError(f"bot {spec!r}: parameter {key!r} is given twice")
        try:
            number = float(value)
        except ValueError:
            lo, hi = VALID[key]
            raise ArenaConfigError(f"bot {spec!r}: {key} must be a number in [{lo:g}, {hi:g}], got {value!r}") from None
        overrides[key] = number
    params = check_params(dataclasses.replace(base.params, **overrides), text)
    return BotVariant(text, base.bot, params)


def variant_table(extra=()) -> np.ndarray:
    """The kernels' variant table: the built-in bots in BOT_NAMES order (rows = bot ids), then
    ``extra`` BotVariants, one row each."""
    rows = [resolve_variant(name).pack() for name in BOT_NAMES] + [v.pack() for v in extra]
    return np.stack(rows)


class VariantTable:
    """The kernels' variant table and the one rule that gives a bot its row: rows 0-6 are the
    built-in bots by id (a variant with a bot's default parameters plays from that bot's row);
    another variant plays from the row of the first variant with the same parameters, or from a
    new row at the end. The arena and the league's opponent pool each keep one, and the league
    adds the pool's variants to its arena in the pool's order, so a bot's row is the same in both."""

    def __init__(self):
        self.array = variant_table()
        """the table itself, (rows, NUM_VARIANT_COLUMNS): what the kernels read"""
        self.variants: list[BotVariant] = []
        """the variants behind rows len(BOT_NAMES) and on, in row order"""

    def __len__(self) -> int:
        return len(self.array)

    def row(self, bot) -> int:
        """The row that plays ``bot`` (a name, a named variant, a ``bot[key=value;...]`` spec or a
        BotVariant), adding one for parameters the table lacks."""
        variant = resolve_variant(bot)
        if variant.builtin:
            return variant.kind
        packed = variant.pack()
        for k in range(len(BOT_NAMES), len(self.array)):
            if np.array_equal(self.array[k], packed):
                return k
        self.array = np.vstack([self.array, packed])
        self.variants.append(variant)
        return len(self.array) - 1
