"""--resume continues exactly: a run stopped mid-way (Ctrl-C or --stop-at) and resumed ends with
the same weights, optimizer state and TensorBoard scalars, bit for bit, as one that never
stopped (one torch thread, Serial backend). The stopped session's extra evaluation at its stop
step is the only difference, and TensorBoard keeps it."""

import signal
import subprocess
import sys

import pytest
import torch
from golden_runs import ROOT, pinned_env
from policy_files import make_checkpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from configs import CONFIG_DIR
from policies import read_checkpoint
from train import train
from training.state import TrainerState

TIMING = ("charts/SPS",)


def scalars(run_dir) -> dict:
    """(tag, step) -> value of every TensorBoard scalar but the timings (all sessions of the run)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        (tag, e.step): e.value
        for tag in events.Tags()["scalars"]
        if tag not in TIMING and not tag.startswith("perf/")
        for e in events.Scalars(tag)
    }


def assert_same_run(uninterrupted, resumed, stop_step):
    a, b = (
        read_checkpoint(uninterrupted / "checkpoints" / "latest.pt"),
        read_checkpoint(resumed / "checkpoints" / "latest.pt"),
    )
    assert a["global_step"] == b["global_step"] and a["model_version"] <= b["model_version"]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    adam_a, adam_b = a["trainer_state"]["optimizer"]["state"], b["trainer_state"]["optimizer"]["state"]
    for k in adam_a:
        for name, value in adam_a[k].items():
            assert torch.equal(value, adam_b[k][name]), (k, name)
    state_a = TrainerState.from_dict(a["trainer_state"])
    state_b = TrainerState.from_dict(b["trainer_state"])
    assert (state_a.iteration, state_a.episodes) == (state_b.iteration, state_b.episodes)
    expected, got = scalars(uninterrupted), scalars(resumed)
    differing = [key for key, value in expected.items() if got.get(key) != value]
    assert not differing, f"{len(differing)} scalars differ, first {differing[:5]}"
    extra = {tag for tag, step in set(got) - set(expected)}
    assert all(step == stop_step for _, step in set(got) - set(expected)), extra  # the stop-time evaluation only
    return got


SMALL = [
    "--env.num_arenas",
    "32",
    "--train.num_steps",
    "16",
    "--torch_threads",
    "1",
    "--log_interval",
    "0.01",
    "--seed",
    "5",
]
RUNS = {
    "aggression": (
        "chaser-duel.yaml",
        [
            "--train.total_timesteps",
            "4000",
            "--eval.interval",
            "3",
            "--eval.matches",
            "8",
            "--checkpoint_interval",
            "2",
        ],
        1700,
    ),
    # League: snapshots, prioritised draws and a curriculum that promotes at the stop step.
    "curriculum": (
        "tournament.yaml",
        [
            "--train.total_timesteps",
            "4500",
            "--eval.interval",
            "0",
            "--league.snapshot_interval",
            "700",
            "--league.rating_interval",
            "1",
            "--league.stages",
            "[{name: duel, fighters: 2, bots: 1.0, latest: 0.0, past: "
            "0.0, promote: {max_steps: 2000}}, {name: ffa, fighters: 4, learners: 2, "
            "num_arenas: 8}]",
        ],
        1900,
    ),
    # Self-play against snapshots (half of them greedy), bots and a fixed opponent, which a resumed
    # run reloads from disk while the uninterrupted one holds it in memory.
    "selfplay": (
        "selfplay.yaml",
        [
            "--train.total_timesteps",
            "3500",
            "--eval.interval",
            "0",
            "--league.snapshot_interval",
            "600",
            "--league.specialists",
            "[]",
            "--league.init_from",
            "null",
            "--league.fixed",
            "0.3",
            "--league.bots",
            "0.38",
            "--league.opponent_greedy",
            "0.5",
        ],
        1500,
    ),
}
# The same with memory and the full observation: the learner's LSTM state and the recurrent
# snapshots' state per opponent slot are saved and restored; the basic fixed opponent is widened.
MEMORY_AND_FULL_OBSERVATION = ["--policy.kind", "lstm", "--env.observation", "full"]
RUNS["selfplay_lstm"] = ("selfplay.yaml", MEMORY_AND_FULL_OBSERVATION + RUNS["selfplay"][1], 1500)


@pytest.mark.parametrize("name", list(RUNS))
def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one(name, tmp_path):
    config, overrides, stop_at = RUNS[name]
    if name.startswith("selfplay"):
        overrides = overrides + ["--league.fixed_opponents", f"[{make_checkpoint(tmp_path / 'fixed.pt', seed=3)}]"]
    whole = train(CONFIG_DIR / config, SMALL + overrides, run_dir=tmp_path / "whole", progress=False)
    first = train(CONFIG_DIR / config, SMALL + overrides, run_dir=tmp_path / "parts", progress=False, stop_at=stop_at)
    assert first["interrupted"] is False and stop_at <= first["global_step"] < whole["global_step"]
    resumed = train(resume=tmp_path / "parts", progress=False)
    assert resumed["global_step"] == whole["global_step"] and resumed["episodes"] == whole["episodes"]
    got = assert_same_run(tmp_path / "whole", tmp_path / "parts", first["global_step"])
    if name == "aggression":  # TensorBoard kept the stop step's evaluation (purge_step is the step after it)
        assert ("eval/chaser/win_rate", first["global_step"]) in got
    elif name == "curriculum":
        assert whole["league"]["stage_history"] == resumed["league"]["stage_history"]
        # The curriculum promoted at the very update the run stopped after: the stopped run promotes
        # too, so that the state it saves is the one the uninterrupted run continued from.
        assert resumed["league"]["stage_history"][1]["from_step"] == first["global_step"]


def train_py(*args):
    """train.py in a subprocess, with the golden runs' portable numerics."""
    command = [sys.executable, str(ROOT / "train.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=pinned_env(), timeout=300)


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path):
    """A real SIGINT lands whenever it lands: the run still stops after an update and resumes exactly."""
    config, overrides, _ = RUNS["aggression"]
    args = [str(CONFIG_DIR / config), *SMALL, *overrides, "--train.total_timesteps", "12000"]
    whole = train_py(*args, "--run-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, "--run-dir", str(tmp_path / "parts")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=pinned_env(),
    )
    try:
        for _ in range(3):  # a few progress lines: training is under way
            assert proc.stdout.readline().startswith("step")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    stopped = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.pt")["global_step"]
    resumed = train_py("--resume", str(tmp_path / "parts"))
    assert resumed.returncode == 0, resumed.stderr
    assert "start fresh matches" not in resumed.stdout
    assert_same_run(tmp_path / "whole", tmp_path / "parts", stopped)


def test_envs_that_cannot_save_their_state_resume_with_fresh_matches_and_say_so(tmp_path):
    overrides = [
        "--env.name",
        "gymnasium",
        "--env.id",
        "CartPole-v1",
        "--env.num_envs",
        "2",
        "--train.num_steps",
        "64",
        "--train.total_timesteps",
        "600",
        "--torch_threads",
        "1",
        "--eval.interval",
        "0",
    ]
    train(CONFIG_DIR / "cartpole.yaml", overrides, run_dir=tmp_path / "run", progress=False, stop_at=200)
    resumed = train_py("--resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert "start fresh matches" in resumed.stdout
