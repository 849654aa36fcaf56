"""The server, a training run and an evaluation writing one database at the same time."""

import asyncio
import multiprocessing
import time
import traceback

from ingest import BackgroundServer, ServerConfig
from ingest.client import HttpClient, WsClient
from storage import Database
from storage.records import OBSERVATION_SIZE

ITERATIONS, EPISODES = 40, 8
"""What the trainer and the evaluator each write; the server streams until both are done."""
PAUSE_S = 0.01
"""Between a worker's writes: far more often than train.py (one row per iteration) writes."""
LIMIT_S = 60.0
"""How long the games stream at most, waiting for the trainer and the evaluator."""


def frame(n: int) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [1.0, 2.0],
        "fighter_health": 75.0,
        "fighter_velocity": [0.0, -1.0],
        "enemies_state": [{"id": 1}],
        "action_vector": [0.0] * 9 + [1.0],
        "reward_delta": 0.1,
        "cumulative_reward": n / 10,
        "observation_vector": [0.5] * OBSERVATION_SIZE,
    }


def trainer(path: str) -> dict:
    """Like train.py: a metrics row per iteration, a checkpoint every few."""
    try:
        with Database.open(path) as db:
            fid = db.register_fighter("trainee.glb", {"run": "concurrency"})
            iterations = checkpoints = 0
            first = time.time()
            while iterations < ITERATIONS:
                db.add_training_metrics(fid, "session-1", iterations, 1.0, 0.5, 0.1, 0.9)
                if iterations % 5 == 0:
                    db.add_checkpoint(
                        fid, iterations, iterations, 0.5, 1.0, iterations, f"w{iterations}.pt", "aggression"
                    )
                    checkpoints += 1
                iterations += 1
                time.sleep(PAUSE_S)
            span = (first, time.time())
            return {"fighter": fid, "metrics": iterations, "checkpoints": checkpoints, "span": span, "error": None}
    except Exception:
        return {"error": traceback.format_exc()}


def evaluator(path: str) -> dict:
    """Like evaluate.py recording its matches: episodes with frames, then completed."""
    try:
        with Database.open(path) as db:
            fid = db.register_fighter("evaluated.glb", {})
            episodes = frames = 0
            first = time.time()
            while episodes < EPISODES:
                eid = db.create_episode(fid, [1])
                for start in range(0, 200, 50):
                    frames += db.add_frames(eid, [frame(n) for n in range(start, start + 50)])[0]
                db.complete_episode(eid, 1.0, 200, episodes % 2 == 0, 1)
                episodes += 1
                time.sleep(PAUSE_S)
            span = (first, time.time())
            return {"fighter": fid, "episodes": episodes, "frames": frames, "span": span, "error": None}
    except Exception:
        return {"error": traceback.format_exc()}


async def game(port: int, fighter_id: int, writing) -> tuple[int, int]:
    """Stream frames while ``writing()`` is true (the other writers are still at work)."""
    http = await HttpClient.connect("127.0.0.1", port)
    eid = (await http.request("POST", "/api/episodes", {"fighter_id": fighter_id})).json()["id"]
    ws = await WsClient.connect("127.0.0.1", port, f"/api/episodes/{eid}/stream")
    seq = acked = 0
    while writing():  # four batches in flight keep the server's writer busy
        while seq - acked // 30 < 4:
            await ws.send_json({"seq": seq, "frames": [frame(n) for n in range(seq * 30, seq * 30 + 30)]})
            seq += 1
        reply = await ws.receive_json()
        assert "ack" in reply, reply
        acked += reply["stored"]
    while acked // 30 < seq:
        acked += (await ws.receive_json())["stored"]
    await ws.close()
    r = await http.request(
        "PATCH", f"/api/episodes/{eid}", {"total_reward": 0, "duration_frames": acked, "is_victory": False}
    )
    assert r.status == 200, r.body
    await http.close()
    return eid, acked


def test_server_trainer_and_evaluator_write_at_once(tmp_path):
    """The server streams at full speed for as long as a trainer and an evaluator write the same
    file; every writer finishes its work, none sees "locked", and nothing is lost."""
    path = str(tmp_path / "shared.db")
    with BackgroundServer(ServerConfig(db_path=path, port=0)) as server:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2) as pool:
            t = pool.apply_async(trainer, (path,))
            e = pool.apply_async(evaluator, (path,))
            limit = time.time() + LIMIT_S

            def writing() -> bool:
                return not (t.ready() and e.ready()) and time.time() < limit

            async def games():
                http = await HttpClient.connect("127.0.0.1", server.port)
                fid = (await http.request("POST", "/api/fighters", {"glb_filename": "game.glb"})).json()["id"]
                await http.close()
                return await asyncio.gather(*(game(server.port, fid, writing) for _ in range(6)))

            started = time.time()
            streamed = asyncio.run(games())
            ended = time.time()
            assert t.ready() and e.ready(), f"the trainer and the evaluator did not finish in {LIMIT_S:.0f} s"
            trained, evaluated = t.get(), e.get()

    assert trained["error"] is None, trained["error"]
    assert evaluated["error"] is None, evaluated["error"]
    assert trained["metrics"] == ITERATIONS and evaluated["episodes"] == EPISODES
    for span in (trained["span"], evaluated["span"]):  # they wrote while the server streamed
        assert started < span[0] and span[1] <= ended, (started, span, ended)
    assert all(acked > 0 for _, acked in streamed)
    with Database.open(path) as db:
        stats = db.fighter_stats(trained["fighter"])
        assert stats["checkpoints"] == trained["checkpoints"]
        assert len(db.list_training_metrics(trained["fighter"])) == trained["metrics"]
        assert len(db.read_frames(fighter_id=evaluated["fighter"])) == evaluated["frames"]
        for eid, acked in streamed:
            assert db.get_episode(eid)["status"] == "completed"
            assert len(db.list_frames(eid)) == acked
