"""The WebSocket frame stream: acks after commit, pipelining, retries, errors, auth, many clients."""

import asyncio

import pytest
from wsproto.events import BytesMessage

from ingest import BackgroundServer, Limits, ServerConfig
from ingest.client import HttpClient, WsClient, WsRejected
from storage import Database
from storage.records import OBSERVATION_SIZE

ORIGIN = "http://localhost:5173"


def frame(n: int) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [n / 4, -n / 4],
        "fighter_health": 100.0,
        "fighter_velocity": [0.5, 0.5],
        "enemies_state": [[1.0, 2.0, 0.5, 0.5, 80.0]],
        "action_vector": [float(n % 10 == i) for i in range(10)],
        "reward_delta": 1.0,
        "cumulative_reward": float(n),
        "observation_vector": [(n + i) / 16 for i in range(OBSERVATION_SIZE)],
    }


def batch(seq: int, first: int, count: int) -> dict:
    return {"seq": seq, "frames": [frame(n) for n in range(first, first + count)]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("stream") / "arena.db"
    limits = Limits(
        max_body_bytes=64 * 1024,
        max_frames_per_batch=40,
        max_inflight_batches=4,
        ws_ping_interval_s=0.3,
        ws_idle_timeout_s=0.9,
        ws_auth_timeout_s=0.5,
    )
    config = ServerConfig(db_path=str(db), port=0, token="tok", cors_origins=[ORIGIN], limits=limits)
    with BackgroundServer(config) as s:
        yield s


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def new_episode(port: int, token: str = "tok") -> int:
    http = await HttpClient.connect("127.0.0.1", port)
    auth = {"authorization": f"Bearer {token}"}
    fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "s.glb"}, headers=auth)).json()
    episode = (await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"]}, headers=auth)).json()
    await http.close()
    return episode["id"]


async def stream(port: int, episode_id: int, token: str | None = "tok", **kw) -> WsClient:
    query = f"?token={token}" if token else ""
    return await WsClient.connect("127.0.0.1", port, f"/api/episodes/{episode_id}/stream{query}", **kw)


def stored_frames(server, episode_id: int) -> list[int]:
    with Database.open(server.config.db_path) as db:
        return [f["frame_number"] for f in db.list_frames(episode_id)]


def test_batches_are_acked_in_order_after_commit(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        for seq in range(6):  # pipelined: more than the in-flight limit, without waiting
            await ws.send_json(batch(seq, seq * 10, 10))
        acks = [await ws.receive_json() for _ in range(6)]
        await ws.close()
        return eid, acks

    eid, acks = run(go())
    assert [a["ack"] for a in acks] == list(range(6))
    assert all(a["stored"] == 10 and a["duplicates"] == 0 for a in acks)
    assert stored_frames(server, eid) == list(range(60))


def test_resent_batches_never_duplicate(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        await ws.send_json(batch(0, 0, 20))
        first = await ws.receive_json()
        await ws.close()
        ws = await stream(server.port, eid)  # reconnect, resend, continue
        await ws.send_json(batch(0, 0, 20))
        await ws.send_json(batch(1, 10, 20))
        again, overlap = await ws.receive_json(), await ws.receive_json()
        await ws.close()
        return eid, first, again, overlap

    eid, first, again, overlap = run(go())
    assert first == {"ack": 0, "stored": 20, "duplicates": 0}
    assert again == {"ack": 0, "stored": 0, "duplicates": 20}
    assert overlap == {"ack": 1, "stored": 10, "duplicates": 10}
    assert stored_frames(server, eid) == list(range(30))


def test_bad_messages_get_errors_and_the_stream_goes_on(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        replies = []
        await ws.send_text("{not json")
        replies.append(await ws.receive_json())
        bad = batch(1, 0, 2)
        bad["frames"][1]["observation_vector"] = [0.0] * 29
        await ws.send_json(bad)
        replies.append(await ws.receive_json())
        await ws.send_json(batch(2, 0, 41))  # over max_frames_per_batch
        replies.append(await ws.receive_json())
        await ws.send_text('{"seq": 3, "frames": [{"frame_number": NaN}]}')
        replies.append(await ws.receive_json())
        ws.writer.write(ws.ws.send(BytesMessage(data=b"\x00\x01")))
        replies.append(await ws.receive_json())
        await ws.send_json(batch(4, 0, 3))
        replies.append(await ws.receive_json())
        await ws.close()
        return eid, replies

    eid, replies = run(go())
    assert replies[0]["status"] == 400 and replies[0]["seq"] is None and "malformed JSON" in replies[0]["error"]
    assert (
        replies[1]["status"] == 422 and replies[1]["seq"] == 1 and "frames[1].observation_vector" in replies[1]["error"]
    )
    assert replies[2]["status"] == 413 and replies[2]["seq"] == 2
    assert replies[3]["status"] == 400 and "NaN" in replies[3]["error"]
    assert replies[4]["status"] == 400 and "text" in replies[4]["error"]
    assert replies[5] == {"ack": 4, "stored": 3, "duplicates": 0}
    assert stored_frames(server, eid) == [0, 1, 2]


def test_oversized_message_closes_with_1009(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        await ws.send_text('{"seq": 0, "frames": [' + " " * (70 * 1024) + "]}")
        reply = await ws.receive()
        return reply, ws.close_code

    reply, code = run(go())
    assert reply is None and code == 1009


def test_handshake_refusals(server):
    async def refused(path: str, origin: str | None = None) -> int:
        with pytest.raises(WsRejected) as info:
            await WsClient.connect("127.0.0.1", server.port, path, origin=origin)
        return info.value.status

    async def go():
        eid = await new_episode(server.port)
        statuses = {
            "unknown episode": await refused("/api/episodes/999999/stream?token=tok"),
            "wrong token": await refused(f"/api/episodes/{eid}/stream?token=nope"),
            "other origin": await refused(f"/api/episodes/{eid}/stream?token=tok", origin="http://evil.example"),
            "not a stream": await refused("/api/fighters?token=tok"),
            "unknown query": await refused(f"/api/episodes/{eid}/stream?tokn=tok"),
        }
        http = await HttpClient.connect("127.0.0.1", server.port)
        await http.request(
            "PATCH",
            f"/api/episodes/{eid}",
            {"total_reward": 0, "duration_frames": 0, "is_victory": False},
            headers={"authorization": "Bearer tok"},
        )
        statuses["completed episode"] = await refused(f"/api/episodes/{eid}/stream?token=tok")
        ok = await stream(server.port, await new_episode(server.port), origin=ORIGIN)
        await ok.close()
        return statuses

    assert run(go()) == {
        "unknown episode": 404,
        "wrong token": 401,
        "other origin": 403,
        "not a stream": 404,
        "unknown query": 400,
        "completed episode": 409,
    }


def test_token_in_first_message(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid, token=None)
        await ws.send_json({"token": "tok"})
        await ws.send_json(batch(0, 0, 2))
        ack = await ws.receive_json()
        await ws.close()
        bad = await stream(server.port, eid, token=None)
        await bad.send_json({"token": "nope"})
        refusal, after = await bad.receive_json(), await bad.receive()
        silent = await stream(server.port, eid, token=None)  # says nothing: closed after the auth timeout
        nothing, end = await silent.receive_json(timeout=5), await silent.receive(timeout=5)
        return ack, refusal, after, bad.close_code, nothing, (end, silent.close_code)

    ack, refusal, after, code, nothing, silent_code = run(go())
    assert ack == {"ack": 0, "stored": 2, "duplicates": 0}
    assert refusal["status"] == 401 and after is None and code == 1008
    assert nothing["status"] == 401 and silent_code == (None, 1008)


def test_completing_mid_stream_refuses_later_batches(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        await ws.send_json(batch(0, 0, 5))
        first = await ws.receive_json()
        http = await HttpClient.connect("127.0.0.1", server.port)
        await http.request(
            "PATCH",
            f"/api/episodes/{eid}",
            {"total_reward": 1, "duration_frames": 5, "is_victory": True},
            headers={"authorization": "Bearer tok"},
        )
        await ws.send_json(batch(1, 5, 5))
        late = await ws.receive_json()
        await ws.close()
        return eid, first, late

    eid, first, late = run(go())
    assert first["ack"] == 0
    assert late["seq"] == 1 and late["status"] == 409 and "completed" in late["error"]
    assert stored_frames(server, eid) == list(range(5))


def test_idle_stream_is_pinged_then_closed(server):
    async def go():
        eid = await new_episode(server.port)
        ws = await stream(server.port, eid)
        # Read raw events without answering pings: WsClient answers them, so stop reading
        # and let the server's idle timeout (0.9 s) close the connection.
        await asyncio.sleep(1.6)
        return await ws.receive(timeout=5), ws.close_code

    reply, code = run(go())
    assert reply is None and code == 1000  # idle; 1001 is only for a server shutting down


def test_many_concurrent_games(server):
    games, batches, size = 24, 6, 25

    async def game(eid: int) -> int:
        ws = await stream(server.port, eid)
        for seq in range(batches):
            await ws.send_json(batch(seq, seq * size, size))
        acked = 0
        for _ in range(batches):
            msg = await ws.receive_json()
            acked += msg["stored"] + msg["duplicates"]
        await ws.close()
        return acked

    async def go():
        eids = [await new_episode(server.port) for _ in range(games)]
        acked = await asyncio.gather(*(game(e) for e in eids))
        return eids, acked

    eids, acked = run(go())
    assert acked == [batches * size] * games
    with Database.open(server.config.db_path) as db:
        data = db.read_frames(episode_ids=eids)
    assert len(data) == games * batches * size
    for eid in eids[:3]:
        assert stored_frames(server, eid) == list(range(batches * size))
    assert server.server.store.commits < games * batches  # batches shared transactions
