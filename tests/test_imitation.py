"""Behavioural cloning (training/imitation.py, train.py's imitation mode) and the demo.

The recorded dataset: the chaser bot's matches against the random bot (demos.clone_chaser
computes its actions with the kernel's own bot code), written with storage.Database as the
ingest server stores them, plus a losing fighter and an open episode for the filters.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from configs import CONFIG_DIR, ConfigError, ImitationConfig, load_config
from demos.clone_chaser import play_chaser_matches
from policies import AgentCheckpoint, CheckpointError
from storage import Database
from train import train
from training.demonstrations import ImitationDataError, action_labels, load_demonstrations, split_episodes

ROOT = Path(__file__).resolve().parents[1]
MATCHES = 120
"""Recorded chaser matches (about 4,800 frames)."""
LOSER_EPISODES = 3
LOSER_FRAMES = 20


def one_hot(action: int) -> list[float]:
    return [1.0 if k == action else 0.0 for k in range(10)]


def loser_frame(i: int, rng) -> dict:
    return {
        "frame_number": 4 * i,
        "fighter_position": [0.0, 0.0],
        "fighter_health": 1.0,
        "fighter_velocity": [0.0, 0.0],
        "enemies_state": [],
        "action_vector": one_hot(int(rng.integers(10))),
        "reward_delta": 0.0,
        "cumulative_reward": 0.0,
        "observation_vector": rng.uniform(-1, 1, 30).astype(np.float32).tolist(),
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Fighter 1: the chaser's matches, all completed with their outcome, plus one open
    episode; fighter 2: a few lost episodes of random actions. Returns (path, facts)."""
    path = tmp_path_factory.mktemp("imitation") / "arena.db"
    rng = np.random.default_rng(0)
    with Database.open(path) as db:
        chaser = db.register_fighter("chaser.glb", {"bot": "chaser"})
        loser = db.register_fighter("loser.glb", {"bot": "random"})
        frames = victories = 0
        for match_frames, outcome in play_chaser_matches(MATCHES, seed=5):
            episode = db.create_episode(chaser, [loser])
            assert db.add_frames(episode, match_frames) == (len(match_frames), 0)
            db.complete_episode(
                episode, outcome.total_reward, outcome.duration_frames, outcome.is_victory, outcome.rank
            )
            frames, victories = frames + len(match_frames), victories + outcome.is_victory
        open_episode = db.create_episode(chaser)  # still streaming: left out by completed_only
        db.add_frames(open_episode, match_frames[:7])
        for _ in range(LOSER_EPISODES):
            episode = db.create_episode(loser, [chaser])
            db.add_frames(episode, [loser_frame(i, rng) for i in range(LOSER_FRAMES)])
            db.complete_episode(episode, -5.0, 4 * LOSER_FRAMES, False, 2)
    return path, {"chaser": chaser, "loser": loser, "frames": frames, "victories": victories}


def run_imitation(db, run_dir, **overrides):
    settings = {
        "imitation.epochs": 80,
        "imitation.holdout": 0.2,
        "eval.opponents": ["random"],
        "eval.matches": 100,
        "log_interval": 60.0,
        **overrides,
    }
    return train(CONFIG_DIR / "imitation.yaml", settings, run_dir=run_dir, db=db, progress=False)


@pytest.fixture(scope="module")
def cloned(recorded, tmp_path_factory):
    path, facts = recorded
    return run_imitation(path, tmp_path_factory.mktemp("clone") / "run", **{"imitation.fighters": [facts["chaser"]]})


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------
def test_cloning_the_chaser_agrees_with_it_and_beats_a_random_policy(cloned, recorded):
    from evaluate import evaluate, uniform_policy

    _, facts = recorded
    assert cloned["frames"] == facts["frames"]  # completed episodes only, the loser's left out
    assert cloned["heldout_episodes"] == round(0.2 * MATCHES) and cloned["heldout_frames"] > 200
    assert cloned["heldout_accuracy"] >= 0.85, cloned["heldout_recall"]
    assert cloned["train_accuracy"] >= 0.85
    clone = cloned["best_eval"]["random"]
    baseline = evaluate(uniform_policy(12345), ["random"], matches=100, seed=12345)["random"]
    assert baseline["win_rate"] < 0.65
    assert clone["win_rate"] >= 0.9 and clone["ci95"][0] > baseline["ci95"][1]


def test_the_result_is_a_normal_checkpoint_with_tensorboard_and_database_records(cloned, recorded):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path, facts = recorded
    model = AgentCheckpoint.load(cloned["best"])
    assert model.config["mode"] == "imitation" and model.trainer_state is None
    assert model.metrics["heldout_accuracy"] == pytest.approx(cloned["heldout_accuracy"])
    assert model.metrics["eval"]["random"]["win_rate"] == cloned["best_eval"]["random"]["win_rate"]
    actions, values = model.get_action_and_value(np.zeros((4, 30), np.float32))
    assert actions.shape == (4,) and values.shape == (4,)
    latest = AgentCheckpoint.load(cloned["latest"])
    assert latest.metrics["epoch"] == 80
    run_dir = Path(cloned["run_dir"])
    assert json.loads((run_dir / "summary.json").read_text())["best"] == cloned["best"]
    assert load_config(run_dir / "config.yaml").mode == "imitation"

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "imitation/heldout_accuracy",
        "imitation/train_accuracy",
        "imitation/loss",
        "imitation/heldout_loss",
        "charts/learning_rate",
        "eval/random/win_rate",
        "eval/worst_win_rate",
        "imitation/heldout_recall/attack",
    } <= tags
    assert len(events.Scalars("imitation/heldout_accuracy")) == 80

    with Database.open(path) as db:
        fighter = db.get_fighter(cloned["fighter_id"])
        assert fighter["glb_filename"] == "imitation.glb" and cloned["fighter_id"] not in (
            facts["chaser"],
            facts["loser"],
        )
        rows = db.list_checkpoints(cloned["fighter_id"])
        assert rows and {r["training_mode"] for r in rows} == {"imitation"}
        assert all(Path(r["weights_path"]).is_file() for r in rows)
        best = db.best_checkpoint(cloned["fighter_id"])
        assert AgentCheckpoint.load(best["weights_path"]).metrics["epoch"] == cloned["best_epoch"]


def test_ppo_fine_tunes_the_clone_with_init_from(cloned, tmp_path):
    tiny = {
        "env.num_arenas": 32,
        "train.num_steps": 16,
        "train.total_timesteps": 1,
        "eval.interval": 0,
        "torch_threads": 1,
        "log_interval": 60.0,
    }
    summary = train(
        CONFIG_DIR / "chaser-duel.yaml", tiny, run_dir=tmp_path / "ppo", init_from=cloned["best"], progress=False
    )
    assert summary["global_step"] > 0 and not summary["interrupted"]
    assert AgentCheckpoint.load(summary["latest"]).config["mode"] == "aggression"
    with pytest.raises(CheckpointError, match="no trainer state; use --init-from"):
        train(resume=cloned["run_dir"])


def test_a_recurrent_policy_clones_from_whole_episodes_and_plays_with_its_memory(recorded, tmp_path):
    path, facts = recorded
    summary = run_imitation(
        path,
        tmp_path / "lstm",
        **{"imitation.fighters": [facts["chaser"]], "policy.kind": "lstm", "imitation.epochs": 15, "eval.matches": 20},
    )
    assert summary["heldout_accuracy"] >= 0.8, summary["heldout_recall"]
    model = AgentCheckpoint.load(summary["best"])
    assert model.recurrent and model.kind == "lstm"
    assert summary["best_eval"]["random"]["matches"] == 20  # evaluated with its memory kept per match


def test_episodes_are_dealt_whole_into_streams_in_order():
    from training.imitation import stream_layout

    episode_id = np.array([7, 7, 7, 3, 3, 9, 9, 9, 9, 4])
    rows, starts = stream_layout(episode_id, np.array([2, 0, 1, 3]), streams=2)
    # episode 9 (4 frames) to stream 0, episode 7 (3) to stream 1, episode 3 (2) to stream 1 (3 < 4), 4 to 0
    assert rows.tolist() == [[5, 6, 7, 8, 9], [0, 1, 2, 3, 4]]
    assert starts.tolist() == [[True, False, False, False, True], [True, False, False, True, False]]
    rows, _ = stream_layout(episode_id, None, streams=10)  # no more streams than episodes
    assert rows.shape == (4, 4) and (rows == -1).sum() == 16 - 10


# ---------------------------------------------------------------------------------------------
# Data: filters, labels, split
# ---------------------------------------------------------------------------------------------
def test_filters_select_fighters_outcomes_ranks_dates_and_open_episodes(recorded):
    path, facts = recorded
    chaser, loser = facts["chaser"], facts["loser"]
    every = load_demonstrations(path, ImitationConfig())
    assert len(every) == facts["frames"] + LOSER_EPISODES * LOSER_FRAMES
    assert len(load_demonstrations(path, ImitationConfig(fighters=chaser))) == facts["frames"]
    assert (
        len(load_demonstrations(path, ImitationConfig(fighters=[chaser], completed_only=False))) == facts["frames"] + 7
    )
    winners = load_demonstrations(path, ImitationConfig(victories_only=True))
    first = load_demonstrations(path, ImitationConfig(max_rank=1))
    assert winners.episodes == first.episodes == facts["victories"] and len(winners) == len(first)
    assert len(load_demonstrations(path, ImitationConfig(max_rank=2))) == len(every)
    assert len(load_demonstrations(path, ImitationConfig(since="2000-01-01", until="2999-01-01"))) == len(every)
    with pytest.raises(
        ImitationDataError, match=r"no frames .* match the selection \(fighters \[2\], victories only\)"
    ):
        load_demonstrations(path, ImitationConfig(fighters=[loser], victories_only=True))
    with pytest.raises(ImitationDataError, match="since 2999-01-01"):
        load_demonstrations(path, ImitationConfig(since="2999-01-01"))


def test_action_labels_argmax_index_and_errors():
    scores = np.array([[0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0.2, 0.7, 0.7, 0, 0, 0, 0, 0, 0, 0.1], [0] * 10], np.float32)
    labels, keep, encoding = action_labels(scores)
    assert encoding == "argmax" and labels[:2].tolist() == [2, 1] and keep.tolist() == [True, True, False]
    labels, keep, encoding = action_labels(np.array([[9.0], [0.0], [4.0]], np.float32))
    assert encoding == "index" and labels.tolist() == [9, 0, 4] and keep.all()
    with pytest.raises(ImitationDataError, match="not an integer from 0 to 9"):
        action_labels(np.array([[2.5]], np.float32))
    with pytest.raises(ImitationDataError, match="action_vector of 4 numbers"):
        action_labels(np.zeros((3, 4), np.float32))
    with pytest.raises(ImitationDataError, match="argmax"):
        action_labels(np.zeros((3, 1), np.float32), encoding="argmax")


def test_held_out_split_is_by_whole_episodes_and_seeded():
    episode_id = np.repeat(np.arange(10), 5)
    test = split_episodes(episode_id, 0.2, seed=3)
    held = np.unique(episode_id[test])
    assert len(held) == 2 and test.sum() == 10 and not np.isin(episode_id[~test], held).any()
    assert (split_episodes(episode_id, 0.2, seed=3) == test).all()
    assert not split_episodes(episode_id, 0.0, seed=3).any()
    with pytest.raises(ImitationDataError, match="too few"):
        split_episodes(np.zeros(5, np.int64), 0.1, seed=0)


# ---------------------------------------------------------------------------------------------
# Clear errors
# ---------------------------------------------------------------------------------------------
def test_unknown_fighter_empty_missing_and_unreadable_databases_are_clear_errors(recorded, tmp_path):
    path, _ = recorded
    with pytest.raises(
        ImitationDataError,
        match=r"fighter 99 \(imitation.fighters\) is not in .*its fighters are "
        r"1 'chaser.glb' \(\d[\d,]* frames\), 2 'loser.glb'",
    ):
        load_demonstrations(path, ImitationConfig(fighters=[1, 99]))
    empty = tmp_path / "empty.db"
    with Database.open(empty) as db:
        db.register_fighter("new.glb", {})
    with pytest.raises(ImitationDataError, match="holds no recorded frames"):
        load_demonstrations(empty, ImitationConfig())
    with pytest.raises(ImitationDataError, match="holds no recorded frames"):
        load_demonstrations(empty, ImitationConfig(fighters=[1]))
    with pytest.raises(FileNotFoundError, match="does not exist; record matches into it first"):
        load_demonstrations(tmp_path / "missing.db", ImitationConfig())
    assert not (tmp_path / "missing.db").exists()  # never created by the attempt
    with pytest.raises(ImitationDataError, match="pass --db"):
        load_demonstrations(None, ImitationConfig())
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ImitationDataError, match="cannot read the arena database"):
        load_demonstrations(junk, ImitationConfig())


def test_config_fields_are_checked_and_dates_accepted():
    config = load_config(
        CONFIG_DIR / "imitation.yaml", ["--imitation.since", "2026-11-24", "--imitation.fighters", "3"]
    )
    assert config.mode == "imitation" and config.imitation.since == "2026-11-24" and config.imitation.fighters == 3
    with pytest.raises(ConfigError, match="'imitation.since' in the command line"):
        load_config(CONFIG_DIR / "imitation.yaml", ["--imitation.since", "last tuesday"])
    with pytest.raises(ConfigError, match="'imitation.holdout'"):
        load_config(CONFIG_DIR / "imitation.yaml", ["--imitation.holdout", "1.5"])
    with pytest.raises(ConfigError, match="unknown key 'imitation.epoch'"):
        load_config(CONFIG_DIR / "imitation.yaml", ["--imitation.epoch", "3"])


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def run_module(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_train_py_command_line_clones_and_reports_errors(recorded, tmp_path):
    path, facts = recorded
    result = run_module(
        "train.py",
        "configs/imitation.yaml",
        "--db",
        str(path),
        "--imitation.fighters",
        str(facts["chaser"]),
        "--imitation.epochs",
        "3",
        "--eval.interval",
        "0",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    assert "Finished: behavioural cloning" in result.stdout and "held-out action accuracy" in result.stdout
    assert AgentCheckpoint.load(tmp_path / "run" / "checkpoints" / "best.pt").metrics["epoch"] >= 1
    result = run_module("train.py", "configs/imitation.yaml", "--db", str(path), "--imitation.fighters", "99")
    assert result.returncode == 2 and "error: fighter 99 (imitation.fighters) is not in" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_records_through_the_server_clones_exports_and_checks(tmp_path):
    """The demo end to end at a tiny size (numpy check: tests/test_policy_js.py runs the browser)."""
    result = run_module(
        "-m",
        "demos.clone_chaser",
        "--matches",
        "16",
        "--epochs",
        "10",
        "--eval-matches",
        "20",
        "--browser",
        "numpy",
        "--no-onnx",
        "--out",
        str(tmp_path / "demo"),
        "--json",
        str(tmp_path / "demo.json"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["recorded"]["episodes"] == 16 and report["recorded"]["completed_episodes"] == 16
    assert report["recorded"]["frames"] == report["clone"]["frames"] > 0
    assert report["chaser_vs_random"]["win_rate"] >= 0.9 and report["chaser_vs_random"]["chaser_agreement"] == 1.0
    assert report["browser_check"]["mismatches"] == 0 and "numpy" in report["browser_check"]["checked_with"]
    assert (tmp_path / "demo" / "export" / "policy.safetensors").is_file()


def test_load_benchmark_entry_point_prints_figures(capsys):
    from training.bench_imitation import main

    assert main(["--frames", "3000", "--repeats", "1", "--epochs", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["frames"] == 3000 and figures["load_median_s"] > 0 and figures["train_samples_per_s"] > 0
