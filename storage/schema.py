"""The SQLite schema, its version and its migrations: the one place that defines tables.

The version lives in ``PRAGMA user_version``. ``migrate`` brings any database to
``SCHEMA_VERSION`` inside one ``BEGIN IMMEDIATE`` transaction, so two processes opening a
fresh file at once do not both migrate.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable

import orjson

from .errors import SchemaError
from .records import FRAME_COLUMNS, OBSERVATION_KINDS, OBSERVATION_SIZES

SCHEMA_VERSION = 2
"""1: the tables of the product description; 2: an episode records the basic or the full observation"""

BASIC_OBSERVATION_BYTES = 120
"""version 1's observation_vector: the basic observation's 30 float32"""

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write transaction; ours last milliseconds."""

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

SCHEMA_V1 = f"""
CREATE TABLE fighters (
    id INTEGER PRIMARY KEY,
    glb_filename TEXT NOT NULL,
    model_version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT ({NOW}),
    metadata_json TEXT NOT NULL DEFAULT '{{}}'
);

CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    fighter_id INTEGER NOT NULL REFERENCES fighters(id) ON DELETE CASCADE,
    episode_number INTEGER NOT NULL,
    opponent_ids TEXT NOT NULL DEFAULT '[]',
    total_reward REAL,
    duration_frames INTEGER,
    is_victory INTEGER,
    rank INTEGER,
    started_at TEXT NOT NULL DEFAULT ({NOW}),
    ended_at TEXT
);
CREATE INDEX episodes_by_fighter ON episodes(fighter_id, id);

-- Vectors are little-endian float32 blobs; enemies_state is JSON text.
-- Writers check inside their write transaction that the episode is still open (ended_at
-- IS NULL); a trigger doing the same cost 20% of the insert time.
CREATE TABLE fight_frames (
    id INTEGER PRIMARY KEY,
    episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    frame_number INTEGER NOT NULL CHECK (frame_number >= 0),
    fighter_position BLOB NOT NULL CHECK (length(fighter_position) = 8),
    fighter_health REAL NOT NULL,
    fighter_velocity BLOB NOT NULL CHECK (length(fighter_velocity) = 8),
    enemies_state TEXT NOT NULL,
    action_vector BLOB NOT NULL CHECK (length(action_vector) % 4 = 0),
    reward_delta REAL NOT NULL,
    cumulative_reward REAL NOT NULL,
    observation_vector BLOB NOT NULL CHECK (length(observation_vector) = {BASIC_OBSERVATION_BYTES}),
    UNIQUE (episode_id, frame_number)
);

CREATE TABLE model_checkpoints (
    id INTEGER PRIMARY KEY,
    fighter_id INTEGER NOT NULL REFERENCES fighters(id) ON DELETE CASCADE,
    model_version INTEGER NOT NULL,
    training_iteration INTEGER NOT NULL,
    win_rate REAL NOT NULL,
    avg_reward REAL NOT NULL,
    total_episodes_trained INTEGER NOT NULL,
    weights_path TEXT NOT NULL,
    training_mode TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT ({NOW})
);
CREATE INDEX checkpoints_by_fighter ON model_checkpoints(fighter_id, id);
CREATE INDEX checkpoints_best ON model_checkpoints(fighter_id, win_rate DESC, avg_reward DESC, id DESC);

-- Metrics may be NaN while a run diverges; SQLite stores NaN as NULL.
CREATE TABLE training_metrics (
    id INTEGER PRIMARY KEY,
    fighter_id INTEGER NOT NULL REFERENCES fighters(id) ON DELETE CASCADE,
    training_session_id TEXT NOT NULL,
    iteration_number INTEGER NOT NULL,
    avg_reward_last_100 REAL,
    win_rate_last_100 REAL,
    loss REAL,
    policy_entropy REAL,
    recorded_at TEXT NOT NULL DEFAULT ({NOW})
);
CREATE INDEX metrics_by_fighter ON training_metrics(fighter_id, training_session_id, iteration_number);
"""

SEED_TABLES = ("fighters", "episodes", "fight_frames", "model_checkpoints", "training_metrics")


def configure(conn: sqlite3.Connection, in_memory: bool = False) -> None:
    """Per-connection settings every connection to an arena database needs."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = _switch_to_wal(conn)
    if mode.lower() != "wal" and not (in_memory and mode.lower() == "memory"):
        raise SchemaError(f"could not switch the database to WAL mode (it reports {mode!r})")


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode and return the mode SQLite reports.

    Switching a fresh file to WAL needs an exclusive lock, and SQLite answers "database is
    locked" at once, without calling the busy handler, when another process is switching the
    same file at that moment. So the switch is retried here for up to ``BUSY_TIMEOUT_MS``.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001  # seconds
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it started at.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"database schema version {version} is newer than this code understands "
                f"({SCHEMA_VERSION}); update the project, or open a copy with matching code"
            )
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return start


def _table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


def _create_or_adopt(conn: sqlite3.Connection) -> None:
    """Version 0 -> 1: create the schema, or convert a database the seed backend wrote."""
    present = _table_names(conn) & set(SEED_TABLES)
    if not present:
        for statement in _statements(SCHEMA_V1):
            conn.execute(statement)
        return
    if present != set(SEED_TABLES):
        raise SchemaError(
            f"database has some arena tables ({sorted(present)}) but not all of "
            f"{list(SEED_TABLES)} and no schema version; it was not written by this project "
            "or by the seed backend, so it is left untouched"
        )
    _adopt_seed(conn)


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (executescript would commit the transaction)."""
    out, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            out.append(joined)
            buf = []
    assert not buf, "schema script ends inside a statement"
    return out


_SEED_REQUIRED = {
    "fighters": ["id", "glb_filename", "model_version", "created_at", "metadata_json"],
    "episodes": [
        "id",
        "fighter_id",
        "episode_number",
        "opponent_ids",
        "total_reward",
        "duration_frames",
        "is_victory",
        "rank",
        "started_at",
        "ended_at",
    ],
    "fight_frames": [
        "id",
        "episode_id",
        "frame_number",
        "fighter_position",
        "fighter_health",
        "fighter_velocity",
        "enemies_state",
        "action_vector",
        "reward_delta",
        "cumulative_reward",
        "observation_vector",
    ],
    "model_checkpoints": [
        "id",
        "fighter_id",
        "model_version",
        "training_iteration",
        "win_rate",
        "avg_reward",
        "total_episodes_trained",
        "weights_path",
        "training_mode",
        "created_at",
    ],
    "training_metrics": [
        "id",
        "fighter_id",
        "training_session_id",
        "iteration_number",
        "avg_reward_last_100",
        "win_rate_last_100",
        "loss",
        "policy_entropy",
        "recorded_at",
    ],
}


def _adopt_seed(conn: sqlite3.Connection) -> None:
    """Convert the seed backend's tables (JSON text vectors) to this schema, keeping ids."""
    for table, needed in _SEED_REQUIRED.items():
        missing = [c for c in needed if c not in _columns(conn, table)]
        if missing:
            raise SchemaError(
                f"table {table!r} lacks columns {missing} of the seed schema; cannot convert this database"
            )
    for table in SEED_TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO seed_{table}")
    for statement in _statements(SCHEMA_V1):
        conn.execute(statement)
    for table in ("fighters", "episodes", "model_checkpoints", "training_metrics"):
        cols = ", ".join(_SEED_REQUIRED[table])
        conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM seed_{table}")
    conn.execute("UPDATE fighters SET metadata_json = '{}' WHERE metadata_json IS NULL")
    conn.execute("UPDATE episodes SET opponent_ids = '[]' WHERE opponent_ids IS NULL")
    src = conn.execute(
        "SELECT id, episode_id, frame_number, fighter_position, fighter_health, "
        "fighter_velocity, enemies_state, action_vector, reward_delta, cumulative_reward, "
        "observation_vector FROM seed_fight_frames ORDER BY id"
    )
    insert = f"INSERT INTO fight_frames (id, {FRAME_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    while rows := src.fetchmany(1000):
        conn.executemany(insert, [_seed_frame_row(r) for r in rows])
    for table in SEED_TABLES:
        conn.execute(f"DROP TABLE seed_{table}")


def _blob(text: str | bytes | None, what: str, frame_id: int) -> bytes:
    values = orjson.loads(text) if text is not None else []
    if not isinstance(values, list):
        raise SchemaError(f"seed frame {frame_id}: {what} is {values!r}, expected a JSON list")
    return struct.pack(f"<{len(values)}f", *values)


def _seed_frame_row(r: tuple) -> tuple:
    fid = r[0]
    enemies = r[6] if r[6] is not None else "[]"
    return (
        fid,
        r[1],
        r[2],
        _blob(r[3], "fighter_position", fid),
        r[4] or 0.0,
        _blob(r[5], "fighter_velocity", fid),
        enemies,
        _blob(r[7], "action_vector", fid),
        r[8] or 0.0,
        r[9] or 0.0,
        _blob(r[10], "observation_vector", fid),
    )


def _observation_kinds(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: episodes.observation (basic, the game's 30 numbers, for every episode so
    far; or full), and fight_frames rebuilt so that its CHECK admits either length (SQLite cannot
    alter a CHECK). Each frame's length must equal its episode's kind: the writers check it."""
    kinds = ", ".join(f"'{k}'" for k in OBSERVATION_KINDS)
    conn.execute(
        f"ALTER TABLE episodes ADD COLUMN observation TEXT NOT NULL DEFAULT 'basic' CHECK (observation IN ({kinds}))"
    )
    lengths = ", ".join(str(4 * n) for n in OBSERVATION_SIZES.values())
    table = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'fight_frames'").fetchone()[0]
    old_check = f"CHECK (length(observation_vector) = {BASIC_OBSERVATION_BYTES})"
    if old_check not in table:
        raise SchemaError(f"fight_frames lacks version 1's check on observation_vector ({old_check}); cannot migrate")
    rebuilt = table.replace("CREATE TABLE fight_frames", "CREATE TABLE fight_frames_v2", 1).replace(
        old_check, f"CHECK (length(observation_vector) IN ({lengths}))"
    )
    conn.execute(rebuilt)
    conn.execute(f"INSERT INTO fight_frames_v2 (id, {FRAME_COLUMNS}) SELECT id, {FRAME_COLUMNS} FROM fight_frames")
    conn.execute("DROP TABLE fight_frames")
    conn.execute("ALTER TABLE fight_frames_v2 RENAME TO fight_frames")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _create_or_adopt, 1: _observation_kinds}
"""from-version -> function applying the next version's changes inside the open transaction."""
