"""Evaluation: Wilson intervals, exact seeded match counts, determinism, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluate import evaluate, play_matches, uniform_policy, wilson_interval
from policies import AgentCheckpoint, Policy

ROOT = Path(__file__).resolve().parents[1]


def test_wilson_interval_known_values():
    assert wilson_interval(0, 0) == [0.0, 1.0]
    np.testing.assert_allclose(wilson_interval(5, 10), [0.2366, 0.7634], atol=1e-4)
    np.testing.assert_allclose(wilson_interval(0, 10), [0.0, 0.2775], atol=1e-4)
    np.testing.assert_allclose(wilson_interval(190, 200), [0.9104, 0.9726], atol=1e-4)


def test_exact_match_count_and_determinism():
    idle = lambda obs: np.full(len(obs), 8)  # noqa: E731 - stands still
    first = evaluate(idle, opponents=["chaser", "random"], matches=40, seed=5)
    again = evaluate(idle, opponents=["chaser", "random"], matches=40, seed=5)
    assert first == again
    chaser = first["chaser"]
    assert chaser["matches"] == 40 and set(first) == {"chaser", "random"}
    assert chaser["win_rate"] < 0.2  # standing still against a chaser loses
    assert chaser["ci95"][0] <= chaser["win_rate"] <= chaser["ci95"][1]
    assert 1 <= chaser["mean_rank"] <= 2 and chaser["match_length"] > 0
    assert chaser["survival_rate"] + chaser["knocked_out"] + chaser["rung_out"] == pytest.approx(1.0)


def test_torch_policy_and_checkpoint_agree_and_sampling_is_seeded(tmp_path):
    torch.manual_seed(0)
    policy = Policy()
    ckpt = AgentCheckpoint(policy)
    assert evaluate(policy, ["random"], matches=16, seed=1) == evaluate(ckpt, ["random"], matches=16, seed=1)
    sampled = [evaluate(policy, ["random"], matches=16, seed=2, greedy=False) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_free_for_all_and_uniform_baseline():
    result = play_matches(uniform_policy(0), "random", matches=12, seed=0, fighters=4)
    assert result["matches"] == 12 and 1 <= result["mean_rank"] <= 4
    with pytest.raises(ValueError, match="matches must be"):
        evaluate(uniform_policy(0), ["random"], matches=0)


def test_cli_prints_a_table_and_writes_json(tmp_path):
    AgentCheckpoint(Policy(), global_step=42).save(tmp_path / "model.pt")
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            str(tmp_path / "model.pt"),
            "--opponents",
            "random,idle",
            "--matches",
            "10",
            "--seed",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "step 42" in result.stdout and "win rate" in result.stdout and "idle" in result.stdout
    data = json.loads(out.read_text())
    assert data["results"]["random"]["matches"] == 10 and len(data["results"]["idle"]["ci95"]) == 2
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(tmp_path / "missing.pt")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
