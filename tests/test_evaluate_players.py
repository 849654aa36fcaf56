"""Players in evaluation: bots on both sides, callables given as module:function, checkpoints
against checkpoints, and the errors for players that cannot play."""

from pathlib import Path

import eval_bots as bots
import numpy as np
import pytest
import torch

from evaluate import evaluate, main
from evaluation.players import PlayerError, resolve_player
from policies import AgentCheckpoint, CheckpointError, Policy

ROOT = Path(__file__).resolve().parents[1]
BOTS_FILE = str(Path(__file__).with_name("eval_bots.py"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of a few hundred rows: a second thread only waits
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("players")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(str(AgentCheckpoint(Policy(), global_step=seed).save(folder / f"model_{seed}.pt")))
    return paths


def test_chaser_beats_idle_and_random_vs_random_is_even():
    chaser = evaluate("chaser", ["idle"], matches=100, seed=0)["idle"]
    assert chaser["win_rate"] >= 0.97 and chaser["matches"] == 100
    assert chaser["knockouts"] + chaser["ring_outs"] >= 0.97  # it wins by eliminating, not on time
    coin = evaluate("random", ["random"], matches=400, seed=0)["random"]
    assert 0.4 <= coin["win_rate"] <= 0.6
    assert coin["ci95"][0] < 0.5 < coin["ci95"][1]
    losses = 1 - coin["win_rate"] - coin["draw_rate"]
    assert abs(coin["win_rate"] - losses) < 0.1


def test_same_seed_same_results_for_every_kind_of_player(checkpoints):
    opponents = ["chaser", checkpoints[1], f"{BOTS_FILE}:chase"]
    first = evaluate(checkpoints[0], opponents, matches=24, seed=7)
    assert first == evaluate(checkpoints[0], opponents, matches=24, seed=7)
    assert first != evaluate(checkpoints[0], opponents, matches=24, seed=8)
    assert list(first) == opponents and all(r["matches"] == 24 for r in first.values())


def test_callable_opponents_by_module_name_and_by_file(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    by_module = evaluate("idle", ["eval_bots:chase"], matches=30, seed=1)["eval_bots:chase"]
    by_file = evaluate("idle", {"chase": f"{BOTS_FILE}:chase"}, matches=30, seed=1)["chase"]
    assert by_module == by_file
    assert by_module["win_rate"] == 0.0 and by_module["knocked_out"] + by_module["rung_out"] >= 0.9


def test_policy_rows_reach_the_right_players():
    """Two policies in one ring: each side's rows go to its own function, in either slot."""
    won = evaluate(bots.chase, {"idle": bots.idle}, matches=40, seed=2)["idle"]
    lost = evaluate(bots.idle, {"chase": bots.chase}, matches=40, seed=2)["chase"]
    assert won["win_rate"] >= 0.95 and lost["win_rate"] == 0.0
    assert won["matches"] == lost["matches"] == 40
    # A built-in bot in a policy's place plays as the bot does: chaser vs a policy that idles.
    assert evaluate("chaser", {"idle": bots.idle}, matches=40, seed=2)["idle"]["win_rate"] >= 0.95
    # Free-for-all: the learner against 3 copies of a callable.
    ffa = evaluate(bots.chase, {"idle": bots.idle}, matches=20, seed=2, fighters=4)["idle"]
    assert ffa["matches"] == 20 and ffa["mean_rank"] < 1.5


def test_checkpoint_against_itself_is_even(checkpoints):
    """Slots alternate, so a policy against itself wins as often as it loses (within 4 sd)."""
    n = 400
    r = evaluate(checkpoints[0], [checkpoints[0]], matches=n, seed=3)[checkpoints[0]]
    losses = 1 - r["win_rate"] - r["draw_rate"]
    assert abs(r["win_rate"] - losses) < 4 * np.sqrt((r["win_rate"] + losses) / n)
    assert 1 <= r["mean_rank"] <= 2


def test_players_that_cannot_play_raise_clear_errors(tmp_path, checkpoints):
    with pytest.raises(PlayerError, match="did you mean 'chaser'"):
        resolve_player("chasr")
    with pytest.raises(PlayerError, match="cannot import 'no_such_module_xyz'"):
        resolve_player("no_such_module_xyz:act")
    with pytest.raises(PlayerError, match="has no attribute 'missing'.*chase"):
        resolve_player(f"{BOTS_FILE}:missing")
    with pytest.raises(PlayerError, match="not a function"):
        resolve_player(f"{BOTS_FILE}:NOT_CALLABLE")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_player(str(tmp_path / "gone.pt"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(Path(checkpoints[0]).read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        evaluate("chaser", [str(corrupt)], matches=2)
    for fn, message in (
        ("wrong_shape", r"shape \(\d+, 2\)"),
        ("out_of_range", "returned action 12"),
        ("broken", "RuntimeError: this bot has a bug"),
    ):
        with pytest.raises(PlayerError, match=message):
            evaluate("chaser", [f"{BOTS_FILE}:{fn}"], matches=2)


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys, checkpoints):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    cases = [
        ([str(tmp_path / "missing.pt")], "does not exist"),
        ([str(corrupt)], "not a readable checkpoint"),
        ([checkpoints[0], "--opponents", f"chaser,{tmp_path / 'gone.pt'}"], "does not exist"),
        ([checkpoints[0], "--opponents", "chaser,kiterr"], "did you mean 'kiter'"),
        ([checkpoints[0], "--opponents", "nope_module:f"], "cannot import"),
        ([checkpoints[0], "--opponents", f"{BOTS_FILE}:broken", "--matches", "2"], "has a bug"),
        (["chaser", "--db", str(tmp_path / "a.db"), "--matches", "2"], "records checkpoints"),
        (["compare", "chaser"], "at least 2 players"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
