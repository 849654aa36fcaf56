"""best.pt's choice: the periodic score, and the final replay of the strongest candidates."""

import json
import re
from types import SimpleNamespace

import pytest
from test_train import TINY

from configs import CONFIG_DIR, ConfigError, load_config
from policies import read_checkpoint
from train import train
from training.selection import final_seed, final_selection, format_selection, score
from training.state import EvalRecord, Score, TrainerState


def results(**win_rates):
    return {o: {"win_rate": w, "avg_reward": 10 * w, "mean_rank": 2 - w} for o, w in win_rates.items()}


def test_score_is_the_mean_or_the_weakest_opponent_and_ranks_count_negated():
    r = results(random=1.0, chaser=0.6)
    assert score(r, "win_rate", "mean").as_list() == pytest.approx([0.8, 8.0])
    assert score(r, "win_rate", "worst").as_list() == pytest.approx([0.6, 8.0])
    assert score(r, "mean_rank", "worst").as_list() == pytest.approx([-1.4, 8.0])  # rank 1.4 is the weaker one
    assert score(results(a=0.7), "win_rate", "mean") > score(results(a=0.6), "win_rate", "mean")


def make_candidates(folder, periodic):
    """One fake checkpoint file per periodic score; its bytes name it."""
    folder.mkdir(exist_ok=True)
    candidates = []
    for i, s in enumerate(periodic):
        name = f"step_{1000 * (i + 1):012d}.pt"
        (folder / name).write_bytes(name.encode())
        candidates.append(EvalRecord(1000 * (i + 1), Score(s, 0.0), name))
    return candidates


def test_final_selection_replays_the_top_candidates_and_copies_the_best_over_best_pt(tmp_path):
    ckpts = tmp_path / "checkpoints"
    candidates = make_candidates(ckpts, [0.50, 0.95, 0.90, 0.70, 0.85])
    (ckpts / "best.pt").write_bytes(b"the periodic best")
    truth = {"step_000000002000.pt": 0.86, "step_000000003000.pt": 0.92, "step_000000005000.pt": 0.88}
    played = []

    def play(path, matches, seed):
        played.append((path.rsplit("/", 1)[-1], matches, seed))
        return results(chaser=truth[path.rsplit("/", 1)[-1]], random=1.0)

    config = SimpleNamespace(final_candidates=3, final_matches=500, seed=12345, metric="win_rate", aggregate="worst")
    selection = final_selection(candidates, ckpts, config, play, log=lambda line: None)
    # The three best periodic scores (0.95, 0.90, 0.85) replay; the lucky 0.95 drops to 0.86.
    assert [p[0] for p in played] == ["step_000000002000.pt", "step_000000003000.pt", "step_000000005000.pt"]
    assert {(p[1], p[2]) for p in played} == {(500, 12346)}
    assert selection["chosen"] == "step_000000003000.pt" and selection["global_step"] == 3000
    assert (ckpts / "best.pt").read_bytes() == b"step_000000003000.pt"
    assert selection["results"]["chaser"]["win_rate"] == 0.92 and selection["matches"] == 500
    assert [c["periodic_score"][0] for c in selection["candidates"]] == [0.95, 0.90, 0.85]
    assert "**step_000000003000.pt**" in format_selection(selection)


def test_final_selection_skips_deleted_candidates_and_says_so(tmp_path):
    ckpts = tmp_path / "checkpoints"
    candidates = make_candidates(ckpts, [0.9, 0.8])
    (ckpts / candidates[0].checkpoint).unlink()
    lines = []
    config = SimpleNamespace(final_candidates=2, final_matches=10, seed=0, metric="win_rate", aggregate="mean")
    selection = final_selection(candidates, ckpts, config, lambda p, m, s: results(chaser=0.5), log=lines.append)
    assert selection["chosen"] == candidates[1].checkpoint and len(selection["candidates"]) == 1
    assert "no longer on disk" in lines[0] and candidates[0].checkpoint in lines[0]
    (ckpts / candidates[1].checkpoint).unlink()
    assert final_selection(candidates, ckpts, config, lambda p, m, s: results(chaser=0.5), log=lines.append) is None


def test_final_seed_stays_in_numpy_range():
    assert final_seed(12345) == 12346 and final_seed(2**32 - 1) == 0


@pytest.mark.parametrize(
    "key,value,message",
    [("eval.final_candidates", "-1", "an integer >= 0"), ("eval.final_matches", "0", "an integer >= 1")],
)
def test_bad_final_selection_settings_are_errors(key, value, message):
    with pytest.raises(ConfigError, match=rf"'{key}'.*{message}"):
        load_config(CONFIG_DIR / "chaser-duel.yaml", [f"--{key}", value])


def test_a_run_with_final_selection_replays_its_evaluations_including_those_before_a_resume(tmp_path):
    run_dir = tmp_path / "run"
    final = ["--eval.final_candidates", "3", "--eval.final_matches", "12"]
    first = train(CONFIG_DIR / "chaser-duel.yaml", TINY + final, run_dir=run_dir, progress=False)
    assert len(first["final_selection"]["candidates"]) == 3
    summary = train(None, ["--train.total_timesteps", "6000", *final], resume=run_dir, progress=False)
    evals = TrainerState.from_dict(read_checkpoint(run_dir / "checkpoints" / "latest.pt")["trainer_state"]).evals
    steps = [e.global_step for e in evals]
    assert steps == sorted(steps) and steps[0] < first["global_step"] < steps[-1]  # kept across the resume
    selection = summary["final_selection"]
    by_periodic = sorted(evals, key=lambda e: (e.score, e.global_step), reverse=True)[:3]
    assert [c["checkpoint"] for c in selection["candidates"]] == [e.checkpoint for e in by_periodic]
    best = run_dir / "checkpoints" / "best.pt"
    assert best.read_bytes() == (run_dir / "checkpoints" / selection["chosen"]).read_bytes()
    assert summary["best_eval"] == selection["results"] and summary["best_eval"]["chaser"]["matches"] == 12
    assert json.loads((run_dir / "summary.json").read_text())["final_selection"]["chosen"] == selection["chosen"]


def test_select_re_picks_best_pt_of_a_run_trained_without_it_from_its_tensorboard_records(tmp_path, capsys):
    from evaluate import main

    run_dir = tmp_path / "run"
    train(CONFIG_DIR / "chaser-duel.yaml", TINY, run_dir=run_dir, progress=False)
    best = run_dir / "checkpoints" / "best.pt"
    periodic_best = best.read_bytes()
    assert (
        main(
            [
                "select",
                str(run_dir),
                "--candidates",
                "2",
                "--matches",
                "8",
                "--dry-run",
                "--json",
                str(tmp_path / "sel.json"),
            ]
        )
        == 0
    )
    assert best.read_bytes() == periodic_best  # a dry run changes nothing
    selection = json.loads((tmp_path / "sel.json").read_text())
    assert len(selection["candidates"]) == 2 and selection["matches"] == 8 and selection["seed"] == 12346
    on_disk = {p.name for p in (run_dir / "checkpoints").glob("step_*.pt")}
    assert {c["checkpoint"] for c in selection["candidates"]} <= on_disk
    chosen_version = read_checkpoint(run_dir / "checkpoints" / selection["chosen"])["model_version"]
    assert (
        f"would copy {run_dir / 'checkpoints' / selection['chosen']} (model version {chosen_version})"
        in capsys.readouterr().out
    )
    assert main(["select", str(run_dir), "--candidates", "2", "--matches", "8"]) == 0
    assert best.read_bytes() == (run_dir / "checkpoints" / selection["chosen"]).read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["select", "nowhere"], r"'nowhere' is not a run folder \(no config.yaml\)"),
        (["select", ".", "--candidates", "0"], "--candidates must be at least 1, got 0"),
    ],
)
def test_select_bad_input_is_a_one_line_error(args, message, capsys):
    from evaluate import main

    assert main(args) == 2
    assert re.search(message, capsys.readouterr().err)
