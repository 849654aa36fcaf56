"""The frame record: its validated shape and its row layout in SQLite.

Vectors are stored as little-endian float32 blobs (observation_vector is 120 bytes);
enemies_state, whose structure the game owns, is stored as JSON text. See docs/ingest.md
("Storage layout") for the measurements behind the choice.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any

import msgspec

from arena.spec import OBS_SIZE

OBSERVATION_SIZE = OBS_SIZE
"""Numbers in observation_vector: the arena's observation (own position, health, velocity, 5 enemies x 5)."""

MAX_ACTION_SIZE = 16
"""Longest action_vector accepted; the game's Discrete(10) one-hot or logits fit with room."""

MAX_ENEMIES_STATE_BYTES = 4096
"""JSON size of enemies_state: 15 opponents with position, velocity, health and id fit."""

MAX_FRAME_NUMBER = 2**31 - 1
"""Frame numbers are 60 Hz ticks; 2^31 ticks is over a year of one match."""

FLOAT32_MAX = 3.4028234663852886e38
"""Vectors are stored as float32, so larger magnitudes would overflow to inf."""

Float32 = Annotated[float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Finite = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]
FrameNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_FRAME_NUMBER)]
Vec2 = Annotated[list[Float32], msgspec.Meta(min_length=2, max_length=2)]
EnemiesState = list[Any]
ActionVector = Annotated[list[Float32], msgspec.Meta(min_length=1, max_length=MAX_ACTION_SIZE)]
ObservationVector = Annotated[list[Float32], msgspec.Meta(min_length=OBSERVATION_SIZE, max_length=OBSERVATION_SIZE)]


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
    episode_id: int | msgspec.UnsetType = msgspec.UNSET
    """Optional inside a batch (the batch names the episode); must then match it."""


class WireFrame(Frame, forbid_unknown_fields=True, gc=False):
    """Frame as decoded from the network: enemies_state stays the client's raw JSON, which
    is stored as sent. Parsing it into Python objects and encoding it again cost a third
    of the server's decoding time; ``settle_enemies`` checks it instead."""

    enemies_state: msgspec.Raw


FRAME_FIELDS = tuple(f for f in Frame.__struct_fields__ if f != "episode_id")
"""The fields a frame must carry."""

_check_enemies = msgspec.json.Decoder(list[Any]).decode
"""Parses raw enemies_state to reject numbers that do not fit a double (1e999), which
would make the stored JSON unreadable; 1 us per frame, less than a regular expression."""


class FrameError(ValueError):
    def __init__(self, index: int, field: str, message: str):
        super().__init__(f"frames[{index}].{field}: {message}")


def settle_enemies(frames: list[Frame]) -> None:
    """Check each frame's enemies_state (a JSON array of at most MAX_ENEMIES_STATE_BYTES
    with finite numbers) and replace it, in place, by its JSON text. Raises FrameError."""
    for i, f in enumerate(frames):
        enemies = f.enemies_state
        if isinstance(enemies, msgspec.Raw):
            data = bytes(enemies)
            try:
                _check_enemies(data)
            except msgspec.ValidationError as e:
                raise FrameError(i, "enemies_state", str(e).replace("`array`", "a JSON array")) from None
        elif isinstance(enemies, str):
            continue  # settled already
        else:
            data = _encode_json(enemies)
        if len(data) > MAX_ENEMIES_STATE_BYTES:
            raise FrameError(i, "enemies_state", f"{len(data)} bytes of JSON; the limit is {MAX_ENEMIES_STATE_BYTES}")
        f.enemies_state = data.decode()


FRAME_COLUMNS = (
    "episode_id, frame_number, fighter_position, fighter_health, fighter_velocity, "
    "enemies_state, action_vector, reward_delta, cumulative_reward, observation_vector"
)

_PACK_VEC2 = struct.Struct("<2f").pack
_PACK_OBS = struct.Struct(f"<{OBSERVATION_SIZE}f").pack
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
            _PACK_OBS(*f.observation_vector),
        )
        for f in frames
    ]


def unpack_vector(blob: bytes) -> list[float]:
    """The float32 numbers of a stored vector blob, as Python floats."""
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))
