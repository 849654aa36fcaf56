"""Round robins and ratings: the rating fit against known strengths, bots ordered by strength,
a consistent win matrix, determinism, and the compare command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluate import compare
from evaluation.compare import unique_names
from evaluation.ratings import BASE_RATING, expected_score, rate

ROOT = Path(__file__).resolve().parents[1]
BOTS_FILE = str(Path(__file__).with_name("eval_bots.py"))


def test_ratings_recover_known_strengths():
    rng = np.random.default_rng(0)
    truth = np.array([1700.0, 1500.0, 1300.0])
    i, j, score, group = [], [], [], []
    for g, (a, b) in enumerate([(0, 1), (1, 2), (0, 2)]):
        p = expected_score(truth[a], truth[b])
        i += [a] * 2000
        j += [b] * 2000
        score += list((rng.random(2000) < p).astype(float))
        group += [g] * 2000
    r = rate(3, i, j, score, group=group, bootstrap=100, seed=1)
    np.testing.assert_allclose(r["rating"], truth, atol=25)
    assert r["rating"].mean() == pytest.approx(BASE_RATING)
    assert all(lo < x < hi for x, (lo, hi) in zip(r["rating"], r["ci95"], strict=True))
    assert np.all(r["ci95"][:, 1] - r["ci95"][:, 0] < 60)


def test_ratings_of_perfect_records_and_draws_are_finite():
    # 0 always beats 1; 1 and 2 always draw.
    r = rate(3, [0] * 50 + [1] * 50, [1] * 50 + [2] * 50, [1.0] * 50 + [0.5] * 50, bootstrap=20)
    assert np.all(np.isfinite(r["rating"])) and r["rating"][0] > r["rating"][1] + 400
    assert r["rating"][1] == pytest.approx(r["rating"][2], abs=60)


def test_round_robin_orders_bots_by_strength():
    result = compare(
        ["idle", "chaser", "random", f"charge={BOTS_FILE}:chase"], matches=40, ffa_matches=40, seed=0, bootstrap=50
    )
    ranked = [r["name"] for r in result["ratings"]]
    assert ranked[:2] == ["chaser", "charge"] or ranked[:2] == ["charge", "chaser"]
    assert ranked.index("chaser") < ranked.index("idle") and ranked.index("chaser") < ranked.index("random")
    strong = result["ratings"][0]
    weakest = result["ratings"][-1]
    assert strong["ci95"][0] > weakest["ci95"][1]  # clearly separated
    m = result["matrix"]
    assert m["chaser"]["idle"]["win_rate"] >= 0.95
    for a in m:
        for b in m[a]:
            assert m[a][b]["wins"] == m[b][a]["losses"] and m[a][b]["draws"] == m[b][a]["draws"]
            assert m[a][b]["wins"] + m[a][b]["draws"] + m[a][b]["losses"] == 40
    assert result["ffa"]["fighters"] == 4
    assert sum(r["win_rate"] + r["draw_rate"] for r in result["ffa"]["results"].values()) >= 1 - 1e-9
    assert result["ffa"]["results"]["chaser"]["mean_rank"] < result["ffa"]["results"]["idle"]["mean_rank"]
    again = compare(
        ["idle", "chaser", "random", f"charge={BOTS_FILE}:chase"], matches=40, ffa_matches=40, seed=0, bootstrap=50
    )
    assert again == result


def test_two_players_play_1v1_only_and_bad_settings_are_refused():
    result = compare(["chaser", "idle"], matches=10, bootstrap=10)
    assert result["ffa"] is None and [r["name"] for r in result["ratings"]] == ["chaser", "idle"]
    with pytest.raises(ValueError, match="rank_by"):
        compare(["chaser", "idle"], matches=10, rank_by="ffa")
    with pytest.raises(ValueError, match="ffa_fighters must be between 3 and 3"):
        compare(["chaser", "idle", "kiter"], ffa_fighters=4)
    with pytest.raises(ValueError, match="appear more than once"):
        compare(["chaser", "chaser"])


def test_unique_names_keep_the_shortest_distinguishing_suffix():
    assert unique_names(["runs/a/checkpoints/best.pt", "runs/b/checkpoints/best.pt", "chaser"]) == [
        "a/checkpoints/best.pt",
        "b/checkpoints/best.pt",
        "chaser",
    ]
    assert unique_names(["x/step_1.pt", "x/step_2.pt"]) == ["step_1.pt", "step_2.pt"]


def test_compare_cli_prints_ratings_and_writes_json(tmp_path):
    from policies import AgentCheckpoint, Policy

    torch.manual_seed(0)
    AgentCheckpoint(Policy()).save(tmp_path / "v1.pt")
    out = tmp_path / "compare.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluate.py"),
            "compare",
            str(tmp_path / "v1.pt"),
            "chaser",
            "idle",
            "--matches",
            "10",
            "--ffa-matches",
            "10",
            "--bootstrap",
            "20",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1v1 rating" in result.stdout and "FFA rating" in result.stdout and "v1.pt" in result.stdout
    data = json.loads(out.read_text())
    assert [r["rank"] for r in data["ratings"]] == [1, 2, 3]
    assert data["ratings"][0]["rating"] >= data["ratings"][-1]["rating"]
    assert set(data["matrix"]["chaser"]) == {"v1.pt", "idle"}
