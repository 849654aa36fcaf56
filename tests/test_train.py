"""The trainer: GAE by hand, one PPO update, a subprocess smoke run, resume, Ctrl-C, learning."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from configs import CONFIG_DIR, load_config
from policies import AgentCheckpoint, Policy, read_checkpoint
from policies.runtime import native_bf16, precision_name, select_precision
from train import train
from training.episodes import EpisodeLog
from training.ppo import compute_gae, ppo_loss, ppo_update

ROOT = Path(__file__).resolve().parents[1]
# A small arena run: 32 rings x 16 steps = 512 rows per update, a handful of updates.
TINY = [
    "--env.num_arenas",
    "32",
    "--train.num_steps",
    "16",
    "--train.total_timesteps",
    "3000",
    "--eval.interval",
    "2",
    "--eval.matches",
    "8",
    "--checkpoint_interval",
    "3",
    "--torch_threads",
    "1",
    "--log_interval",
    "0.01",
]


def test_gae_matches_a_hand_computed_example():
    # Columns: agent 0 has an episode end at t=1; agent 1 is eliminated at t=1 (terminal, then a
    # masked row) and its ring resets after; agent 2 has a masked row at t=1 without a terminal.
    rewards = torch.tensor([[1.0, 1.0, 1.0], [2.0, -10.0, 1.0], [3.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 1.0, 1.0], [1.0, 1.0, 1.0], [1.5, 7.0, 1.0]])
    dones = torch.tensor([[False, False, False], [True, True, False], [False, True, False]])
    masks = torch.tensor([[True, True, True], [True, True, False], [True, False, True]])
    next_value, next_mask = torch.tensor([2.0, 5.0, 1.0]), torch.tensor([True, True, True])
    advantages, returns = compute_gae(rewards, values, dones, masks, next_value, next_mask, gamma=0.9, gae_lambda=0.8)
    # agent 0: A2 = 3 + .9*2 - 1.5 = 3.3; A1 = 2 - 1 = 1 (episode ended); A0 = (1 + .9*1 - .5) + .72*1 = 2.12
    # agent 1: A2 = 0 - 7 = -7 (masked row, unused); A1 = -10 - 1 = -11; A0 = (1 + .9 - 1) + .72*(-11) = -7.02
    # agent 2: A2 = .9; A1 = .9 + .72*.9 = 1.548; A0 = 1 - 1 = 0 (the next row is masked: no bootstrap)
    expected = torch.tensor([[2.12, -7.02, 0.0], [1.0, -11.0, 1.548], [3.3, -7.0, 0.9]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def rollout_batch(policy, n):
    """A batch of n random observations with the policy's own actions, log-probabilities and values."""
    obs = torch.randn(n, 30)
    with torch.no_grad():
        actions, logprobs, _, values = policy.get_action_and_value(obs)
    return dict(
        obs=obs,
        actions=actions,
        logprobs=logprobs,
        values=values,
        advantages=torch.randn(n),
        returns=values + torch.randn(n),
    )


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_one_ppo_update_lowers_the_loss_on_a_fixed_batch(precision):
    torch.manual_seed(0)
    policy = Policy()
    batch = rollout_batch(policy, 2048)
    args = load_config(CONFIG_DIR / "base.yaml").train
    before, _ = ppo_loss(policy, batch, args)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3, eps=1e-5)
    stats = ppo_update(policy, optimizer, batch, args, precision)
    after, _ = ppo_loss(policy, batch, args)
    assert after.item() < before.item() - 0.01
    assert stats["epochs"] == args.update_epochs and 0 <= stats["clipfrac"] <= 1
    assert all(p.dtype == torch.float32 for p in policy.parameters())  # mixed precision: the weights stay float32


def test_bfloat16_loss_matches_float32_within_its_rounding():
    """The bfloat16 update computes the same loss and gradient as float32, to bfloat16's ~3 digits."""
    torch.manual_seed(1)
    policy = Policy()
    for layer in (policy.network[0], policy.network[2], policy.actor):  # logits of a trained size, not near 0
        torch.nn.init.normal_(layer.weight, std=0.3)
    batch = rollout_batch(policy, 4096)
    args = load_config(CONFIG_DIR / "base.yaml").train
    results = {}
    for precision in (torch.float32, torch.bfloat16):
        policy.zero_grad()
        loss, stats = ppo_loss(policy, batch, args, precision)
        loss.backward()
        results[precision] = (loss.item(), stats, torch.cat([p.grad.flatten() for p in policy.parameters()]))
    (loss32, stats32, grad32), (loss16, stats16, grad16) = results[torch.float32], results[torch.bfloat16]
    assert loss32 == pytest.approx(loss16, rel=0.02, abs=0.01)
    assert stats32["approx_kl"].item() == pytest.approx(0.0, abs=1e-6)  # float32 recomputes the rollout's numbers
    assert stats16["approx_kl"].item() < 1e-3  # bfloat16 rounding moves them a little
    assert torch.nn.functional.cosine_similarity(grad32, grad16, dim=0).item() > 0.99


def test_precision_names_and_auto():
    """auto picks bfloat16 only where the device multiplies it natively; names round-trip."""
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if native_bf16(cpu) else torch.float32
    assert select_precision("auto", cpu) == expected
    for name in ("float32", "bfloat16"):
        assert precision_name(select_precision(name, cpu)) == name


def test_episode_log_weights_reports_by_matches():
    log = EpisodeLog(window=100)
    assert (
        log.add(
            [{"episode_return": 1.0, "win": 0.0, "matches": 30}, {"episode_return": 3.0, "win": 1.0, "matches": 10}]
        )
        == 40
    )
    assert log.recent_mean("episode_return") == pytest.approx(1.5)
    assert log.pop_means()["win"] == pytest.approx(0.25)
    log.add([{"episode_return": 5.0, "matches": 100}])  # the window keeps the newest 100 episodes
    assert log.recent_mean("episode_return") == pytest.approx(5.0)


def run_train(*args, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_subprocess_run_writes_events_config_checkpoints_and_resumes(tmp_path):
    run_dir, db_path = tmp_path / "run", tmp_path / "arena.db"
    result = run_train("configs/chaser-duel.yaml", *TINY, "--run-dir", str(run_dir), "--db", str(db_path))
    assert result.returncode == 0, result.stderr
    assert "Finished" in result.stdout and "best vs random" in result.stdout
    assert list(run_dir.glob("events.out.tfevents.*"))
    resolved = load_config(run_dir / "config.yaml")
    assert resolved.env.num_arenas == 32 and resolved.train.total_timesteps == 3000
    model = AgentCheckpoint.load(run_dir / "checkpoints" / "latest.pt")
    actions, values = model.get_action_and_value(torch.zeros(5, 30).numpy())
    assert actions.shape == (5,) and values.shape == (5,)
    assert AgentCheckpoint.load(run_dir / "checkpoints" / "best.pt").metrics["eval_win_rate"] >= 0
    summary = json.loads((run_dir / "summary.json").read_text())
    first_step = summary["global_step"]
    assert first_step >= 3000 and summary["best_eval"]["chaser"]["matches"] == 8
    adam_steps = read_checkpoint(summary["latest"])["trainer_state"]["optimizer"]["state"][0]["step"]
    check_database(db_path, summary)

    result = run_train("--resume", str(run_dir), "--train.total_timesteps", "5000")
    assert result.returncode == 0, result.stderr
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["global_step"] >= 5000 and resumed["iterations"] > summary["iterations"]
    state = read_checkpoint(resumed["latest"])["trainer_state"]
    assert state["global_step"] == resumed["global_step"]
    assert state["optimizer"]["state"][0]["step"] > adam_steps  # Adam's moments carried over
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    check_database(db_path, resumed)


def check_database(db_path, summary):
    """The run registered its fighter, a metrics row per log line and a row per saved checkpoint."""
    from storage import Database

    db = Database.open(db_path)
    try:
        fighter = db.get_fighter(summary["fighter_id"])
        assert fighter is not None and fighter["glb_filename"] == "chaser-duel.glb"
        rows = db.list_checkpoints(summary["fighter_id"])
        assert rows and all(Path(r["weights_path"]).is_file() for r in rows)
        assert {r["training_mode"] for r in rows} == {"aggression"}
        # TINY evaluates every 2nd iteration and saves every 3rd: only evaluated checkpoints get a
        # row (a training win rate must not rank against evaluation ones), each once, and every
        # row's file holds the version the row names.
        iterations = [r["training_iteration"] for r in rows]
        assert iterations == sorted(set(iterations)) and all(i % 2 == 0 for i in iterations)
        assert summary["iterations"] in iterations
        for r in rows:
            assert AgentCheckpoint.load(r["weights_path"]).model_version == r["model_version"]
        # The version train.py names for best.pt is best.pt's, and /act can ask for it.
        assert summary["best_model_version"] == AgentCheckpoint.load(summary["best"]).model_version
        assert summary["best_model_version"] in {r["model_version"] for r in rows}
        best = db.best_checkpoint(summary["fighter_id"])
        assert AgentCheckpoint.load(best["weights_path"]).fighter_id == summary["fighter_id"]
        assert db.fighter_stats(summary["fighter_id"])["latest_training_metrics"] is not None
    finally:
        db.close()


def test_bad_config_and_checkpoint_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: " + str(CONFIG_DIR / "base.yaml") + "\ntrain:\n  num_stepz: 3\n")
    result = run_train(str(bad))
    assert result.returncode == 2 and "unknown key 'train.num_stepz'" in result.stderr and "bad.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_train(str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "not found" in result.stderr
    result = run_train("configs/chaser-duel.yaml", "--train.learning_rate", "fast")
    assert result.returncode == 2 and "'train.learning_rate' in the command line" in result.stderr
    result = run_train("--resume", str(tmp_path / "nothing-here"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    run_dir = tmp_path / "gpu-run"  # a GPU this machine lacks (no machine here has eight)
    result = run_train("configs/cartpole.yaml", "--device", "cuda:7", "--run-dir", str(run_dir))
    assert result.returncode == 2 and "device 'cuda:7' was asked for" in result.stderr
    assert "Traceback" not in result.stderr and not run_dir.exists()


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "configs/chaser-duel.yaml",
            *TINY,
            "--train.total_timesteps",
            "100000000",
            "--eval.interval",
            "0",
            "--run-dir",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout.readline().startswith("step")  # training is under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Stopped" in out and "--resume" in out and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] and summary["global_step"] > 0
    assert AgentCheckpoint.load(run_dir / "checkpoints" / "latest.pt").global_step == summary["global_step"]


def test_init_from_starts_a_new_run_from_trained_weights(tmp_path):
    source = Policy()
    torch.nn.init.constant_(source.actor.bias, 0.5)
    AgentCheckpoint(source).save(tmp_path / "source.pt")
    summary = train(
        CONFIG_DIR / "chaser-duel.yaml",
        TINY + ["--train.total_timesteps", "1", "--eval.interval", "0"],
        run_dir=tmp_path / "run",
        init_from=tmp_path / "source.pt",
        progress=False,
    )
    assert summary["global_step"] > 0 and summary["interrupted"] is False
    with pytest.raises(Exception, match="does not fit"):
        AgentCheckpoint(Policy(hidden_size=16)).save(tmp_path / "small.pt")
        train(CONFIG_DIR / "chaser-duel.yaml", TINY, run_dir=tmp_path / "run2", init_from=tmp_path / "small.pt")


def test_short_training_beats_the_random_policy(tmp_path):
    """Learning smoke test: ~0.4M agent-steps against the random bot (a few seconds)."""
    from evaluate import evaluate, uniform_policy

    summary = train(
        CONFIG_DIR / "chaser-duel.yaml",
        {
            "env.opponents": ["random"],
            "env.num_arenas": 256,
            "train.num_steps": 32,
            "train.total_timesteps": 400_000,
            "eval.interval": 0,
            "torch_threads": 1,
            "seed": 3,
        },
        run_dir=tmp_path / "run",
        progress=False,
    )
    trained = evaluate(AgentCheckpoint.load(summary["latest"]), ["random"], matches=100, seed=11)["random"]
    baseline = evaluate(uniform_policy(11), ["random"], matches=100, seed=11)["random"]
    assert baseline["win_rate"] < 0.65
    assert trained["win_rate"] >= 0.85 and trained["ci95"][0] > baseline["ci95"][1]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_same_seed_same_weights_in_either_precision(tmp_path, precision):
    """A seed reproduces a run exactly, bfloat16 updates included; summary.json names the precision."""
    overrides = TINY + [
        "--train.total_timesteps",
        "1500",
        "--eval.interval",
        "0",
        "--train.update_precision",
        precision,
    ]
    weights = []
    for name in ("a", "b"):
        summary = train(CONFIG_DIR / "chaser-duel.yaml", overrides, run_dir=tmp_path / name, progress=False)
        assert summary["update_precision"] == precision and summary["iterations"] >= 2
        weights.append(read_checkpoint(summary["latest"])["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


@pytest.mark.parametrize(
    "old, new", [("policies.bench", "training.bench"), ("policies.bench_imitation", "training.bench_imitation")]
)
def test_the_old_bench_names_run_the_new_ones(old, new):
    result = subprocess.run([sys.executable, "-m", old, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"moved to {new}" in result.stderr and "usage:" in result.stdout
