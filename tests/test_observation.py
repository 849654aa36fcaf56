"""The full observation (env.observation: full) end to end: the env's 48 numbers start with the
basic 30, training and evaluation use it, and fighters of either kind meet: a basic fighter reads
the first 30 numbers, in evaluation and as a league's fixed opponent."""

import numpy as np
import pytest
import torch
from policy_files import make_checkpoint

from arena import FULL_OBS_SIZE, OBS_SIZE
from configs import CONFIG_DIR, ConfigError, load_config
from envs import ArenaEnv
from evaluation.evaluate import evaluate
from policies import AgentCheckpoint, Policy
from policies.network import widen_inputs
from train import train


def test_the_full_observation_extends_the_basic_one():
    basic, full = ArenaEnv(num_arenas=6, seed=4), ArenaEnv(num_arenas=6, seed=4, observation="full")
    obs_b, _ = basic.reset()
    obs_f, _ = full.reset()
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(0, 10, basic.num_agents).astype(np.int32)
        obs_b, *_ = basic.step(actions)
        obs_f, *_ = full.step(actions)
        assert obs_f.shape == (basic.num_agents, FULL_OBS_SIZE)
        np.testing.assert_array_equal(obs_f[:, :OBS_SIZE], obs_b)
        live = obs_f[:, 2] > 0
        cooldown, cos, sin = obs_f[live, 30], obs_f[live, 31], obs_f[live, 32]
        assert ((0 <= cooldown) & (cooldown <= 1)).all()
        np.testing.assert_allclose(cos**2 + sin**2, 1.0, atol=1e-5)
        np.testing.assert_allclose(np.cos(full.arena.facing[:, 0]), obs_f[::2, 31], atol=1e-6)


def test_observation_is_a_checked_config_key():
    assert load_config(CONFIG_DIR / "chaser-duel.yaml", ["--env.observation", "full"]).env.observation == "full"
    with pytest.raises(ConfigError, match="'env.observation' .* must be basic or full, got 'wide'"):
        load_config(CONFIG_DIR / "chaser-duel.yaml", ["--env.observation", "wide"])
    with pytest.raises(ConfigError, match="'env.observation' .* applies to the arena"):
        load_config(CONFIG_DIR / "cartpole.yaml", ["--env.observation", "full"])


def test_a_full_observation_fighter_trains_and_meets_basic_ones(tmp_path):
    overrides = ["--env.observation", "full", "--env.num_arenas", "32", "--train.num_steps", "16",
                 "--train.total_timesteps", "1500", "--eval.interval", "2", "--eval.matches", "8",
                 "--torch_threads", "1"]  # fmt: skip
    summary = train(CONFIG_DIR / "chaser-duel.yaml", overrides, run_dir=tmp_path / "run", progress=False)
    full = AgentCheckpoint.load(summary["latest"])
    assert full.obs_size == FULL_OBS_SIZE and summary["best_eval"]["chaser"]["matches"] == 8
    basic = make_checkpoint(tmp_path / "basic.pt", seed=1)
    results = evaluate(full, opponents=[str(basic), "chaser"], matches=10, seed=0)
    assert results[str(basic)]["matches"] == 10
    assert evaluate(str(basic), opponents=[str(tmp_path / "run" / "checkpoints" / "latest.pt")], matches=10)


def test_a_basic_fighter_fielded_in_a_full_observation_league_reads_the_first_30_numbers(tmp_path):
    policy = Policy()
    wider = widen_inputs(policy, FULL_OBS_SIZE)
    x = torch.randn(7, FULL_OBS_SIZE)
    torch.testing.assert_close(wider(x)[0], policy(x[:, :OBS_SIZE])[0])
    path = make_checkpoint(tmp_path / "runs" / "basic-fighter" / "checkpoints" / "best.pt", seed=2)
    overrides = ["--env.observation", "full", "--env.num_arenas", "32", "--train.num_steps", "16",
                 "--train.total_timesteps", "1200", "--eval.interval", "0", "--torch_threads", "1",
                 "--league.specialists", "[]", "--league.init_from", "null", "--league.fixed", "0.5",
                 "--league.bots", "0.18", "--league.fixed_opponents", f"[{path}]"]  # fmt: skip
    summary = train(CONFIG_DIR / "selfplay.yaml", overrides, run_dir=tmp_path / "run", progress=False)
    assert "basic-fighter" in summary["league"]["scores"]  # drawn and played
