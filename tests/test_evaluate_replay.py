"""Replays (the recorded match is evaluation's match, GIF pictures per decision, frames in the
ingest format, TensorBoard) and the evaluate command with --replay, --replay-frames and --db."""

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch
from PIL import Image

from evaluate import evaluate
from evaluation.replay import (
    CROSS,
    FIGHTER0,
    FLASH,
    frame_durations,
    frame_records,
    record_match,
    render_frames,
    replay_clip,
    save_animation,
)
from storage.records import Frame

ROOT = Path(__file__).resolve().parents[1]
BOTS_FILE = str(Path(__file__).with_name("eval_bots.py"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "learner, opponent, fighters, match",
    [("chaser", "kiter", 2, 0), (f"{BOTS_FILE}:chase", "random", 3, 2), ("random", f"{BOTS_FILE}:chase", 2, 1)],
)
def test_the_replay_is_the_evaluated_match(learner, opponent, fighters, match):
    rec = record_match(learner, opponent, seed=4, fighters=fighters, match=match)
    result = evaluate(learner, [opponent], matches=match + 1, seed=4, fighters=fighters)[opponent]
    assert rec.ended and rec.states == rec.decisions + 1
    if match == 0:  # the first match's own figures
        assert rec.frame[-1] == result["match_length"]
        assert rec.rank[rec.learner] == result["mean_rank"]
    assert rec.learner == (0 if opponent in ("kiter", "random") else match % fighters)
    assert rec.frame[0] == 0 and np.all(np.diff(rec.frame)[:-1] == 4)  # one state per decision
    assert rec.alive[0].all() and (~rec.alive[-1]).sum() >= fighters - 1 or rec.frame[-1] == 3000


def test_gif_has_one_picture_per_state_and_keeps_time(tmp_path):
    rec = record_match("chaser", "idle", seed=0)
    count = save_animation(rec, tmp_path / "replay.gif", size=160)
    with Image.open(tmp_path / "replay.gif") as gif:
        assert gif.n_frames == count == rec.decisions + 1
        assert gif.size[0] == 160 and gif.info["loop"] == 0
    durations = frame_durations(rec)
    assert sum(durations[:-1]) == pytest.approx(rec.frame[-1] * 1000 / 60, abs=10)
    assert set(durations[:-1]) <= {60, 70}
    assert save_animation(rec, tmp_path / "replay.webp", size=96) == count
    with pytest.raises(ValueError, match="ffmpeg"):
        save_animation(rec, tmp_path / "replay.mp4")


def test_pictures_show_hits_and_eliminations():
    rec = record_match("chaser", "idle", seed=0)
    pictures = [np.asarray(p) for p in render_frames(rec, size=128)]
    hit = 1 + int(np.flatnonzero(rec.hits[:, 0])[0])  # the state after the chaser's first hit
    assert not (pictures[hit - 1] == FLASH).any() and (pictures[hit] == FLASH).any()
    assert (pictures[-1] == CROSS).any() and not any((p == CROSS).any() for p in pictures[:-1])
    assert (pictures[0] == FIGHTER0).any() and (pictures[0] == FIGHTER0 + 1).any()


def test_frames_are_valid_ingest_frames():
    rec = record_match("chaser", "edge_pusher", seed=1, max_decisions=60)
    records = frame_records(rec)
    frames = msgspec.json.decode(msgspec.json.encode(records), type=list[Frame])
    assert len(frames) == rec.states == 61 and not rec.ended
    assert [f.frame_number for f in frames] == list(range(0, 244, 4))
    assert all(sum(f.action_vector) == 1 for f in frames[:-1]) and sum(frames[-1].action_vector) == 0
    np.testing.assert_allclose([f.cumulative_reward for f in frames], np.cumsum([f.reward_delta for f in frames]))
    np.testing.assert_allclose(frames[5].observation_vector, rec.obs[5], rtol=1e-6)
    assert frames[5].enemies_state[0]["id"] == 1 and len(frames[5].enemies_state) == 1
    np.testing.assert_allclose(frames[0].fighter_position, rec.pos[0, 0], atol=1e-5)


def test_replay_goes_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from policies import Policy
    from training.tensorboard import RunWriter

    writer = RunWriter(tmp_path)
    clip = replay_clip(Policy(), "chaser", seed=0, max_seconds=4, size=96)
    writer.add_clip("eval/replay", clip, step=7)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (image,) = events.Images("eval/replay")
    assert image.step == 7 and image.width == 96 and image.encoded_image_string[:6] == b"GIF89a"


def test_cli_replay_frames_json_and_database(tmp_path):
    from policies import AgentCheckpoint, Policy
    from storage import Database

    torch.manual_seed(0)
    ckpt = AgentCheckpoint(Policy(), config={"name": "probe", "mode": "aggression"}, model_version=3, global_step=99)
    ckpt.save(tmp_path / "model.pt")
    db = tmp_path / "arena.db"
    cmd = [
        sys.executable,
        str(ROOT / "evaluate.py"),
        str(tmp_path / "model.pt"),
        "--opponents",
        f"idle,{BOTS_FILE}:chase",
        "--matches",
        "12",
        "--seed",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        "--replay",
        str(tmp_path / "r.gif"),
        "--replay-frames",
        str(tmp_path / "r.ndjson"),
        "--replay-size",
        "128",
        "--db",
        str(db),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "step 99" in result.stdout and "eval_bots.py:chase" in result.stdout and "replay:" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    for entry in data["results"].values():
        assert entry["matches"] == 12 and len(entry["ci95"]) == 2
        assert {"win_rate", "avg_reward", "knockouts", "ring_outs", "mean_rank"} <= set(entry)
    lines = (tmp_path / "r.ndjson").read_text().splitlines()
    with Image.open(tmp_path / "r.gif") as gif:
        assert gif.n_frames == len(lines)
    msgspec.json.decode(lines[0], type=Frame)
    with Database.open(db) as database:
        (fighter,) = database.list_fighters()
        best = database.best_checkpoint(fighter["id"])
    mean_win = np.mean([r["win_rate"] for r in data["results"].values()])
    assert best["win_rate"] == pytest.approx(mean_win) and best["model_version"] == 3
    assert best["weights_path"] == str((tmp_path / "model.pt").resolve()) and best["training_mode"] == "aggression"
