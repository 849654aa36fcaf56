"""WebSocket close codes, RFC 6455 section 7.4.1: 1002 protocol error, 1007 bad payload,
1008 policy (too many refused messages; the token case is in test_ingest_stream.py), 1009
too big (test_ingest_stream.py), 1011 server error; 1001 only at shutdown
(test_ingest_durability.py), idle 1000 (test_ingest_stream.py). A server error met by one
batch answers that batch (500) and the stream goes on."""

import asyncio
import os
import time

import pytest

import ingest.stream
from ingest import BackgroundServer, Limits, ServerConfig
from ingest.client import HttpClient, WsClient

MAX_REFUSALS = 5


def frame(n: int) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [0.0, 1.0],
        "fighter_health": 50.0,
        "fighter_velocity": [0.0, 0.0],
        "enemies_state": [],
        "action_vector": [1.0],
        "reward_delta": 0.0,
        "cumulative_reward": 0.0,
        "observation_vector": [0.5] * 30,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("close") / "arena.db"
    limits = Limits(ws_max_refusals=MAX_REFUSALS, abuse_penalty_s=0.01)  # the tests share one address
    with BackgroundServer(ServerConfig(db_path=str(db), port=0, limits=limits)) as s:
        yield s


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def open_stream(port: int) -> WsClient:
    http = await HttpClient.connect("127.0.0.1", port)
    fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "c.glb"})).json()
    episode = (await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"]})).json()
    await http.close()
    return await WsClient.connect("127.0.0.1", port, f"/api/episodes/{episode['id']}/stream")


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame built by hand (wsproto would refuse to build a bad one)."""
    mask = os.urandom(4)
    return bytes([first_byte, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def close_code_after(port: int, raw: bytes) -> int | None:
    ws = await open_stream(port)
    ws.writer.write(raw)
    while await ws.receive(timeout=5) is not None:
        pass
    return ws.close_code


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"\x81\x01x", 1002),  # a client frame without a mask
        (masked_frame(0xC1, b"x"), 1002),  # a reserved bit (RSV1) no extension negotiated
        (masked_frame(0x83, b"x"), 1002),  # a reserved opcode
        (masked_frame(0x81, b"\xff\xfe"), 1007),  # a text message that is not UTF-8
    ],
    ids=["unmasked", "rsv1", "reserved-opcode", "not-utf8"],  # the masks are random: fixed ids
)
def test_protocol_errors_close_with_their_rfc_6455_code(server, raw, code):
    assert run(close_code_after(server.port, raw)) == code


def test_a_stream_of_refused_messages_is_closed_with_1008(server):
    async def go():
        ws = await open_stream(server.port)
        answers = []
        for i in range(MAX_REFUSALS + 3):
            try:
                await ws.send_text(f'{{"seq": {i}, "frames": "nope"}}')
            except Exception:
                break  # closed meanwhile
        while (answer := await ws.receive_json(timeout=5)) is not None:
            answers.append(answer)
        return answers, ws.close_code

    answers, code = run(go())
    assert code == 1008
    assert [a["status"] for a in answers] == [422] * (MAX_REFUSALS + 1)  # then the close
    time.sleep(0.1)  # this address is kept out for abuse_penalty_s (0.01 s here); the next test uses it


def test_a_server_error_in_one_batch_answers_it_and_the_stream_goes_on(server, monkeypatch):
    real = ingest.stream.frame_rows

    def broken_for_frame_13(episode_id, frames):
        if any(f.frame_number == 13 for f in frames):
            raise RuntimeError("injected fault")
        return real(episode_id, frames)

    monkeypatch.setattr(ingest.stream, "frame_rows", broken_for_frame_13)

    async def go():
        ws = await open_stream(server.port)
        answers = []
        for seq, n in enumerate([12, 13, 14]):
            await ws.send_json({"seq": seq, "frames": [frame(n)]})
            answers.append(await ws.receive_json(timeout=5))
        await ws.close()
        return answers

    answers = run(go())
    assert answers[0] == {"ack": 0, "stored": 1, "duplicates": 0}
    assert answers[1]["seq"] == 1 and answers[1]["status"] == 500 and "server log" in answers[1]["error"]
    assert answers[2] == {"ack": 2, "stored": 1, "duplicates": 0}


def test_a_server_error_outside_any_batch_closes_with_1011(server, monkeypatch):
    async def broken(self, message):  # a fault in the stream's own machinery, not in a batch
        raise RuntimeError("injected fault")

    monkeypatch.setattr(ingest.stream.FrameStream, "_handle", broken)

    async def go():
        ws = await open_stream(server.port)
        await ws.send_json({"seq": 0, "frames": [frame(0)]})
        while await ws.receive(timeout=5) is not None:
            pass
        return ws.close_code

    assert run(go()) == 1011
