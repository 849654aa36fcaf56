"""Episodes say which observation their frames carry (basic, the game's 30 numbers, or full, 48),
in the database, through the REST API and the WebSocket stream, and for cloning."""

import sqlite3

import numpy as np
import pytest
from test_storage import frame

from storage import Database
from storage.errors import FrameKindError
from storage.schema import SCHEMA_V1, _statements


def full_frame(n: int) -> dict:
    f = frame(n)
    f["observation_vector"] = [n + i / 64 for i in range(48)]
    return f


def test_an_episode_records_one_observation_kind(tmp_path):
    with Database.open(tmp_path / "arena.db") as db:
        fighter = db.register_fighter("f.glb", {})
        basic, full = db.create_episode(fighter), db.create_episode(fighter, observation="full")
        assert db.get_episode(basic)["observation"] == "basic" and db.get_episode(full)["observation"] == "full"
        assert db.add_frames(full, [full_frame(n) for n in range(3)]) == (3, 0)
        assert db.add_frames(basic, [frame(n) for n in range(2)]) == (2, 0)
        with pytest.raises(FrameKindError, match="records the full observation \\(48 numbers"):
            db.add_frames(full, [full_frame(3), frame(4)])
        with pytest.raises(FrameKindError, match="basic observation \\(30"):
            db.add_frames(basic, [full_frame(5)])
        with pytest.raises(ValueError, match="39 numbers; an observation has 30 \\(basic\\) or 48 \\(full\\)"):
            db.add_frames(basic, [{**frame(6), "observation_vector": [0.0] * 39}])
        with pytest.raises(ValueError, match="observation must be one of basic, full"):
            db.create_episode(fighter, observation="wide")
        assert len(db.list_frames(full)) == 3  # the refused batch left nothing behind
        read = db.read_frames(fighter_id=fighter, observation="full")
        assert read.observation.shape == (3, 48) and read.observation_kind == "full"
        np.testing.assert_allclose(read.observation[1], np.float32(full_frame(1)["observation_vector"]))
        assert db.read_frames(fighter_id=fighter, observation="basic").observation.shape == (2, 30)
        with pytest.raises(ValueError, match="both the basic and the full observation"):
            db.read_frames(fighter_id=fighter)


def test_a_version_1_database_migrates_keeping_its_frames(tmp_path):
    path = tmp_path / "old-with-data.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(SCHEMA_V1):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO fighters (glb_filename) VALUES ('a.glb')")
    conn.execute("INSERT INTO episodes (fighter_id, episode_number) VALUES (1, 1)")
    import msgspec

    from storage.records import Frame, frame_rows, settle_enemies

    frames = msgspec.convert([frame(0), frame(1)], list[Frame])
    settle_enemies(frames)
    conn.executemany(
        "INSERT INTO fight_frames (episode_id, frame_number, fighter_position, fighter_health, fighter_velocity, "
        "enemies_state, action_vector, reward_delta, cumulative_reward, observation_vector) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        frame_rows(1, frames),
    )
    conn.close()
    with Database.open(path) as db:
        assert db.get_episode(1)["observation"] == "basic"
        assert db.read_frames(fighter_id=1).observation.shape == (2, 30)
        full = db.create_episode(1, observation="full")
        assert db.add_frames(full, [full_frame(0)]) == (1, 0)  # the rebuilt table takes 48 numbers
        with pytest.raises(sqlite3.IntegrityError):  # and its CHECK still refuses other lengths
            db._conn.execute(
                "INSERT INTO fight_frames (episode_id, frame_number, fighter_position, fighter_health, "
                "fighter_velocity, enemies_state, action_vector, reward_delta, cumulative_reward, "
                "observation_vector) VALUES (?, 9, x'0000000000000000', 1, x'0000000000000000', '[]', "
                "x'00000000', 0, 0, zeroblob(100))",
                (full,),
            )


def test_the_server_opens_full_observation_episodes_and_refuses_the_other_length(tmp_path):
    import asyncio

    from ingest import BackgroundServer, ServerConfig
    from ingest.client import HttpClient, WsClient

    async def go(port):
        http = await HttpClient.connect("127.0.0.1", port)
        fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "f.glb"})).json()
        made = await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"], "observation": "full"})
        wrong = await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"], "observation": "wide"})
        episode = made.json()
        ok = await http.request("POST", "/api/fight-frames", {"episode_id": episode["id"], "frames": [full_frame(0)]})
        refused = await http.request("POST", "/api/fight-frames", {"episode_id": episode["id"], "frames": [frame(1)]})
        ws = await WsClient.connect("127.0.0.1", port, f"/api/episodes/{episode['id']}/stream")
        await ws.send_json({"seq": 0, "frames": [full_frame(2), full_frame(3)]})
        acked = await ws.receive_json()
        await ws.send_json({"seq": 1, "frames": [frame(4)]})
        stream_refused = await ws.receive_json()
        await ws.close()
        read = await http.request("GET", f"/api/episodes/{episode['id']}")
        await http.close()
        return made, wrong, ok, refused, acked, stream_refused, read.json()

    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "arena.db"), port=0)) as server:
        made, wrong, ok, refused, acked, stream_refused, episode = asyncio.run(asyncio.wait_for(go(server.port), 30))
    assert made.status == 201 and made.json()["observation"] == "full"
    assert wrong.status == 422 and "observation" in wrong.json()["error"]
    assert ok.status == 201 and ok.json()["stored"] == 1
    assert refused.status == 422 and "records the full observation (48 numbers" in refused.json()["error"]
    assert acked == {"ack": 0, "stored": 2, "duplicates": 0}
    assert stream_refused["seq"] == 1 and stream_refused["status"] == 422, stream_refused
    assert episode["observation"] == "full" and episode["frame_count"] == 3
