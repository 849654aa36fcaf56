"""The storage package: schema and migrations, and the synchronous API the trainer uses."""

import math
import multiprocessing
import sqlite3

import msgspec
import numpy as np
import orjson
import pytest

from storage import (
    SCHEMA_VERSION,
    ConflictError,
    Database,
    NotFoundError,
    SchemaError,
)
from storage.records import OBSERVATION_SIZE, Frame, frame_rows, settle_enemies


def frame(n: int, action_size: int = 10) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [0.5 * n, -1.25],
        "fighter_health": 100.0 - n,
        "fighter_velocity": [0.25, 0.0],
        "enemies_state": [{"id": 2, "position": [1.0, 2.0], "health": 50.0}],
        "action_vector": [1.0 if i == n % action_size else 0.0 for i in range(action_size)],
        "reward_delta": 0.5,
        "cumulative_reward": 0.5 * n,
        "observation_vector": [n + i / 64 for i in range(OBSERVATION_SIZE)],
    }


@pytest.fixture
def db(tmp_path):
    with Database.open(tmp_path / "sub" / "arena.db") as database:
        yield database


def test_open_creates_folder_schema_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "a" / "b" / "arena.db"
    with Database.open(path) as db:
        assert path.exists()
        assert db.schema_version == SCHEMA_VERSION
        settings = db.settings()
        assert settings["journal_mode"] == "wal"
        assert settings["foreign_keys"] is True
        assert settings["busy_timeout_ms"] >= 5000
        assert settings["synchronous"] == "FULL"
    with Database.open(path) as db:  # reopening migrates nothing and keeps the version
        assert db.schema_version == SCHEMA_VERSION


def test_trainer_api_round_trip(db):
    fid = db.register_fighter("fighter_a.glb", {"speed": 1.5, "name": "A"}, model_version=2)
    assert db.get_fighter(fid)["metadata"] == {"speed": 1.5, "name": "A"}
    assert db.get_fighter(fid)["model_version"] == 2
    m1 = db.add_training_metrics(fid, "run-1", 1, 10.0, 0.25, 0.5, 1.2)
    m2 = db.add_training_metrics(fid, "run-1", 2, 12.0, 0.5, float("nan"), np.float32(1.1))
    assert m2 > m1
    assert db.best_checkpoint(fid) is None
    c1 = db.add_checkpoint(fid, 1, 100, 0.6, 10.0, 500, "models/a_v1.pt", "aggression")
    c2 = db.add_checkpoint(fid, 2, 200, 0.8, 5.0, 1000, "models/a_v2.pt", "aggression")
    c3 = db.add_checkpoint(fid, 3, 300, 0.8, 7.0, 1500, "models/a_v3.pt", "survival")
    best = db.best_checkpoint(fid)
    assert best["id"] == c3 and best["weights_path"] == "models/a_v3.pt"
    assert [c["id"] for c in db.list_checkpoints(fid)] == [c1, c2, c3]
    stats = db.fighter_stats(fid)
    assert stats["checkpoints"] == 3
    latest = stats["latest_training_metrics"]
    assert latest["iteration_number"] == 2 and latest["loss"] is None  # NaN stored as NULL
    assert math.isclose(latest["policy_entropy"], 1.1, rel_tol=1e-6)


def test_trainer_api_rejects_bad_values_with_the_argument_name(db):
    fid = db.register_fighter("a.glb", {})
    with pytest.raises(ValueError, match="glb_filename"):
        db.register_fighter("", {})
    with pytest.raises(ValueError, match="metadata"):
        db.register_fighter("a.glb", {"f": object()})
    with pytest.raises(ValueError, match="win_rate"):
        db.add_checkpoint(fid, 1, 1, float("nan"), 0.0, 1, "w.pt", "aggression")
    with pytest.raises(ValueError, match="iteration_number"):
        db.add_training_metrics(fid, "run", -1, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="loss"):
        db.add_training_metrics(fid, "run", 1, 0.0, 0.0, float("inf"), 0.0)
    with pytest.raises(NotFoundError, match="fighter 999"):
        db.add_checkpoint(999, 1, 1, 0.5, 0.0, 1, "w.pt", "aggression")


def test_episode_frames_dedupe_validation_and_completion(db):
    fid = db.register_fighter("a.glb", {})
    eid = db.create_episode(fid, [7, 8])
    assert db.get_episode(eid)["episode_number"] == 1
    assert db.create_episode(fid) == eid + 1  # numbering continues per fighter
    assert db.add_frames(eid, [frame(0), frame(1)]) == (2, 0)
    assert db.add_frames(eid, [frame(1), frame(2)]) == (1, 1)  # a retry never duplicates
    with pytest.raises(ValueError, match=r"observation_vector"):
        db.add_frames(eid, [{**frame(3), "observation_vector": [0.0] * 29}])
    with pytest.raises(ValueError, match=r"fighter_health"):
        db.add_frames(eid, [{**frame(3), "fighter_health": float("nan")}])
    with pytest.raises(NotFoundError):
        db.add_frames(12345, [frame(0)])
    stored = db.list_frames(eid)
    assert [f["frame_number"] for f in stored] == [0, 1, 2]
    assert stored[1]["observation_vector"] == pytest.approx(frame(1)["observation_vector"], rel=1e-6)
    assert stored[1]["enemies_state"] == frame(1)["enemies_state"]
    done = db.complete_episode(eid, 12.5, 3, True, rank=1)
    assert done["status"] == "completed" and done["is_victory"] is True
    with pytest.raises(ConflictError):
        db.add_frames(eid, [frame(9)])
    with pytest.raises(ConflictError):
        db.complete_episode(eid, 1.0, 3, False)


def test_read_frames_bulk_arrays_and_filters(db):
    fa, fb = db.register_fighter("a.glb", {}), db.register_fighter("b.glb", {})
    won, lost, other = db.create_episode(fa), db.create_episode(fa), db.create_episode(fb)
    db.add_frames(won, [frame(n) for n in range(5)])
    db.add_frames(lost, [frame(n) for n in range(3)])
    db.add_frames(other, [frame(n, action_size=4) for n in range(2)])
    db.complete_episode(won, 10.0, 5, True)
    db.complete_episode(lost, -1.0, 3, False)

    data = db.read_frames(fighter_id=fa)
    assert len(data) == 8 and data.observation.shape == (8, OBSERVATION_SIZE)
    assert data.observation.dtype == np.float32 and data.action.shape == (8, 10)
    assert list(data.episode_id) == [won] * 5 + [lost] * 3
    np.testing.assert_allclose(data.observation[2], frame(2)["observation_vector"], rtol=1e-6)
    np.testing.assert_array_equal(data.action[3], frame(3)["action_vector"])
    assert len(db.read_frames(fighter_id=fa, is_victory=True)) == 5
    with pytest.raises(ValueError, match="action_vector lengths"):
        db.read_frames(episode_ids=[lost, other])
    assert len(db.read_frames(fighter_id=fb)) == 2
    assert len(db.read_frames(fighter_id=fa, since="2999-01-01")) == 0
    with pytest.raises(NotFoundError, match="fighter 42"):
        db.read_frames(fighter_id=42)


def test_add_frame_rows_bulk_loads_prebuilt_rows_in_one_transaction(db):
    fid = db.register_fighter("a.glb", {})
    e1, e2 = db.create_episode(fid), db.create_episode(fid)
    frames = msgspec.convert([frame(n) for n in range(700)], list[Frame])  # 512 + 128 + ... rows
    settle_enemies(frames)
    assert db.add_frame_rows(frame_rows(e1, frames) + frame_rows(e2, frames[:3])) == 703
    assert db.add_frame_rows(frame_rows(e2, frames[:5])) == 2  # stored frames are skipped
    assert db.list_frames(e1)[699]["observation_vector"] == pytest.approx(frame(699)["observation_vector"], rel=1e-6)
    assert [f["frame_number"] for f in db.list_frames(e2)] == [0, 1, 2, 3, 4]
    with pytest.raises(sqlite3.IntegrityError):  # the last row's episode does not exist
        db.add_frame_rows(frame_rows(e2, frames[5:600]) + frame_rows(12345, frames[:1]))
    assert len(db.list_frames(e2)) == 5  # rolled back as a whole
    assert db.add_frame_rows([]) == 0


def test_list_training_metrics_oldest_first(db):
    fa, fb = db.register_fighter("a.glb", {}), db.register_fighter("b.glb", {})
    db.add_training_metrics(fa, "run", 1, 1.0, 0.5, float("nan"), 0.9)
    db.add_training_metrics(fb, "run", 1, 2.0, 0.5, 0.1, 0.9)
    db.add_training_metrics(fa, "run", 2, 3.0, 0.5, 0.1, 0.9)
    rows = db.list_training_metrics(fa)
    assert [(r["iteration_number"], r["avg_reward_last_100"]) for r in rows] == [(1, 1.0), (2, 3.0)]
    assert rows[0]["loss"] is None and rows[0]["fighter_id"] == fa
    assert db.list_training_metrics(12345) == []


def test_settings_report_the_synchronous_mode_asked_for(tmp_path):
    with Database.open(tmp_path / "arena.db", synchronous="normal") as db:
        assert db.settings()["synchronous"] == "NORMAL"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "arena.db"
    Database.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer than this code"):
        Database.open(path)


def test_seed_database_is_migrated_with_its_data(tmp_path):
    """A database the seed backend wrote (JSON text vectors, no version) converts in place."""
    path = tmp_path / "seed.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE fighters (id INTEGER PRIMARY KEY, glb_filename VARCHAR, model_version INTEGER,
            created_at DATETIME, metadata_json JSON);
        CREATE TABLE episodes (id INTEGER PRIMARY KEY, fighter_id INTEGER, episode_number INTEGER,
            opponent_ids JSON, total_reward FLOAT, duration_frames INTEGER, is_victory BOOLEAN,
            rank INTEGER, started_at DATETIME, ended_at DATETIME);
        CREATE TABLE fight_frames (id INTEGER PRIMARY KEY, episode_id INTEGER, frame_number INTEGER,
            fighter_position JSON, fighter_health FLOAT, fighter_velocity JSON, enemies_state JSON,
            action_vector JSON, reward_delta FLOAT, cumulative_reward FLOAT, observation_vector JSON);
        CREATE TABLE model_checkpoints (id INTEGER PRIMARY KEY, fighter_id INTEGER,
            model_version INTEGER, training_iteration INTEGER, win_rate FLOAT, avg_reward FLOAT,
            total_episodes_trained INTEGER, weights_path VARCHAR, training_mode VARCHAR, created_at DATETIME);
        CREATE TABLE training_metrics (id INTEGER PRIMARY KEY, fighter_id INTEGER,
            training_session_id VARCHAR, iteration_number INTEGER, avg_reward_last_100 FLOAT,
            win_rate_last_100 FLOAT, loss FLOAT, policy_entropy FLOAT, recorded_at DATETIME);
        INSERT INTO fighters VALUES (3, 'seed.glb', 1, '2025-10-31 10:00:00', '{"size": 2}');
        INSERT INTO episodes VALUES (5, 3, 1, '[4]', 9.5, 2, 1, 1, '2025-10-31 10:00:01', '2025-10-31 10:01:00');
        INSERT INTO model_checkpoints VALUES (1, 3, 1, 10, 0.5, 9.5, 1, 'm.pth', 'survival', '2025-10-31');
        INSERT INTO training_metrics VALUES (1, 3, 's', 1, 1.0, 0.5, 0.1, 0.9, '2025-10-31');
    """)
    f = frame(0)
    for n in range(2):
        conn.execute(
            "INSERT INTO fight_frames VALUES (?, 5, ?, ?, 90.0, ?, ?, ?, 0.5, 1.0, ?)",
            (
                10 + n,
                n,
                orjson.dumps(f["fighter_position"]).decode(),
                orjson.dumps(f["fighter_velocity"]).decode(),
                orjson.dumps(f["enemies_state"]).decode(),
                orjson.dumps(f["action_vector"]).decode(),
                orjson.dumps(f["observation_vector"]).decode(),
            ),
        )
    conn.commit()
    conn.close()

    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert db.get_fighter(3)["metadata"] == {"size": 2}
        assert db.get_episode(5)["status"] == "completed"
        assert db.best_checkpoint(3)["weights_path"] == "m.pth"
        frames = db.list_frames(5)
        assert [x["id"] for x in frames] == [10, 11]
        assert frames[0]["observation_vector"] == pytest.approx(f["observation_vector"], rel=1e-6)
        assert db.read_frames(fighter_id=3).observation.shape == (2, OBSERVATION_SIZE)


def test_partial_arena_tables_are_left_alone(tmp_path):
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE fighters (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="left untouched"):
        Database.open(path)


def _open_and_register(path: str) -> int:
    with Database.open(path) as db:
        return db.register_fighter("race.glb", {})


def test_two_processes_creating_the_same_database_at_once(tmp_path):
    path = str(tmp_path / "race.db")
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        ids = pool.map(_open_and_register, [path] * 3)
    assert sorted(ids) == [1, 2, 3]
    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
