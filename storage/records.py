"""The frame record: its validated shape and its row layout in SQLite.

Vectors are stored as little-endian float32 blobs (observation_vector is 120 bytes, or 192
for an episode that records the full observation);
enemies_state, whose structure the game owns, is stored as JSON text. See docs/ingest.md
("Storage layout") for the measurements behind the choice.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any

import msgspec

from arena.spec import OBS_SIZE, OBSERVATIONS

OBSERVATION_SIZE = OBS_SIZE
"""Numbers in observation_vector of the basic observation, the game's (own position, health,
velocity, 5 enemies x 5); an episode opened with ``observation: full`` records the 48 of the full one."""

OBSERVATION_SIZES = dict(OBSERVATIONS)
"""observation kind -> numbers in observation_vector (basic 30, full 48; docs/arena.md)"""
OBSERVATION_KINDS = tuple(OBSERVATION_SIZES)

MAX_ACTION_SIZE = 16
"""Longest action_vector accepted; the game's Discrete(10) one-hot or logits fit with room."""

MAX_ENEMIES_STATE_BYTES = 4096
"""JSON size of enemies_state: 15 opponents with position, velocity, health and id fit."""

MAX_ENEMIES_STATE_ITEMS = 256
"""Items of the enemies_state array: 15 opponents of up to 17 numbers each, flattened, fit.
Unlike the byte size, JSON Schema can state it, so a schema-driven fuzzer's largest array
stays inside the byte size too."""

MAX_FRAME_NUMBER = 2**31 - 1
"""Frame numbers are 60 Hz ticks; 2^31 ticks is over a year of one match."""

FLOAT32_MAX = 3.4028234663852886e38
"""Vectors are stored as float32, so larger magnitudes would overflow to inf."""

MAX_JSON_DEPTH = 8
"""Nesting of the free-form JSON fields (a frame's enemies_state, a fighter's metadata),
their own array or object included. They are records, not trees: a list of enemies, each
with a list of coordinates, is 3 levels. A bound keeps every reader safe: msgspec and
Python's json stop near 1000 levels with a RecursionError, orjson at 255."""

MAX_JSON_NUMBER = 2**53
"""Largest magnitude of a number inside the free-form JSON fields. The game's numbers are
JavaScript numbers, exact up to 2^53; the bound also keeps integers within what orjson and
SQLite hold (Python's own int has no bound), and it is the same for an integer and a float
(2^53 is exact in both), so JSON Schema can state it exactly: ``25`` and ``25.0`` are
the same number to a validator, and so they must be to the server."""

Float32 = Annotated[float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Finite = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
JsonInt = Annotated[int, msgspec.Meta(ge=-MAX_JSON_NUMBER, le=MAX_JSON_NUMBER)]
JsonFloat = Annotated[float, msgspec.Meta(ge=-MAX_JSON_NUMBER, le=MAX_JSON_NUMBER)]


def whole(low: int, high: int) -> Any:
    """An integer field from ``low`` to ``high`` that also takes a JSON number with a zero
    fraction (``25.0``): JSON Schema's ``integer`` does, and so do JSON encoders that write
    every number as a float. msgspec checks the range of both forms; the struct's
    ``__post_init__`` (``whole_numbers``) turns the float into an int or refuses a fraction.
    The ``x-whole-number`` mark tells ingest/openapi.py to document it as an integer."""
    return Annotated[
        Annotated[int, msgspec.Meta(ge=low, le=high)] | Annotated[float, msgspec.Meta(ge=low, le=high)],
        msgspec.Meta(extra_json_schema={"x-whole-number": [low, high]}),
    ]


def to_whole(name: str, value: Any, low: int, high: int) -> int:
    """``value`` of a ``whole`` field as an int; ValueError naming ``name`` for a fraction."""
    if type(value) is float:
        if not value.is_integer() or not low <= int(value) <= high:
            raise ValueError(f"`{name}`: expected an integer from {low} to {high}, got {value!r}")
        return int(value)
    return value


class WholeNumbers(msgspec.Struct):
    """Base of the structs with ``whole`` fields: after decoding, each such field (or list of
    them, or optional one) that came as a float with a zero fraction becomes an int."""

    def __post_init__(self) -> None:
        for name, low, high in _whole_fields(type(self)):
            value = getattr(self, name)
            if type(value) is float:
                setattr(self, name, to_whole(name, value, low, high))
            elif type(value) is list:
                setattr(self, name, [to_whole(f"{name}[{i}]", v, low, high) for i, v in enumerate(value)])


_WHOLE_FIELDS: dict[type, list[tuple[str, int, int]]] = {}


def _whole_fields(cls: type) -> list[tuple[str, int, int]]:
    """(name, low, high) of the ``whole`` fields of a struct class (found once, by inspection)."""
    found = _WHOLE_FIELDS.get(cls)
    if found is None:
        found = []
        for f in msgspec.inspect.type_info(cls).fields:
            bounds = _whole_bounds(f.type)
            if bounds is not None:
                found.append((f.name, *bounds))
        _WHOLE_FIELDS[cls] = found
    return found


def _whole_bounds(t: msgspec.inspect.Type) -> tuple[int, int] | None:
    if isinstance(t, msgspec.inspect.Metadata):
        mark = (t.extra_json_schema or {}).get("x-whole-number")
        return tuple(mark) if mark else _whole_bounds(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        return next((b for b in map(_whole_bounds, t.types) if b is not None), None)
    if isinstance(t, msgspec.inspect.ListType):
        return _whole_bounds(t.item_type)
    return None


def json_value(levels: int) -> Any:
    """The items of a free-form JSON array or object that may be nested ``levels`` deep (its
    own level included), so holding at most ``levels - 1`` nested arrays or objects:
    strings, booleans, null and numbers within MAX_JSON_NUMBER at the bottom. msgspec
    refuses anything deeper as soon as it reaches it, so no input can make it recurse
    further. The ``x-json-levels`` mark lets ingest/openapi.py write it as a chain of
    schema references instead of this type's exponential expansion."""
    value: Any = str | bool | None | JsonInt | JsonFloat
    for _ in range(levels - 1):
        value = str | bool | None | JsonInt | JsonFloat | list[value] | dict[str, value]
    return Annotated[value, msgspec.Meta(extra_json_schema={"x-json-levels": levels})]


MAX_FRAME_NUMBER = 2**31 - 1
"""Frame numbers are 60 Hz ticks; 2^31 ticks is over a year of one match."""

MAX_ID = 2**63 - 1
"""Row ids are SQLite INTEGERs."""

FrameNumber = whole(0, MAX_FRAME_NUMBER)
Id = whole(1, MAX_ID)
Vec2 = Annotated[list[Float32], msgspec.Meta(min_length=2, max_length=2)]
EnemiesState = Annotated[list[json_value(MAX_JSON_DEPTH)], msgspec.Meta(max_length=MAX_ENEMIES_STATE_ITEMS)]
ActionVector = Annotated[list[Float32], msgspec.Meta(min_length=1, max_length=MAX_ACTION_SIZE)]
ObservationVector = Annotated[
    list[Float32],
    msgspec.Meta(
        min_length=min(OBSERVATION_SIZES.values()),
        max_length=max(OBSERVATION_SIZES.values()),
        extra_json_schema={"anyOf": [{"minItems": n, "maxItems": n} for n in OBSERVATION_SIZES.values()]},
    ),
]
"""30 numbers (basic) or 48 (full), as the schema says; msgspec checks the range, settle_enemies
the lengths between, and the writers the episode's kind"""


class Frame(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One game tick of one fighter, as the game sends it (JSON field names).

    ``gc=False``: frames hold no reference cycles, and ~50k of them a second passing through
    the garbage collector's young generation cost more than decoding them."""

    frame_number: FrameNumber
    fighter_position: Vec2
    fighter_health: Finite
    fighter_velocity: Vec2
    enemies_state: EnemiesState
    action_vector: ActionVector
    reward_delta: Finite
    cumulative_reward: Finite
    observation_vector: ObservationVector
    episode_id: Id | msgspec.UnsetType = msgspec.UNSET
    """Optional inside a batch (the batch names the episode); must then match it."""

    def __post_init__(self) -> None:
        # whole_numbers() spelled out: this runs for each of ~50k frames a second.
        if type(self.frame_number) is float:
            self.frame_number = to_whole("frame_number", self.frame_number, 0, MAX_FRAME_NUMBER)
        if type(self.episode_id) is float:
            self.episode_id = to_whole("episode_id", self.episode_id, 1, MAX_ID)


class WireFrame(Frame, forbid_unknown_fields=True, gc=False):
    """Frame as decoded from the network: enemies_state stays the client's raw JSON, which
    is stored as sent. Parsing it into Python objects and encoding it again cost a third
    of the server's decoding time; ``settle_enemies`` checks it instead."""

    enemies_state: msgspec.Raw


FRAME_FIELDS = tuple(f for f in Frame.__struct_fields__ if f != "episode_id")
"""The fields a frame must carry."""

_check_enemies = msgspec.json.Decoder(EnemiesState).decode
"""Parses raw enemies_state to check it as the EnemiesState type says: nesting, numbers
within MAX_JSON_NUMBER (1e999 would make the stored JSON unreadable), valid UTF-8; a few
microseconds per frame."""


class FrameError(ValueError):
    """A frame that breaks a rule its type cannot say; ``malformed``: not even valid JSON."""

    def __init__(self, index: int, field: str, message: str, malformed: bool = False):
        super().__init__(f"frames[{index}].{field}: {message}")
        self.malformed = malformed


def settle_enemies(frames: list[Frame]) -> None:
    """Check each frame's enemies_state (a JSON array of at most MAX_ENEMIES_STATE_BYTES,
    nested at most MAX_JSON_DEPTH levels, numbers within MAX_JSON_NUMBER) and
    replace it, in place, by its JSON text. Raises FrameError."""
    for i, f in enumerate(frames):
        if len(f.observation_vector) not in _OBSERVATION_LENGTHS:
            raise FrameError(
                i,
                "observation_vector",
                f"{len(f.observation_vector)} numbers; an observation has "
                + " or ".join(f"{n} ({kind})" for kind, n in OBSERVATION_SIZES.items()),
            )
        enemies = f.enemies_state
        if isinstance(enemies, msgspec.Raw):
            data = bytes(enemies)
            if len(data) > MAX_ENEMIES_STATE_BYTES:
                raise FrameError(
                    i, "enemies_state", f"{len(data)} bytes of JSON; the limit is {MAX_ENEMIES_STATE_BYTES}"
                )
            try:
                _check_enemies(data)
            except msgspec.ValidationError as e:
                raise FrameError(i, "enemies_state", json_error_message(str(e), MAX_JSON_DEPTH)) from None
            except msgspec.DecodeError as e:  # e.g. invalid UTF-8 in a string, which msgspec.Raw lets through
                raise FrameError(i, "enemies_state", f"not valid JSON: {e}", malformed=True) from None
        elif isinstance(enemies, str):
            continue  # settled already
        else:
            data = _encode_json(enemies)
        if len(data) > MAX_ENEMIES_STATE_BYTES:
            raise FrameError(i, "enemies_state", f"{len(data)} bytes of JSON; the limit is {MAX_ENEMIES_STATE_BYTES}")
        f.enemies_state = data.decode()


def json_error_message(message: str, levels: int) -> str:
    """msgspec's message for a free-form JSON field, said plainly: "nested more than N
    levels" instead of a scalar type expected where an array was found."""
    if message.startswith(
        (
            "Expected `bool | int | float | str | null`, got `array`",
            "Expected `bool | int | float | str | null`, got `object`",
        )
    ):
        path = message.rpartition(" - at ")[2]
        return f"nested more than {levels} levels deep (at {path}); flatten it"
    return message.replace("`array`", "a JSON array")


FRAME_COLUMNS = (
    "episode_id, frame_number, fighter_position, fighter_health, fighter_velocity, "
    "enemies_state, action_vector, reward_delta, cumulative_reward, observation_vector"
)

_PACK_VEC2 = struct.Struct("<2f").pack
_PACK_OBS = {n: struct.Struct(f"<{n}f").pack for n in OBSERVATION_SIZES.values()}
_OBSERVATION_LENGTHS = frozenset(OBSERVATION_SIZES.values())
_PACKERS = {n: struct.Struct(f"<{n}f") for n in range(1, MAX_ACTION_SIZE + 1)}
_encode_json = msgspec.json.Encoder().encode


def frame_rows(episode_id: int, frames: list[Frame]) -> list[tuple]:
    """Rows for INSERT in FRAME_COLUMNS order, from validated, settled frames."""
    packers = _PACKERS
    return [
        (
            episode_id,
            f.frame_number,
            _PACK_VEC2(*f.fighter_position),
            f.fighter_health,
            _PACK_VEC2(*f.fighter_velocity),
            f.enemies_state,
            packers[len(f.action_vector)].pack(*f.action_vector),
            f.reward_delta,
            f.cumulative_reward,
            _PACK_OBS[len(f.observation_vector)](*f.observation_vector),
        )
        for f in frames
    ]


OBSERVATION_COLUMN = FRAME_COLUMNS.split(", ").index("observation_vector")
"""where a frame row holds its observation blob"""


def observation_mismatch(rows: list[tuple], kind: str) -> str | None:
    """Why frame rows do not fit an episode recording the ``kind`` observation (None: they do)."""
    want = 4 * OBSERVATION_SIZES[kind]
    for i, row in enumerate(rows):
        if len(row[OBSERVATION_COLUMN]) != want:
            got = len(row[OBSERVATION_COLUMN]) // 4
            return (
                f"frames[{i}].observation_vector has {got} numbers, but episode {row[0]} records the {kind} "
                f"observation ({want // 4} numbers; POST /api/episodes chose it with observation)"
            )
    return None


def unpack_vector(blob: bytes) -> list[float]:
    """The float32 numbers of a stored vector blob, as Python floats."""
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))
