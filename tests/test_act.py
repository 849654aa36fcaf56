"""POST /api/fighters/{id}/act over real sockets: the checkpoint's actions, versions, model
refresh, bad input, unknown fighters and unreadable checkpoint files."""

import http.client
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from policy_files import arena_observations, make_checkpoint, torch_outputs

from ingest import BackgroundServer, Limits, ServerConfig
from policies.export import export_checkpoint
from storage import Database

ROOT = Path(__file__).resolve().parent.parent
MAX_ROWS = 100


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def act(self, fighter_id, body=None, raw: bytes | None = None, headers=None, path_suffix=""):
        data = raw if raw is not None else json.dumps(body).encode()
        self.conn.request(
            "POST",
            f"/api/fighters/{fighter_id}/act{path_suffix}",
            body=data,
            headers={"content-type": "application/json", **(headers or {})},
        )
        resp = self.conn.getresponse()
        payload = json.loads(resp.read())
        if resp.getheader("connection") == "close":
            self.conn.close()
        return resp.status, payload


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server, a database with fighters, and checkpoint files."""
    tmp = tmp_path_factory.mktemp("act")
    db_path = tmp / "arena.db"
    ckpts = {v: make_checkpoint(tmp / f"step_{v}.pt", seed=v, model_version=v) for v in (1, 2, 3)}
    with Database.open(db_path) as db:
        fighter = db.register_fighter("trained.glb", {})
        untrained = db.register_fighter("untrained.glb", {})
        db.add_checkpoint(fighter, 1, 10, 0.40, 1.0, 100, str(ckpts[1]), "aggression")
    limits = Limits(max_act_observations=MAX_ROWS)
    with BackgroundServer(ServerConfig(db_path=str(db_path), port=0, limits=limits)) as server:
        yield {"server": server, "db": db_path, "fighter": fighter, "untrained": untrained, "ckpts": ckpts, "tmp": tmp}


@pytest.fixture
def client(world):
    c = Client(world["server"].port)
    yield c
    c.conn.close()


@pytest.fixture(scope="module")
def obs():
    return arena_observations(64)


def greedy(path, obs) -> list[int]:
    return torch_outputs(path, obs)[0].argmax(1).tolist()


def test_greedy_actions_are_the_checkpoints(world, client, obs):
    status, out = client.act(world["fighter"], {"observations": obs.tolist()})
    assert status == 200, out
    assert out["actions"] == greedy(world["ckpts"][1], obs)
    assert out["model_version"] == 1 and out["checkpoint_id"] >= 1
    status, again = client.act(world["fighter"], {"observations": obs[:1].tolist(), "greedy": True})
    assert status == 200 and again["actions"] == out["actions"][:1]


def test_sampled_actions_are_seedable(world, client, obs):
    rows = np.repeat(obs[:1], MAX_ROWS, axis=0).tolist()
    answers = [
        client.act(world["fighter"], {"observations": rows, "greedy": False, "seed": s})[1]["actions"]
        for s in (5, 5, 6)
    ]
    assert answers[0] == answers[1] and answers[0] != answers[2]
    assert all(0 <= a < 10 for a in answers[0]) and len(set(answers[0])) > 1  # draws, not the argmax
    status, out = client.act(world["fighter"], {"observations": rows, "greedy": False})
    assert status == 200 and len(out["actions"]) == MAX_ROWS


def test_named_version_and_refresh_when_a_better_checkpoint_is_registered(world, client, obs):
    server, fighter, ckpts = world["server"], world["fighter"], world["ckpts"]
    body = {"observations": obs.tolist()}
    assert client.act(fighter, body)[1]["model_version"] == 1
    loads = server.server.api.policies.loads
    with Database.open(world["db"]) as db:
        db.add_checkpoint(fighter, 2, 20, 0.90, 2.0, 200, str(ckpts[2]), "aggression")  # the new best
        db.add_checkpoint(fighter, 3, 30, 0.50, 3.0, 300, str(ckpts[3]), "aggression")
    status, out = client.act(fighter, body)
    assert status == 200 and out["model_version"] == 2 and out["actions"] == greedy(ckpts[2], obs)
    status, out = client.act(fighter, {**body, "version": 3})
    assert status == 200 and out["model_version"] == 3 and out["actions"] == greedy(ckpts[3], obs)
    status, out = client.act(fighter, {**body, "version": 1})
    assert status == 200 and out["model_version"] == 1 and out["actions"] == greedy(ckpts[1], obs)
    for _ in range(3):
        client.act(fighter, body)
    assert server.server.api.policies.loads == loads + 2  # v2 and v3 once each; v1 still cached
    # A checkpoint file rewritten in place is read again.
    replacement = make_checkpoint(world["tmp"] / "replacement.pt", seed=11, model_version=2)
    os.replace(replacement, ckpts[2])
    status, out = client.act(fighter, body)
    assert out["actions"] == greedy(ckpts[2], obs) and server.server.api.policies.loads == loads + 3
    status, err = client.act(fighter, {**body, "version": 99})
    assert status == 404 and "model_version 99" in err["error"]


def test_exported_weights_file_can_be_registered(world, client, obs):
    out = export_checkpoint(world["ckpts"][1], world["tmp"] / "export", onnx=False)
    with Database.open(world["db"]) as db:
        fighter = db.register_fighter("exported.glb", {})
        db.add_checkpoint(
            fighter,
            out["model_version"],
            1,
            0.5,
            0.0,
            1,
            str(world["tmp"] / "export" / "policy.safetensors"),
            "aggression",
        )
    status, answer = client.act(fighter, {"observations": obs.tolist()})
    assert status == 200 and answer["actions"] == greedy(world["ckpts"][1], obs)


def test_unknown_fighter_and_fighter_without_checkpoints(world, client, obs):
    body = {"observations": obs[:2].tolist()}
    status, err = client.act(987654, body)
    assert status == 404 and "fighter 987654 does not exist" in err["error"] and err["status"] == 404
    status, err = client.act(world["untrained"], body)
    assert status == 404 and "no checkpoints yet" in err["error"]
    status, err = client.act("abc", body)
    assert status == 404


def test_missing_or_corrupt_checkpoint_file_is_named(world, client, obs):
    tmp = world["tmp"]
    (tmp / "corrupt.pt").write_bytes(world["ckpts"][1].read_bytes()[:5000])
    with Database.open(world["db"]) as db:
        gone = db.register_fighter("gone.glb", {})
        db.add_checkpoint(gone, 1, 1, 0.5, 0.0, 1, str(tmp / "deleted.pt"), "aggression")
        corrupt = db.register_fighter("corrupt.glb", {})
        db.add_checkpoint(corrupt, 1, 1, 0.5, 0.0, 1, str(tmp / "corrupt.pt"), "aggression")
    body = {"observations": obs[:2].tolist()}
    status, err = client.act(gone, body)
    assert status == 500 and "deleted.pt" in err["error"] and "cannot be opened" in err["error"]
    status, err = client.act(corrupt, body)
    assert status == 500 and "corrupt.pt" in err["error"] and "corrupt or truncated" in err["error"]
    assert client.act(world["fighter"], body)[0] == 200  # the server goes on serving


ROW = [0.1] * 30


@pytest.mark.parametrize(
    "raw, status, needle",
    [
        (json.dumps({"observations": [ROW, ROW[:29]]}), 422, "$.observations[1]"),
        (json.dumps({"observations": [ROW[:-1] + ["x"]]}), 422, "$.observations[0][29]"),
        (json.dumps({"observations": [ROW[:-1] + [1e39]]}), 422, "$.observations[0][29]"),
        ('{"observations": [[' + ",".join(["NaN"] * 30) + "]]}", 400, "NaN and Infinity are not JSON numbers"),
        (json.dumps({"observations": []}), 422, "observations is empty"),
        (json.dumps({"observations": [ROW] * (MAX_ROWS + 1)}), 413, f"at most {MAX_ROWS}"),
        (json.dumps({"observations": [ROW], "temperature": 1}), 422, "temperature"),
        (json.dumps({"observations": [ROW], "greedy": "yes"}), 422, "$.greedy"),
        (json.dumps({"observations": [ROW], "version": -1}), 422, "$.version"),
        (json.dumps({"greedy": True}), 422, "observations"),
        ("", 400, "empty body"),
        ("{", 400, "malformed JSON"),
    ],
)
def test_bad_input(world, client, raw, status, needle):
    got, err = client.act(world["fighter"], raw=raw.encode())
    assert got == status, err
    assert needle in err["error"] and err["status"] == status


def test_wrong_media_type_and_query(world, client):
    body = {"observations": [ROW]}
    assert client.act(world["fighter"], body, headers={"content-type": "text/html"})[0] == 415
    status, err = client.act(world["fighter"], body, path_suffix="?greedy=false")
    assert status == 400 and "query" in err["error"]


def test_documented_in_openapi(world):
    conn = http.client.HTTPConnection("127.0.0.1", world["server"].port, timeout=10)
    conn.request("GET", "/openapi.json")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    op = doc["paths"]["/api/fighters/{fighter_id}/act"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ActIn"}
    assert {"200", "404", "413", "422", "500"} <= set(op["responses"])
    assert doc["components"]["schemas"]["ActIn"]["properties"]["observations"]["maxItems"] == MAX_ROWS
    assert doc["info"]["x-limits"]["max_act_observations"] == MAX_ROWS


def test_server_process_never_imports_torch(world, obs):
    """ingest_server.py's process serves a train.py checkpoint with numpy alone."""
    code = f"""
import json, sys, urllib.request
sys.modules["torch"] = None  # any import of torch now fails
from ingest import BackgroundServer, ServerConfig
with BackgroundServer(ServerConfig(db_path={str(world["db"])!r}, port=0)) as server:
    request = urllib.request.Request(server.url + "/api/fighters/{world["fighter"]}/act",
        data=json.dumps({{"observations": {obs[:4].tolist()!r}, "version": 1}}).encode(),
        headers={{"content-type": "application/json"}})
    print(urllib.request.urlopen(request, timeout=10).read().decode())
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["model_version"] == 1 and answer["actions"] == greedy(world["ckpts"][1], obs[:4])


def test_relative_weights_paths_resolve_against_the_server_folder(tmp_path, obs):
    shutil.copy(make_checkpoint(tmp_path / "models" / "a.pt", seed=4), tmp_path / "models" / "b.pt")
    with Database.open(tmp_path / "arena.db") as db:
        fighter = db.register_fighter("rel.glb", {})
        db.add_checkpoint(fighter, 1, 1, 0.5, 0.0, 1, "models/b.pt", "aggression")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with BackgroundServer(ServerConfig(db_path="arena.db", port=0)) as server:
            status, out = Client(server.port).act(fighter, {"observations": obs[:3].tolist()})
    finally:
        os.chdir(cwd)
    assert status == 200 and out["actions"] == greedy(tmp_path / "models" / "a.pt", obs[:3])


# ---------------------------------------------------------------------------- a recurrent fighter
@pytest.fixture(scope="module")
def recurrent_world(tmp_path_factory):
    """A fighter whose best checkpoint is an lstm reading the full observation, on a server whose
    sessions expire after 1 s (the expiry is tested without waiting 10 minutes)."""
    from policy_files import make_recurrent_checkpoint

    tmp = tmp_path_factory.mktemp("act-lstm")
    path = make_recurrent_checkpoint(tmp / "lstm.pt", seed=3)
    with Database.open(tmp / "arena.db") as db:
        fighter = db.register_fighter("lstm.glb", {})
        db.add_checkpoint(fighter, 1, 10, 0.5, 1.0, 100, str(path), "selfplay")
    limits = Limits(max_act_observations=MAX_ROWS, session_ttl_s=1.0, max_sessions=4)
    with BackgroundServer(ServerConfig(db_path=str(tmp / "arena.db"), port=0, limits=limits)) as server:
        yield {"server": server, "fighter": fighter, "path": path}


def test_a_recurrent_fighter_keeps_its_memory_in_a_session(recurrent_world):
    """Calls of one session give what torch gives when it carries the state over the match's
    decisions (memory reset where a fighter starts a match); reset, expiry and the session's
    rows are honoured; a wrong observation size is a 422 naming the kind."""
    import time

    from policy_files import match_sequences, torch_sequences

    obs, resets = match_sequences("full", seed=8)
    obs, resets = obs[:12, :MAX_ROWS], resets[:12, :MAX_ROWS]
    logits, _, _ = torch_sequences(recurrent_world["path"], obs, resets)
    client, fighter = Client(recurrent_world["server"].port), recurrent_world["fighter"]
    for t in range(len(obs)):
        reset = True if t == 0 else resets[t].tolist()
        status, out = client.act(fighter, {"observations": obs[t].tolist(), "session": "m-1", "reset": reset})
        assert status == 200, out
        assert out["actions"] == logits[t].argmax(1).tolist(), t
        assert out["recurrent"] is True and out["observation"] == "full"
        assert out["session"]["started"] == ("reset" if t == 0 else None)
    # without its memory the same decision differs somewhere: the session carried it
    status, fresh = client.act(fighter, {"observations": obs[-1].tolist(), "session": "m-2"})
    assert fresh["session"]["started"] == "new" and fresh["actions"] != logits[-1].argmax(1).tolist()
    status, err = client.act(fighter, {"observations": obs[0, :3].tolist(), "session": "m-1"})
    assert status == 422 and "holds the memory of 100 fighters" in err["error"]
    status, err = client.act(fighter, {"observations": obs[0].tolist()})
    assert status == 422 and "name a session" in err["error"]
    status, err = client.act(fighter, {"observations": obs[0, :, :30].tolist(), "session": "m-1"})
    assert status == 422 and "48 numbers per observation (the full observation)" in err["error"]
    status, err = client.act(fighter, {"observations": obs[0].tolist(), "session": "bad id!"})
    assert status == 422 and "session" in err["error"]
    time.sleep(1.2)
    status, out = client.act(fighter, {"observations": obs[0].tolist(), "session": "m-1"})
    assert status == 200 and out["session"]["started"] == "new"  # expired
    client.conn.close()


def test_a_feed_forward_fighter_ignores_a_session(world, client, obs):
    status, out = client.act(world["fighter"], {"observations": obs[:2].tolist(), "session": "anything"})
    assert status == 200 and out["recurrent"] is False and out["observation"] == "basic" and "session" not in out
