"""The gauntlet (every built-in bot and the held-out variants, and the worst case) and bot
variants as evaluation players: the Python API, the CLI and its errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from policy_files import make_checkpoint

import evaluate as cli
from arena import BOT_NAMES, HELD_OUT_VARIANTS
from evaluation.evaluate import evaluate
from evaluation.gauntlet import gauntlet, worst_case

ROOT = Path(__file__).resolve().parents[1]


def idle(obs):
    return np.full(len(obs), 8)


def test_gauntlet_plays_every_bot_and_the_held_out_variants():
    result = gauntlet(idle, matches=6, seed=1, extra=["chaser[noise=0.5]", "chaser"])
    assert list(result.results) == [*BOT_NAMES, *HELD_OUT_VARIANTS, "chaser[noise=0.5]"]
    assert "striker" in result.results and all(r["matches"] == 6 for r in result.results.values())
    rates = {k: r["win_rate"] for k, r in result.results.items()}
    assert result.worst.win_rate == min(rates.values()) and rates[result.worst.opponent] == result.worst.win_rate
    assert result.to_json()["worst"] == {"opponent": result.worst.opponent, "win_rate": result.worst.win_rate}
    assert worst_case({"a": {"win_rate": 0.5}, "b": {"win_rate": 0.2}, "c": {"win_rate": 0.2}}).opponent == "b"


def test_variants_play_on_either_side():
    results = evaluate(idle, ["far_kiter", "kiter[retreat=2.0;noise=0.1]"], matches=8, seed=0)
    assert set(results) == {"far_kiter", "kiter[retreat=2.0;noise=0.1]"}
    # A variant as the evaluated fighter plays from an agent slot through the kernel's bot code.
    as_learner = evaluate("chaser[approach=0.3]", ["idle"], matches=8, seed=0)
    assert as_learner["idle"]["matches"] == 8 and as_learner["idle"]["draw_rate"] < 1.0


def test_gauntlet_cli_writes_results_and_the_worst_case(tmp_path):
    model = make_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "gauntlet.json"
    command = [sys.executable, str(ROOT / "evaluate.py"), "gauntlet", str(model), "--matches", "4"]
    command += ["--seed", "2", "--json", str(out), "--opponents", "kiter[retreat=2.0;noise=0.1],uniform"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "worst case:" in result.stdout and "far_kiter *" in result.stdout
    data = json.loads(out.read_text())
    assert list(data["results"]) == [*BOT_NAMES, *HELD_OUT_VARIANTS, "kiter[retreat=2.0;noise=0.1]", "uniform"]
    assert set(data["results"]["striker"]) >= {"win_rate", "ci95", "draw_rate", "avg_reward", "matches"}
    lowest = min(r["win_rate"] for r in data["results"].values())
    assert data["worst"]["win_rate"] == lowest == data["results"][data["worst"]["opponent"]]["win_rate"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["gauntlet", "runs/nope.pt"], "error: checkpoint 'runs/nope.pt' does not exist"),
        (["gauntlet", "idle", "--opponents", "far_kitr"], "did you mean 'far_kiter'"),
        (["gauntlet", "idle", "--opponents", "kiter[retret=2]"], "unknown parameter 'retret'"),
        (["gauntlet", "idle", "--opponents", "kiter[noise=2]"], "noise must be in [0, 1], got 2.0"),
        (["idle", "--opponents", "chaser[approach=0.01]"], "approach must be in [0.05, 1], got 0.01"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(args, message, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
