"""Request bodies: their types (msgspec validates while it parses) and clear errors.

Malformed JSON is a 400; well-formed JSON of the wrong shape, type or range is a 422 whose
message names the field by its JSON path, e.g. ``$.frames[3].observation_vector``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from storage.records import (
    FRAME_FIELDS,
    MAX_JSON_DEPTH,
    ActionVector,
    EnemiesState,
    Finite,
    Frame,
    FrameError,
    FrameNumber,
    Id,
    ObservationVector,
    Vec2,
    WholeNumbers,
    WireFrame,
    json_error_message,
    json_value,
    settle_enemies,
    whole,
)

from .errors import ApiError
from .limits import MAX_METADATA_BYTES, MAX_OPPONENTS

Metadata = dict[str, json_value(MAX_JSON_DEPTH)]
"""A fighter's free-form metadata: a JSON object nested at most MAX_JSON_DEPTH levels."""


class FighterIn(WholeNumbers, forbid_unknown_fields=True):
    """POST /api/fighters: a fighter to register."""

    glb_filename: Annotated[str, Meta(min_length=1, max_length=255)]
    """the game's model file for this fighter"""
    metadata: Metadata = {}
    """free-form (sizes, speeds, names): at most 64 KiB of JSON, nested at most 8 levels"""
    model_version: whole(0, 2**31 - 1) = 0


class EpisodeIn(WholeNumbers, forbid_unknown_fields=True):
    """POST /api/episodes: an episode to open for a fighter."""

    fighter_id: Id
    opponent_ids: Annotated[list[Id], Meta(max_length=MAX_OPPONENTS)] = []
    episode_number: whole(0, 2**63 - 1) | None = None
    """default (absent or null): the fighter's next"""
    observation: Literal["basic", "full"] = "basic"
    """which observation its frames' observation_vector carries: basic (the game's 30 numbers) or
    full (48: also cooldowns and facings; docs/arena.md). Frames of the other length are refused."""


class EpisodeResult(WholeNumbers, forbid_unknown_fields=True):
    """PATCH /api/episodes/{id}: the result that completes an episode."""

    total_reward: Finite
    duration_frames: whole(0, 2**31 - 1)
    is_victory: bool
    rank: whole(1, 1000) | None = None


class FramesIn(WholeNumbers, forbid_unknown_fields=True):
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


class ActIn(WholeNumbers, forbid_unknown_fields=True):
    """POST /api/fighters/{id}/act: observations to choose actions for."""

    observations: list[ObservationVector]
    """one row per fighter of the numbers the fighter's model reads (that fit float32): 30 for the
    basic observation, 48 for the full one"""
    greedy: bool = True
    """argmax of the logits; false: a draw from the policy's distribution"""
    version: whole(0, 2**31 - 1) | None = None
    """a model_version of the fighter's checkpoints; default: its best checkpoint"""
    seed: whole(0, 2**63 - 1) | None = None
    """makes sampled actions (greedy false) reproducible"""
    session: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")] | None = None
    """for a fighter whose model has memory (policy.kind lstm; the answer's recurrent): a name you
    choose for one match's fighters (letters, digits, . _ : -), sent with every call of that match;
    the server keeps their memory under it between calls. Ignored by a feed-forward model."""
    reset: bool | list[bool] = False
    """true: every row starts a new match (fresh memory); or one bool per row for the fighters that
    start one. A session's first call starts fresh anyway."""


class StreamBatch(WholeNumbers, forbid_unknown_fields=True):
    """One WebSocket message: {"seq": n, "frames": [...]}."""

    seq: whole(0, 2**53)
    """any number you choose (usually counting up); the answer names it"""
    frames: list[WireFrame]


class StreamAuth(Struct, forbid_unknown_fields=True):
    """The first WebSocket message when the token is not in the URL."""

    token: str


class _SeqOnly(Struct):
    seq: Any = None


T = TypeVar("T")
_decoders: dict[type, msgspec.json.Decoder] = {}
_seq_decoder = msgspec.json.Decoder(_SeqOnly)


def decode(body: bytes | str, kind: type[T]) -> T:
    """Parse and validate ``body`` as ``kind``; raise ApiError 400 (not JSON) or 422 (JSON of
    the wrong shape) with the reason. No input raises anything else."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return dec.decode(body)
    except msgspec.ValidationError as e:
        raise ApiError(422, f"invalid {_name(kind)}: {json_error_message(str(e), MAX_JSON_DEPTH)}") from None
    except msgspec.DecodeError as e:
        hint = ""
        if _mentions_non_finite(body):
            hint = " (NaN and Infinity are not JSON numbers: send finite numbers)"
        if not body:
            raise ApiError(400, f"empty body: expected a JSON {_name(kind)}") from None
        raise ApiError(400, f"malformed JSON: {e}{hint}") from None
    except RecursionError:
        # msgspec gives up near 1000 levels (safely: Python's recursion guard, not the C
        # stack); only a value it skips unparsed (enemies_state) gets that far.
        raise ApiError(
            400,
            f"JSON nested too deeply to read; enemies_state and metadata may nest at most {MAX_JSON_DEPTH} levels",
        ) from None


_LEADING_SEQ = re.compile(r'\s*\{\s*"seq"\s*:\s*(\d{1,16})\s*[,}]')
"""``{"seq": n, ...`` at the start of a message, as clients write it: the seq of a message
too deeply nested for a parser to reach the end of."""


def seq_of(message: str) -> int | None:
    """The seq of a stream message that failed validation, when it has a usable one."""
    try:
        seq = _seq_decoder.decode(message).seq
    except RecursionError:
        m = _LEADING_SEQ.match(message)
        return int(m.group(1)) if m else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if type(seq) is float and seq.is_integer():
        seq = int(seq)
    return seq if type(seq) is int and 0 <= seq <= 2**53 else None


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
        raise ApiError(400 if e.malformed else 422, f"invalid frame: {e}") from None
    return frames
