"""Synchronous access for training and evaluation, over the stdlib sqlite3 module.

Each write is one short ``BEGIN IMMEDIATE`` transaction, so a training run, an evaluation
and the ingest server can write the same file at once; a writer that finds the lock taken
waits up to ``BUSY_TIMEOUT_MS`` (10 s) instead of failing with "database is locked".
"""

from __future__ import annotations

import math
import numbers
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from . import queries as q
from .errors import BusyError, ConflictError, FrameKindError, NotFoundError, StorageError
from .records import (
    OBSERVATION_KINDS,
    OBSERVATION_SIZES,
    Frame,
    frame_rows,
    observation_mismatch,
    settle_enemies,
)
from .schema import SCHEMA_VERSION, configure, migrate


def connect(path: str | Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """An autocommit connection to a migrated arena database (parent folder created)."""
    if str(path) != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the folder of {str(path)!r}: {e.strerror}") from e
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=0)
    try:
        configure(conn, in_memory=str(path) == ":memory:")
        conn.execute(f"PRAGMA synchronous = {_synchronous(synchronous)}")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _synchronous(value: str) -> str:
    if value.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {value!r}")
    return value.upper()


@dataclass
class FrameArrays:
    """Frames as column arrays (row i of each array is one frame), ordered by episode, frame."""

    episode_id: Any
    """(N,) int64"""
    frame_number: Any
    """(N,) int64"""
    observation: Any
    """(N, 30) float32: observation_vector ((N, 48) for frames of the full observation)"""
    action: Any
    """(N, A) float32: action_vector (all selected frames must share A)"""
    fighter_position: Any
    """(N, 2) float32"""
    fighter_velocity: Any
    """(N, 2) float32"""
    fighter_health: Any
    """(N,) float64"""
    reward_delta: Any
    """(N,) float64"""
    cumulative_reward: Any
    """(N,) float64"""
    observation_kind: str = "basic"
    """which observation the frames carry: basic or full (their episodes' observation)"""

    def __len__(self) -> int:
        return len(self.frame_number)


class Database:
    """One connection to the arena database; not shared between threads."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | Path, synchronous: str = "FULL") -> Database:
        """Open (creating and migrating as needed) the database at ``path``."""
        return cls(connect(path, synchronous), str(path))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def settings(self) -> dict:
        """This connection's SQLite settings, as ``connect`` configured them:
        ``journal_mode`` ("wal", or "memory" for ":memory:"), ``foreign_keys`` (bool),
        ``busy_timeout_ms`` (int) and ``synchronous`` ("OFF", "NORMAL", "FULL" or "EXTRA")."""
        c = self._conn
        return {
            "journal_mode": c.execute("PRAGMA journal_mode").fetchone()[0],
            "foreign_keys": bool(c.execute("PRAGMA foreign_keys").fetchone()[0]),
            "busy_timeout_ms": c.execute("PRAGMA busy_timeout").fetchone()[0],
            "synchronous": _SYNCHRONOUS_NAMES[c.execute("PRAGMA synchronous").fetchone()[0]],
        }

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise BusyError(
                f"{self.path}: could not take the write lock ({e}); another process kept a "
                "write transaction open longer than the 10 s busy timeout"
            ) from e
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ---------------------------------------------------------------- fighters

    def register_fighter(self, glb_filename: str, metadata: dict, model_version: int = 0) -> int:
        """Add a fighter; returns its id."""
        _check_str("glb_filename", glb_filename)
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict, got {metadata!r}")
        _check_int("model_version", model_version, 0)
        meta = _json("metadata", metadata)
        with self._write() as c:
            return c.execute(q.INSERT_FIGHTER, (glb_filename, meta, int(model_version))).fetchone()[0]

    def get_fighter(self, fighter_id: int) -> dict | None:
        row = self._conn.execute(q.SELECT_FIGHTER, (_id("fighter_id", fighter_id),)).fetchone()
        return q.fighter_dict(row) if row else None

    def list_fighters(self) -> list[dict]:
        rows = self._conn.execute(q.LIST_FIGHTERS, (-1, 0)).fetchall()
        return [q.fighter_dict(r) for r in rows]

    def fighter_stats(self, fighter_id: int) -> dict:
        """A fighter's summary: episode, victory, frame and checkpoint counts, reward and
        rank averages, its best checkpoint and latest training metrics (the dict that
        ``AsyncStore.fighter_stats`` returns too)."""
        self._require_fighter(fighter_id)
        fighter_id = int(fighter_id)
        c = self._conn
        return q.stats_dict(
            fighter_id,
            c.execute(q.FIGHTER_EPISODE_STATS, (fighter_id,)).fetchone(),
            c.execute(q.FIGHTER_FRAME_COUNT, (fighter_id,)).fetchone()[0],
            c.execute(q.COUNT_CHECKPOINTS, (fighter_id,)).fetchone()[0],
            c.execute(q.BEST_CHECKPOINT, (fighter_id,)).fetchone(),
            c.execute(q.LATEST_METRICS, (fighter_id,)).fetchone(),
        )

    def _require_fighter(self, fighter_id: int) -> None:
        if self._conn.execute(q.FIGHTER_EXISTS, (_id("fighter_id", fighter_id),)).fetchone() is None:
            raise NotFoundError(f"fighter {fighter_id!r} does not exist; register it first")

    # ---------------------------------------------------------------- training records

    def add_training_metrics(
        self,
        fighter_id: int,
        training_session_id: str,
        iteration_number: int,
        avg_reward_last_100: float,
        win_rate_last_100: float,
        loss: float,
        policy_entropy: float,
    ) -> int:
        """Record one training iteration's metrics; NaN is stored as NULL. Returns the row id."""
        _check_str("training_session_id", training_session_id)
        _check_int("iteration_number", iteration_number, 0)
        values = {
            "avg_reward_last_100": avg_reward_last_100,
            "win_rate_last_100": win_rate_last_100,
            "loss": loss,
            "policy_entropy": policy_entropy,
        }
        for name, v in values.items():
            _check_number(name, v, finite=False)
        with self._write() as c:
            self._require_fighter(fighter_id)
            cur = c.execute(
                q.INSERT_METRICS,
                (
                    int(fighter_id),
                    training_session_id,
                    int(iteration_number),
                    *(None if math.isnan(v) else float(v) for v in values.values()),
                ),
            )
            return cur.lastrowid

    def list_training_metrics(self, fighter_id: int) -> list[dict]:
        """A fighter's training metrics rows, oldest first (NaN values read back as None)."""
        rows = self._conn.execute(q.LIST_METRICS, (_id("fighter_id", fighter_id),)).fetchall()
        return [q.metrics_dict(r) for r in rows]

    def add_checkpoint(
        self,
        fighter_id: int,
        model_version: int,
        training_iteration: int,
        win_rate: float,
        avg_reward: float,
        total_episodes_trained: int,
        weights_path: str,
        training_mode: str,
    ) -> int:
        """Register a saved checkpoint (the weights file is the caller's); returns its id."""
        _check_int("model_version", model_version, 0)
        _check_int("training_iteration", training_iteration, 0)
        _check_int("total_episodes_trained", total_episodes_trained, 0)
        _check_number("win_rate", win_rate)
        _check_number("avg_reward", avg_reward)
        weights_path = str(weights_path) if isinstance(weights_path, Path) else weights_path
        _check_str("weights_path", weights_path)
        _check_str("training_mode", training_mode)
        with self._write() as c:
            self._require_fighter(fighter_id)
            cur = c.execute(
                q.INSERT_CHECKPOINT,
                (
                    int(fighter_id),
                    int(model_version),
                    int(training_iteration),
                    float(win_rate),
                    float(avg_reward),
                    int(total_episodes_trained),
                    weights_path,
                    training_mode,
                ),
            )
            return cur.lastrowid

    def best_checkpoint(self, fighter_id: int) -> dict | None:
        """Highest win_rate, then avg_reward, then newest; None when there is none."""
        row = self._conn.execute(q.BEST_CHECKPOINT, (_id("fighter_id", fighter_id),)).fetchone()
        return q.checkpoint_dict(row) if row else None

    def list_checkpoints(self, fighter_id: int) -> list[dict]:
        rows = self._conn.execute(q.LIST_CHECKPOINTS, (_id("fighter_id", fighter_id), -1, 0)).fetchall()
        return [q.checkpoint_dict(r) for r in rows]

    # ---------------------------------------------------------------- episodes and frames

    def create_episode(
        self,
        fighter_id: int,
        opponent_ids: list[int] = (),
        episode_number: int | None = None,
        observation: str = "basic",
    ) -> int:
        """Open an episode; episode_number defaults to the fighter's next one. ``observation``:
        which observation its frames carry, basic (30 numbers) or full (48)."""
        if observation not in OBSERVATION_KINDS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATION_KINDS)}, got {observation!r}")
        opponents = [_id(f"opponent_ids[{i}]", o) for i, o in enumerate(opponent_ids)]
        if episode_number is not None:
            episode_number = _id("episode_number", episode_number)
        fighter_id = _id("fighter_id", fighter_id)
        with self._write() as c:
            self._require_fighter(fighter_id)
            if episode_number is None:
                episode_number = c.execute(q.NEXT_EPISODE_NUMBER, (fighter_id,)).fetchone()[0]
            row = c.execute(
                q.INSERT_EPISODE, (fighter_id, episode_number, orjson.dumps(opponents).decode(), observation)
            ).fetchone()
            return row[0]

    def get_episode(self, episode_id: int) -> dict | None:
        row = self._conn.execute(q.SELECT_EPISODE, (_id("episode_id", episode_id),)).fetchone()
        return q.episode_dict(row) if row else None

    def complete_episode(
        self, episode_id: int, total_reward: float, duration_frames: int, is_victory: bool, rank: int | None = None
    ) -> dict:
        """Close an episode with its result; frames for it are refused from then on."""
        _check_number("total_reward", total_reward)
        _check_int("duration_frames", duration_frames, 0)
        if not isinstance(is_victory, bool):
            raise ValueError(f"is_victory must be a bool, got {is_victory!r}")
        if rank is not None:
            _check_int("rank", rank, 1)
            rank = int(rank)
        episode_id = _id("episode_id", episode_id)
        with self._write() as c:
            row = c.execute(
                q.COMPLETE_EPISODE,
                (
                    float(total_reward),
                    int(duration_frames),
                    int(is_victory),
                    rank,
                    episode_id,
                ),
            ).fetchone()
            if row is None:
                if c.execute(q.SELECT_EPISODE, (episode_id,)).fetchone() is None:
                    raise NotFoundError(f"episode {episode_id!r} does not exist")
                raise ConflictError(f"episode {episode_id!r} is already completed")
            return q.episode_dict(row)

    def add_frames(self, episode_id: int, frames: list[dict | Frame]) -> tuple[int, int]:
        """Store frames of an open episode; returns (stored, duplicates already present)."""
        try:
            checked = msgspec.convert(frames, list[Frame])
        except msgspec.ValidationError as e:
            raise ValueError(f"invalid frame (numbers must be finite; vectors float32): {e}") from e
        settle_enemies(checked)
        episode_id = _id("episode_id", episode_id)
        rows = frame_rows(episode_id, checked)
        with self._write() as c:
            state = c.execute(q.EPISODE_ENDED_AT, (episode_id,)).fetchone()
            if state is None:
                raise NotFoundError(f"episode {episode_id!r} does not exist")
            if state[0] is not None:
                raise ConflictError(f"episode {episode_id!r} is completed; open a new episode")
            mismatch = observation_mismatch(rows, state[1])
            if mismatch is not None:
                raise FrameKindError(mismatch)
            stored = _insert_frame_rows(c, rows)
        return stored, len(rows) - stored

    def add_frame_rows(self, rows: list[tuple]) -> int:
        """Bulk-load frame rows that ``records.frame_rows`` built from validated, settled
        frames, in one transaction; returns how many were stored.

        A trusted path for loading many frames fast (benchmarks, imports): unlike
        ``add_frames`` it neither validates the frames nor checks that their episodes are
        open, so the caller must have done both. Rows may belong to several episodes (each
        row carries its episode_id); a frame whose (episode_id, frame_number) is stored
        already is skipped, as in ``add_frames``. If any row fails (e.g. an episode that
        does not exist breaks the foreign key: ``sqlite3.IntegrityError``) the whole load is
        rolled back. Raises BusyError if the write lock stays taken past the busy timeout.
        """
        with self._write() as c:
            return _insert_frame_rows(c, rows)

    def read_frames(
        self,
        fighter_id: int | None = None,
        episode_ids: list[int] | None = None,
        is_victory: bool | None = None,
        completed_only: bool = False,
        since: str | None = None,
        until: str | None = None,
        max_rank: int | None = None,
        observation: str | None = None,
    ) -> FrameArrays:
        """All matching frames as numpy arrays, in bulk (no per-frame JSON decoding).

        ``observation`` keeps the episodes that record that observation (basic or full); frames
        of both kinds in one selection are a ValueError naming the filter.

        ``since``/``until`` compare with the episode's started_at (ISO 8601 UTC text).
        ``max_rank`` keeps episodes that finished at that rank or better (1 = first);
        episodes completed without a rank are left out by it.
        """
        import numpy as np

        where, params = [], []
        if fighter_id is not None:
            self._require_fighter(fighter_id)
            where.append("e.fighter_id = ?")
            params.append(int(fighter_id))
        if episode_ids is not None:
            where.append("e.id IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps([int(i) for i in episode_ids]).decode())
        if is_victory is not None:
            where.append("e.is_victory = ?")
            params.append(int(bool(is_victory)))
        if completed_only:
            where.append("e.ended_at IS NOT NULL")
        if max_rank is not None:
            where.append("e.rank <= ?")
            _check_int("max_rank", max_rank, 1)
            params.append(int(max_rank))
        if observation is not None:
            if observation not in OBSERVATION_KINDS:
                raise ValueError(f"observation must be one of {', '.join(OBSERVATION_KINDS)}, got {observation!r}")
            where.append("e.observation = ?")
            params.append(observation)
        if since is not None:
            where.append("e.started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("e.started_at < ?")
            params.append(until)
        # Episodes in a subquery, not a join: SQLite then walks the (episode_id,
        # frame_number) index in order instead of sorting a million rows afterwards.
        sql = (
            "SELECT episode_id, frame_number, observation_vector, action_vector, "
            "fighter_position, fighter_velocity, fighter_health, reward_delta, cumulative_reward "
            "FROM fight_frames WHERE episode_id IN (SELECT e.id FROM episodes e"
            + (" WHERE " + " AND ".join(where) if where else "")
            + ") ORDER BY episode_id, frame_number"
        )
        rows = self._conn.execute(sql, params).fetchall()
        n = len(rows)
        if n == 0:
            empty = np.zeros((0,), np.float64)
            return FrameArrays(
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros((0, OBSERVATION_SIZES[observation or "basic"]), np.float32),
                np.zeros((0, 0), np.float32),
                np.zeros((0, 2), np.float32),
                np.zeros((0, 2), np.float32),
                empty,
                empty,
                empty,
                observation or "basic",
            )
        ep, fn, obs, act, pos, vel, health, rd, cr = zip(*rows, strict=True)
        action_sizes = {len(b) // 4 for b in act}
        if len(action_sizes) != 1:
            raise ValueError(
                f"the selected frames have action_vector lengths {sorted(action_sizes)}; "
                "select episodes recorded with one action encoding (filter by fighter or episode)"
            )

        observation_sizes = {len(b) // 4 for b in obs}
        if len(observation_sizes) != 1:
            raise ValueError(
                "the selected frames carry both the basic and the full observation; select one kind "
                "(observation='basic' or 'full', imitation: env.observation)"
            )
        width = observation_sizes.pop()
        kind = next(k for k, n in OBSERVATION_SIZES.items() if n == width)

        def f32(blobs: tuple, width: int):
            return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(n, width)

        return FrameArrays(
            episode_id=np.array(ep, np.int64),
            frame_number=np.array(fn, np.int64),
            observation=f32(obs, width),
            action=f32(act, action_sizes.pop()),
            fighter_position=f32(pos, 2),
            fighter_velocity=f32(vel, 2),
            fighter_health=np.array(health, np.float64),
            reward_delta=np.array(rd, np.float64),
            cumulative_reward=np.array(cr, np.float64),
            observation_kind=kind,
        )

    def list_frames(self, episode_id: int) -> list[dict]:
        """Frames of one episode as dicts (the API's JSON shape), by frame number."""
        rows = self._conn.execute(q.LIST_FRAMES, (_id("episode_id", episode_id), -1, 0)).fetchall()
        return [q.frame_dict(r) for r in rows]


_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
"""PRAGMA synchronous values and their names."""


def _insert_frame_rows(conn: sqlite3.Connection, rows: list[tuple]) -> int:
    """Insert frame rows inside the caller's transaction; how many were new."""
    return sum(conn.executemany(sql, params).rowcount for sql, params in q.frame_statements(rows))


def _check_int(name: str, v: object, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")


def _id(name: str, v: object) -> int:
    _check_int(name, v, 0)
    return int(v)


def _check_number(name: str, v: object, finite: bool = True) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if finite and not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if not finite and math.isinf(v):
        raise ValueError(f"{name} must not be infinite (NaN is stored as NULL), got {v!r}")


def _check_str(name: str, v: object) -> None:
    if not isinstance(v, str) or not v:
        raise ValueError(f"{name} must be a non-empty string, got {v!r}")


def _json(name: str, v: object) -> str:
    try:
        return orjson.dumps(v).decode()
    except TypeError as e:
        raise ValueError(f"{name} must be JSON-serialisable: {e}") from e


__all__ = ["Database", "FrameArrays", "connect", "SCHEMA_VERSION", "StorageError"]
