"""The OpenAPI document against the server: generated from the types the server decodes
with, agreeing with them on the edge cases (checked with a JSON Schema validator), answers
that decode into their documented types, and schemathesis fuzzing a live server with every
check on: 0 server errors, 0 conformance failures.

Loaded by schemathesis as its hooks file too (``__name__ == "_schemathesis_hooks"``): the
hook drops generated bodies that break the rules JSON Schema cannot say and the document
states in ``x-`` keys (byte sizes of enemies_state and metadata, a frame's episode_id equal
to its batch's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from storage.records import MAX_ENEMIES_STATE_BYTES, MAX_JSON_DEPTH

MAX_METADATA_BYTES = 64 * 1024  # ingest.limits.MAX_METADATA_BYTES (the hooks file imports nothing of the server)


def within_unwritten_rules(body) -> bool:
    """Whether a generated body keeps the rules of the document's x- keys."""
    if not isinstance(body, dict):
        return True
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and len(json.dumps(metadata).encode()) > MAX_METADATA_BYTES - 1024:
        return False
    frames = body.get("frames")
    for frame in frames if isinstance(frames, list) else [body]:
        if not isinstance(frame, dict):
            continue
        enemies = frame.get("enemies_state")
        if enemies is not None and len(json.dumps(enemies).encode()) > MAX_ENEMIES_STATE_BYTES - 256:
            return False
        if frame is not body and "episode_id" in frame and frame["episode_id"] != body.get("episode_id"):
            return False
    return True


if __name__ == "_schemathesis_hooks":  # loaded by schemathesis (SCHEMATHESIS_HOOKS), not by pytest
    import schemathesis

    @schemathesis.hook
    def filter_body(context, body) -> bool:
        return within_unwritten_rules(body)


ROOT = Path(__file__).resolve().parent.parent
TOKEN = "fuzz-token"
FUZZ_EXAMPLES = int(os.environ.get("ARENA_FUZZ_EXAMPLES", "15"))
"""Examples per operation in the fuzzing phase (raise it for a longer run)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ingest import BackgroundServer, Limits, ServerConfig

    db = tmp_path_factory.mktemp("openapi") / "arena.db"
    limits = Limits(max_frames_per_batch=40, max_act_observations=32, max_page_limit=50)
    with BackgroundServer(ServerConfig(db_path=str(db), port=0, token=TOKEN, limits=limits)) as s:
        yield s


def test_document_agrees_with_the_decoders_on_the_edge_cases(server):
    """The schemas come from the decoders' types; a JSON Schema validator and the decoders
    accept and refuse the same values where the two could differ."""
    import jsonschema_rs

    from ingest.errors import ApiError
    from ingest.openapi import _build
    from ingest.validation import EpisodeIn, FighterIn, FramesIn, decode

    doc = _build(server.server.limits, token=True)
    registry = doc["components"]["schemas"]

    def schema_accepts(name: str, value) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": registry}}
        return jsonschema_rs.validator_for(schema).is_valid(value)

    def server_accepts(kind, value) -> bool:
        try:
            decode(json.dumps(value), kind)
            return True
        except ApiError:
            return False

    def nested(levels: int):
        value = 1
        for _ in range(levels - 1):
            value = [value]
        return {"k": value}  # metadata's own object is the first level

    frame = {
        "frame_number": 3,
        "fighter_position": [0, 0],
        "fighter_health": 1,
        "fighter_velocity": [0, 0],
        "enemies_state": [],
        "action_vector": [1],
        "reward_delta": 0,
        "cumulative_reward": 0,
        "observation_vector": [0] * 30,
    }
    cases = [
        ("FighterIn", FighterIn, {"glb_filename": "a", "model_version": 25.0}, True),
        ("FighterIn", FighterIn, {"glb_filename": "a", "model_version": 25.5}, False),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": nested(MAX_JSON_DEPTH)}, True),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": nested(MAX_JSON_DEPTH + 1)}, False),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": {"n": 2**53, "f": -(2.0**53), "x": 0.5}}, True),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": {"n": 2**53 + 1}}, False),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": {"n": 1e300}}, False),
        ("FighterIn", FighterIn, {"glb_filename": "a", "metadata": {"n": 2**64}}, False),
        ("EpisodeIn", EpisodeIn, {"fighter_id": 1, "episode_number": None}, True),
        ("EpisodeIn", EpisodeIn, {"fighter_id": 0}, False),
        ("EpisodeIn", EpisodeIn, {"fighter_id": 1, "opponent_ids": [2.0, 3]}, True),
        ("FrameBatch", FramesIn, {"episode_id": 1, "frames": [frame]}, True),
        ("FrameBatch", FramesIn, {"episode_id": 1, "frames": [{**frame, "fighter_health": 1e39}]}, True),
        ("FrameBatch", FramesIn, {"episode_id": 1, "frames": [{**frame, "fighter_position": [1e39, 0]}]}, False),
        ("SingleFrame", FramesIn, {"episode_id": 1, **frame, "frame_number": 7.0}, True),
        ("SingleFrame", FramesIn, {"episode_id": 1, **frame, "frame_number": 2**31}, False),
    ]
    for name, kind, value, expected in cases:
        assert schema_accepts(name, value) is expected, (name, value)
        assert server_accepts(kind, value) is expected, (name, value)
    assert "WireFrame" not in registry and "FramesIn" not in registry
    assert doc["components"]["schemas"]["ActIn"]["properties"]["observations"]["maxItems"] == 32


def test_answers_decode_into_their_documented_types(server, tmp_path_factory):
    """Every answer of a live server, decoded strictly (no unknown field, none missing)."""
    from policy_files import make_checkpoint

    from ingest import responses as r
    from ingest.client import HttpClient
    from storage import Database

    # a real file: the fuzzer below also asks this fighter for actions, which a missing file makes a 500
    checkpoint = make_checkpoint(tmp_path_factory.mktemp("typed") / "x.pt")
    with Database.open(server.config.db_path) as db:
        fid = db.register_fighter("typed.glb", {"size": [1, 2]})
        db.add_checkpoint(fid, 1, 10, 0.5, 1.0, 100, str(checkpoint), "aggression")
        db.add_training_metrics(fid, "run", 1, 1.0, 0.5, 0.1, float("nan"))
        eid = db.create_episode(fid, [2])
        db.add_frames(eid, [{**json.loads(json.dumps(_frame(n)))} for n in range(3)])

    import asyncio

    async def go():
        http = await HttpClient.connect("127.0.0.1", server.port)
        out = {}
        for path, kind in [
            ("/health", r.Health),
            ("/api/fighters", r.FighterPage),
            (f"/api/fighters/{fid}", r.Fighter),
            (f"/api/fighters/{fid}/stats", r.FighterStats),
            (f"/api/fighters/{fid}/episodes", r.EpisodePage),
            (f"/api/fighters/{fid}/checkpoints", r.CheckpointPage),
            (f"/api/fighters/{fid}/best-model", r.Checkpoint),
            (f"/api/episodes/{eid}", r.Episode),
            (f"/api/episodes/{eid}/frames", r.FramePage),
            ("/api/fighters/999999", r.Error),
        ]:
            out[path] = ((await http.request("GET", path)).body, kind)
        await http.close()
        return out

    for path, (body, kind) in asyncio.run(go()).items():
        msgspec.json.decode(body, type=kind)  # raises on any drift
        assert path  # (each decoded)
    stats = msgspec.json.decode(asyncio.run(go())[f"/api/fighters/{fid}/stats"][0], type=r.FighterStats)
    assert stats.best_checkpoint is not None and stats.latest_training_metrics.policy_entropy is None


def _frame(n: int) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [0.5, 1.0],
        "fighter_health": 9.0,
        "fighter_velocity": [0.0, 0.0],
        "enemies_state": [{"id": 1, "p": [1, 2]}],
        "action_vector": [1.0, 0.0],
        "reward_delta": 0.0,
        "cumulative_reward": 0.0,
        "observation_vector": [0.25] * 30,
    }


def test_schemathesis_finds_no_server_error_and_no_conformance_failure(server, tmp_path):
    """schemathesis (the test extra) against the live server: examples, fuzzing and stateful
    phases, FUZZ_EXAMPLES examples per operation, every check on."""
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if cli is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).resolve()), "PYTHONPATH": str(ROOT)}
    config = tmp_path / "schemathesis.toml"
    # The stateful phase follows the links the document declares. Links it would infer from
    # the path parameters' names include POST /api/fighters -> GET .../best-model, which
    # answers 404 for a fighter without checkpoints by design (documented), and ST302
    # (created resource not found) would call that a failure.
    # A frame that fits the schema is still refused (422) when its observation_vector's size is
    # not the one its episode records (30 for basic, 48 for full; chosen by POST /api/episodes):
    # a rule of the episode's state, which no schema of the request can say.
    config.write_text(
        "[phases.stateful.inference]\nalgorithms = []\n\n"
        "[[operations]]\n"
        'include-path = "/api/fight-frames"\n'
        'include-method = "POST"\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", '
        '"429", "5xx"]\n'
    )
    cmd = [
        cli,
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,fuzzing,stateful",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--workers",
        "1",
        "--seed",
        os.environ.get("ARENA_FUZZ_SEED", "24"),
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--no-color",
        "--suppress-health-check",
        "filter_too_much,too_slow",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    tail = out.stdout[-6000:]
    assert out.returncode == 0, tail
    assert " passed" in tail and "failure" not in tail.split("SUMMARY")[-1], tail
