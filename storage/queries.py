"""SQL shared by the synchronous and the asyncio access paths, and row -> dict converters.

Every statement takes user values as ``?`` parameters; none is built from user data.
"""

from __future__ import annotations

from functools import cache
from itertools import chain

import orjson

from .records import FRAME_COLUMNS, unpack_vector

FIGHTER_COLUMNS = "id, glb_filename, model_version, created_at, metadata_json"
EPISODE_COLUMNS = (
    "id, fighter_id, episode_number, opponent_ids, total_reward, duration_frames, "
    "is_victory, rank, started_at, ended_at, observation"
)
CHECKPOINT_COLUMNS = (
    "id, fighter_id, model_version, training_iteration, win_rate, avg_reward, "
    "total_episodes_trained, weights_path, training_mode, created_at"
)
METRIC_COLUMNS = (
    "id, fighter_id, training_session_id, iteration_number, avg_reward_last_100, "
    "win_rate_last_100, loss, policy_entropy, recorded_at"
)

INSERT_FIGHTER = (
    f"INSERT INTO fighters (glb_filename, metadata_json, model_version) VALUES (?, ?, ?) RETURNING {FIGHTER_COLUMNS}"
)
SELECT_FIGHTER = f"SELECT {FIGHTER_COLUMNS} FROM fighters WHERE id = ?"
FIGHTER_EXISTS = "SELECT 1 FROM fighters WHERE id = ?"
LIST_FIGHTERS = f"SELECT {FIGHTER_COLUMNS} FROM fighters ORDER BY id LIMIT ? OFFSET ?"
COUNT_FIGHTERS = "SELECT COUNT(*) FROM fighters"

NEXT_EPISODE_NUMBER = "SELECT COALESCE(MAX(episode_number), 0) + 1 FROM episodes WHERE fighter_id = ?"
INSERT_EPISODE = (
    "INSERT INTO episodes (fighter_id, episode_number, opponent_ids, observation) VALUES (?, ?, ?, ?) "
    f"RETURNING {EPISODE_COLUMNS}"
)
SELECT_EPISODE = f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE id = ?"
EPISODE_ENDED_AT = "SELECT ended_at, observation FROM episodes WHERE id = ?"
EPISODES_ENDED_AT = "SELECT id, ended_at, observation FROM episodes WHERE id IN (SELECT value FROM json_each(?))"
COMPLETE_EPISODE = (
    "UPDATE episodes SET total_reward = ?, duration_frames = ?, is_victory = ?, rank = ?, "
    f"ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND ended_at IS NULL "
    f"RETURNING {EPISODE_COLUMNS}"
)
LIST_EPISODES = f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE fighter_id = ? ORDER BY id LIMIT ? OFFSET ?"
COUNT_EPISODES = "SELECT COUNT(*) FROM episodes WHERE fighter_id = ?"
COUNT_EPISODE_FRAMES = "SELECT COUNT(*) FROM fight_frames WHERE episode_id = ?"

FRAMES_PER_STATEMENT = 512
"""Rows per multi-row INSERT (5120 parameters; SQLite allows 32766). Python's sqlite3 takes
the GIL back after every statement step, and waits for it while the event loop is busy:
one statement per row spent more time queueing for the GIL than inserting."""


@cache
def insert_frames_sql(rows: int) -> str:
    """INSERT of ``rows`` frames in one statement; a frame already stored is skipped."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO fight_frames ({FRAME_COLUMNS}) VALUES {values} ON CONFLICT (episode_id, frame_number) DO NOTHING"
    )


def frame_statements(rows: list[tuple]) -> list[tuple[str, list[tuple]]]:
    """(sql, [parameters, ...]) pairs, for executemany, that insert ``rows``: 512-row
    statements, then the remainder as 256-, 128-, ..., 1-row ones. Eleven distinct
    statements in all, so every one stays in the connection's statement cache."""
    out = []
    n = FRAMES_PER_STATEMENT
    full = len(rows) - len(rows) % n
    if full:
        out.append((insert_frames_sql(n), [tuple(chain.from_iterable(rows[i : i + n])) for i in range(0, full, n)]))
    i = full
    size = n // 2
    while i < len(rows):
        if len(rows) - i >= size:
            out.append((insert_frames_sql(size), [tuple(chain.from_iterable(rows[i : i + size]))]))
            i += size
        size //= 2
    return out


LIST_FRAMES = (
    f"SELECT id, {FRAME_COLUMNS} FROM fight_frames WHERE episode_id = ? ORDER BY frame_number LIMIT ? OFFSET ?"
)

INSERT_CHECKPOINT = (
    "INSERT INTO model_checkpoints (fighter_id, model_version, training_iteration, win_rate, "
    "avg_reward, total_episodes_trained, weights_path, training_mode) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
BEST_CHECKPOINT = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM model_checkpoints WHERE fighter_id = ? "
    "ORDER BY win_rate DESC, avg_reward DESC, id DESC LIMIT 1"
)
LIST_CHECKPOINTS = (
    f"SELECT {CHECKPOINT_COLUMNS} FROM model_checkpoints WHERE fighter_id = ? ORDER BY id LIMIT ? OFFSET ?"
)
COUNT_CHECKPOINTS = "SELECT COUNT(*) FROM model_checkpoints WHERE fighter_id = ?"

_C_CHECKPOINT_COLUMNS = ", ".join(f"c.{col}" for col in CHECKPOINT_COLUMNS.split(", "))
SERVING_BEST_CHECKPOINT = (
    f"SELECT f.id, {_C_CHECKPOINT_COLUMNS} FROM fighters f LEFT JOIN model_checkpoints c ON c.id = ("
    "SELECT id FROM model_checkpoints WHERE fighter_id = f.id "
    "ORDER BY win_rate DESC, avg_reward DESC, id DESC LIMIT 1) WHERE f.id = ?"
)
"""One round trip for /act: no row if the fighter is unknown, NULL checkpoint columns if it
has no checkpoint, else its best (the order of BEST_CHECKPOINT)."""
SERVING_CHECKPOINT_VERSION = (
    f"SELECT f.id, {_C_CHECKPOINT_COLUMNS} FROM fighters f LEFT JOIN model_checkpoints c ON c.id = ("
    "SELECT id FROM model_checkpoints WHERE fighter_id = f.id AND model_version = ? "
    "ORDER BY id DESC LIMIT 1) WHERE f.id = ?"
)
"""As SERVING_BEST_CHECKPOINT for one model_version (the newest row if several runs saved it)."""

INSERT_METRICS = (
    "INSERT INTO training_metrics (fighter_id, training_session_id, iteration_number, "
    "avg_reward_last_100, win_rate_last_100, loss, policy_entropy) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
LATEST_METRICS = f"SELECT {METRIC_COLUMNS} FROM training_metrics WHERE fighter_id = ? ORDER BY id DESC LIMIT 1"
LIST_METRICS = f"SELECT {METRIC_COLUMNS} FROM training_metrics WHERE fighter_id = ? ORDER BY id"

FIGHTER_EPISODE_STATS = """
SELECT COUNT(*), COUNT(ended_at), COALESCE(SUM(is_victory = 1), 0), AVG(total_reward),
       MAX(total_reward), AVG(duration_frames), AVG(rank)
FROM episodes WHERE fighter_id = ?
"""
FIGHTER_FRAME_COUNT = (
    "SELECT COUNT(*) FROM fight_frames WHERE episode_id IN (SELECT id FROM episodes WHERE fighter_id = ?)"
)


def fighter_dict(r: tuple) -> dict:
    return {
        "id": r[0],
        "glb_filename": r[1],
        "model_version": r[2],
        "created_at": r[3],
        "metadata": orjson.loads(r[4]),
    }


def episode_dict(r: tuple) -> dict:
    return {
        "id": r[0],
        "fighter_id": r[1],
        "episode_number": r[2],
        "opponent_ids": orjson.loads(r[3]),
        "total_reward": None if r[4] is None else float(r[4]),
        "duration_frames": r[5],
        "is_victory": None if r[6] is None else bool(r[6]),
        "rank": r[7],
        "started_at": r[8],
        "ended_at": r[9],
        "status": "open" if r[9] is None else "completed",
        "observation": r[10],
    }


def checkpoint_dict(r: tuple) -> dict:
    return {
        "id": r[0],
        "fighter_id": r[1],
        "model_version": r[2],
        "training_iteration": r[3],
        "win_rate": float(r[4]),
        "avg_reward": float(r[5]),
        "total_episodes_trained": r[6],
        "weights_path": r[7],
        "training_mode": r[8],
        "created_at": r[9],
    }


def metrics_dict(r: tuple) -> dict:
    return {
        "id": r[0],
        "fighter_id": r[1],
        "training_session_id": r[2],
        "iteration_number": r[3],
        "avg_reward_last_100": r[4],
        "win_rate_last_100": r[5],
        "loss": r[6],
        "policy_entropy": r[7],
        "recorded_at": r[8],
    }


def frame_dict(r: tuple, raw_json: bool = False) -> dict:
    """A LIST_FRAMES row as the API shows it; ``raw_json`` embeds enemies_state unparsed."""
    return {
        "id": r[0],
        "episode_id": r[1],
        "frame_number": r[2],
        "fighter_position": unpack_vector(r[3]),
        "fighter_health": float(r[4]),
        "fighter_velocity": unpack_vector(r[5]),
        "enemies_state": orjson.Fragment(r[6]) if raw_json else orjson.loads(r[6]),
        "action_vector": unpack_vector(r[7]),
        "reward_delta": float(r[8]),
        "cumulative_reward": float(r[9]),
        "observation_vector": unpack_vector(r[10]),
    }


def stats_dict(
    fighter_id: int, ep: tuple, frames: int, checkpoints: int, best: tuple | None, latest: tuple | None
) -> dict:
    """The /stats answer from FIGHTER_EPISODE_STATS and the counts beside it."""
    episodes, completed, victories, avg_reward, best_reward, avg_duration, avg_rank = ep
    return {
        "fighter_id": fighter_id,
        "episodes": episodes,
        "completed_episodes": completed,
        "victories": victories,
        "win_rate": (victories / completed) if completed else None,
        "avg_reward": avg_reward,
        "best_reward": best_reward,
        "avg_duration_frames": avg_duration,
        "avg_rank": avg_rank,
        "frames": frames,
        "checkpoints": checkpoints,
        "best_checkpoint": checkpoint_dict(best) if best else None,
        "latest_training_metrics": metrics_dict(latest) if latest else None,
    }
