"""The answers the server sends, as msgspec types: ``openapi`` generates their schemas, and
tests/test_ingest_openapi.py decodes real answers with them (unknown fields refused), so
neither the document nor the answers can change without the other.

The handlers build their answers as dicts (storage returns rows that way); these types say
what those dicts hold.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType


class _Answer(Struct, forbid_unknown_fields=True):
    pass


class Error(_Answer):
    """Every error: what is wrong and what to do, and the HTTP status again."""

    error: str
    status: int


class Health(_Answer):
    """GET /health: liveness and database status."""

    status: Literal["ok"]
    database: str
    schema_version: int
    uptime_s: float
    connections: int
    commits: int


class Fighter(_Answer):
    id: int
    glb_filename: str
    model_version: int
    created_at: str
    metadata: dict[str, Any]


class Checkpoint(_Answer):
    """A saved model (train.py registers them)."""

    id: int
    fighter_id: int
    model_version: int
    training_iteration: int
    win_rate: float
    avg_reward: float
    total_episodes_trained: int
    weights_path: str
    training_mode: str
    created_at: str


class TrainingMetrics(_Answer):
    id: int
    fighter_id: int
    training_session_id: str
    iteration_number: int
    avg_reward_last_100: float | None
    win_rate_last_100: float | None
    loss: float | None
    policy_entropy: float | None
    recorded_at: str


class FighterStats(_Answer):
    fighter_id: int
    episodes: int
    completed_episodes: int
    victories: int
    win_rate: float | None
    avg_reward: float | None
    best_reward: float | None
    avg_duration_frames: float | None
    avg_rank: float | None
    frames: int
    checkpoints: int
    best_checkpoint: Checkpoint | None
    latest_training_metrics: TrainingMetrics | None


class Episode(_Answer):
    id: int
    fighter_id: int
    episode_number: int
    opponent_ids: list[int]
    total_reward: float | None
    duration_frames: int | None
    is_victory: bool | None
    rank: int | None
    started_at: str
    ended_at: str | None
    status: Literal["open", "completed"]
    observation: Literal["basic", "full"]
    """which observation its frames carry: basic (30 numbers) or full (48)"""
    frame_count: int | UnsetType = UNSET
    """only on GET /api/episodes/{id}"""


class StoredFrame(_Answer):
    """A frame as stored: vectors read back as float32 values."""

    id: int
    episode_id: int
    frame_number: int
    fighter_position: list[float]
    fighter_health: float
    fighter_velocity: list[float]
    enemies_state: list[Any]
    action_vector: list[float]
    reward_delta: float
    cumulative_reward: float
    observation_vector: list[float]


class FramesStored(_Answer):
    episode_id: int
    stored: int
    """frames newly written"""
    duplicates: int
    """frames already stored (a retry)"""


class ActSession(_Answer):
    id: str
    started: Literal["new", "reset", "checkpoint"] | None
    """why this call's memory was fresh: new (the session's first call, or it expired or was evicted),
    reset (asked for), checkpoint (the fighter's serving checkpoint changed); null: carried on"""
    expires_in_s: float
    """the session is forgotten after this long without a call"""


class Actions(_Answer):
    """One action per observation, in order: 0-7 move north, north-east, ..., north-west; 8 idle; 9 attack."""

    actions: list[Annotated[int, Meta(ge=0, le=9)]]
    model_version: int
    checkpoint_id: int
    recurrent: bool
    """the model has memory: calls of one match must name a session"""
    observation: Literal["basic", "full"] | None
    """what the model reads: basic (30 numbers) or full (48)"""
    session: ActSession | None = None
    """the memory the call used (recurrent models only)"""


class FighterPage(_Answer):
    items: list[Fighter]
    total: int
    limit: int
    offset: int


class EpisodePage(_Answer):
    items: list[Episode]
    total: int
    limit: int
    offset: int


class CheckpointPage(_Answer):
    items: list[Checkpoint]
    total: int
    limit: int
    offset: int


class FramePage(_Answer):
    items: list[StoredFrame]
    total: int
    limit: int
    offset: int


class StreamAck(_Answer):
    """A batch is committed: ``stored`` frames new, ``duplicates`` already stored (a resend)."""

    ack: int
    stored: int
    duplicates: int


class StreamError(_Answer):
    """A batch is refused, nothing of it stored; ``seq`` is null when it could not be read."""

    error: str
    seq: int | None
    status: int
