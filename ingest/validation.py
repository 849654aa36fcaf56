"""Request bodies: their types (msgspec validates while it parses) and clear errors.

Malformed JSON is a 400; well-formed JSON of the wrong shape, type or range is a 422 whose
message names the field by its JSON path, e.g. ``$.frames[3].observation_vector``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from storage.records import (
    FRAME_FIELDS,
    ActionVector,
    EnemiesState,
    Finite,
    Frame,
    FrameError,
    FrameNumber,
    ObservationVector,
    Vec2,
    WireFrame,
    settle_enemies,
)

from .errors import ApiError
from .limits import MAX_METADATA_BYTES, MAX_OPPONENTS

Id = Annotated[int, Meta(ge=1, le=2**63 - 1)]


class FighterIn(Struct, forbid_unknown_fields=True):
    glb_filename: Annotated[str, Meta(min_length=1, max_length=255)]
    metadata: dict[str, Any] = {}
    model_version: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0


class EpisodeIn(Struct, forbid_unknown_fields=True):
    fighter_id: Id
    opponent_ids: Annotated[list[Id], Meta(max_length=MAX_OPPONENTS)] = []
    episode_number: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None


class EpisodeResult(Struct, forbid_unknown_fields=True):
    total_reward: Finite
    duration_frames: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    is_victory: bool
    rank: Annotated[int, Meta(ge=1, le=1000)] | None = None


class FramesIn(Struct, forbid_unknown_fields=True):
    """POST /api/fight-frames: a batch {episode_id, frames} or one frame with its episode_id."""

    episode_id: Id
    frames: list[WireFrame] | UnsetType = UNSET
    frame_number: FrameNumber | UnsetType = UNSET
    fighter_position: Vec2 | UnsetType = UNSET
    fighter_health: Finite | UnsetType = UNSET
    fighter_velocity: Vec2 | UnsetType = UNSET
    enemies_state: EnemiesState | UnsetType = UNSET
    action_vector: ActionVector | UnsetType = UNSET
    reward_delta: Finite | UnsetType = UNSET
    cumulative_reward: Finite | UnsetType = UNSET
    observation_vector: ObservationVector | UnsetType = UNSET


class ActIn(Struct, forbid_unknown_fields=True):
    """POST /api/fighters/{id}/act: observations to choose actions for."""

    observations: list[ObservationVector]
    greedy: bool = True
    """argmax of the logits; false: a draw from the policy's distribution"""
    version: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None
    """a model_version of the fighter's checkpoints; default: its best checkpoint"""
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    """makes sampled actions (greedy false) reproducible"""


class StreamBatch(Struct, forbid_unknown_fields=True):
    """One WebSocket message: {"seq": n, "frames": [...]}."""

    seq: Annotated[int, Meta(ge=0, le=2**53)]
    frames: list[WireFrame]


class StreamAuth(Struct, forbid_unknown_fields=True):
    """The first WebSocket message when the token is not in the URL."""

    token: str


T = TypeVar("T")
_decoders: dict[type, msgspec.json.Decoder] = {}


def decode(body: bytes | str, kind: type[T]) -> T:
    """Parse and validate ``body`` as ``kind``; raise ApiError 400/422 with the reason."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return dec.decode(body)
    except msgspec.ValidationError as e:
        raise ApiError(422, f"invalid {_name(kind)}: {e}") from None
    except msgspec.DecodeError as e:
        hint = ""
        if _mentions_non_finite(body):
            hint = " (NaN and Infinity are not JSON numbers: send finite numbers)"
        if not body:
            raise ApiError(400, f"empty body: expected a JSON {_name(kind)}") from None
        raise ApiError(400, f"malformed JSON: {e}{hint}") from None


def _mentions_non_finite(body: bytes | str) -> bool:
    b = body.encode() if isinstance(body, str) else body
    return b"NaN" in b or b"Infinity" in b


def _name(kind: type) -> str:
    return {
        FighterIn: "fighter",
        EpisodeIn: "episode",
        EpisodeResult: "episode result",
        FramesIn: "frames body",
        StreamBatch: "stream message",
        StreamAuth: "auth message",
        ActIn: "act body",
    }.get(kind, kind.__name__)


def check_metadata(metadata: dict) -> None:
    size = len(msgspec.json.encode(metadata))
    if size > MAX_METADATA_BYTES:
        raise ApiError(422, f"metadata is {size} bytes of JSON; the limit is {MAX_METADATA_BYTES}")


def frames_of(body: FramesIn, max_frames: int) -> list[Frame]:
    """The frames a POST /api/fight-frames body carries (one or a batch), checked."""
    if body.frames is not UNSET:
        extra = [f for f in FRAME_FIELDS if getattr(body, f) is not UNSET]
        if extra:
            raise ApiError(422, f"a batch has only episode_id and frames; move {extra} into each frame")
        return check_batch(body.episode_id, body.frames, max_frames)
    missing = [f for f in FRAME_FIELDS if getattr(body, f) is UNSET]
    if missing:
        raise ApiError(
            422,
            f"invalid frames body: a single frame is missing {missing}; or send a batch "
            '{"episode_id": id, "frames": [...]}',
        )
    return check_batch(body.episode_id, [Frame(**{f: getattr(body, f) for f in FRAME_FIELDS})], max_frames)


def check_batch(episode_id: int, frames: list[Frame], max_frames: int) -> list[Frame]:
    """Rules msgspec types cannot say: batch size, each frame's episode_id, enemies_state
    (checked and turned into JSON text in place)."""
    if len(frames) > max_frames:
        raise ApiError(413, f"batch has {len(frames)} frames; at most {max_frames} per batch: split it")
    if not frames:
        raise ApiError(422, "batch has no frames")
    for i, f in enumerate(frames):
        if f.episode_id is not UNSET and f.episode_id != episode_id:
            raise ApiError(422, f"frames[{i}].episode_id is {f.episode_id}, but the batch is for episode {episode_id}")
    try:
        settle_enemies(frames)
    except FrameError as e:
        raise ApiError(422, f"invalid frame: {e}") from None
    return frames
