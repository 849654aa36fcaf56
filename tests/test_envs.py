"""The env contract: PufferLib native buffers and vectorization, the Gymnasium and
PettingZoo views, infos, determinism and errors."""

import warnings

import numpy as np
import pufferlib
import pufferlib.vector
import pytest

from arena import ArenaConfigError
from envs import ArenaEnv, ArenaGymEnv, ArenaParallelEnv


def random_actions(env, rng):
    return rng.integers(0, 10, env.num_agents).astype(np.int32)


def test_arena_env_spaces_and_agents():
    env = ArenaEnv(num_arenas=5, fighters_per_arena=4, opponents=["chaser"])
    assert env.num_agents == 15
    assert env.single_observation_space.shape == (30,)
    assert env.single_observation_space.dtype == np.float32
    assert env.single_action_space.n == 10
    assert isinstance(env, pufferlib.PufferEnv)


def test_arena_env_writes_in_place_and_masks_the_eliminated():
    env = ArenaEnv(num_arenas=64, fighters_per_arena=4, seed=3, report_interval=10)
    obs, infos = env.reset()
    assert obs is env.observations and infos == []
    rng = np.random.default_rng(0)
    saw_masked = False
    for _ in range(200):
        out = env.step(random_actions(env, rng))
        assert out[0] is env.observations and out[1] is env.rewards
        assert out[2] is env.terminals and out[3] is env.truncations
        masked = ~env.masks
        if masked.any():
            saw_masked = True
            assert not env.observations[masked].any()
            # A masked row only carries the reward of the step that eliminated it.
            assert not env.rewards[masked & ~env.terminals].any()
    assert saw_masked


def test_arena_env_reports_match_stats():
    env = ArenaEnv(num_arenas=32, fighters_per_arena=2, opponents=["chaser"], report_interval=25, seed=1)
    env.reset()
    rng = np.random.default_rng(0)
    reports = []
    for _ in range(400):
        reports += env.step(random_actions(env, rng))[4]
    assert reports, "no info report in 400 steps"
    for info in reports:
        assert set(info) >= {"episode_return", "episode_length", "win", "knockouts", "ring_outs", "rank", "matches"}
        assert info["matches"] >= 1
        assert 0.0 <= info["win"] <= 1.0 and 1.0 <= info["rank"] <= 2.0
    # A random fighter loses to the chaser almost always.
    total = sum(r["matches"] for r in reports)
    wins = sum(r["win"] * r["matches"] for r in reports)
    assert wins / total < 0.2


def test_arena_env_same_seed_same_observations():
    def run(seed):
        env = ArenaEnv(num_arenas=8, fighters_per_arena=3, opponents=["random"], seed=seed)
        env.reset()
        rng = np.random.default_rng(1)
        trace = []
        for _ in range(300):
            trace.append(env.step(random_actions(env, rng))[0].copy())
        return np.stack(trace)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_arena_env_rejects_bad_actions_and_configs():
    env = ArenaEnv(num_arenas=2, fighters_per_arena=2)
    env.reset()
    with pytest.raises(ValueError, match="outside"):
        env.step(np.array([0, 10, 0, 0]))
    with pytest.raises(ValueError, match="outside"):
        env.step(np.array([0, 2**32 + 3, 0, 0], dtype=np.uint64))  # must not wrap to 3
    with pytest.raises(ValueError, match="expected 4 actions"):
        env.step(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="integers"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ArenaConfigError, match="leave at least one"):
        ArenaEnv(fighters_per_arena=2, opponents=["chaser", "idle"])
    with pytest.raises(ArenaConfigError, match="report_interval"):
        ArenaEnv(report_interval=0)
    with pytest.raises(ArenaConfigError, match="unknown rule"):
        ArenaEnv(gravity=9.8)
    with pytest.raises(ArenaConfigError, match="radius"):
        ArenaEnv(radius=-6.0)
    with pytest.raises(ArenaConfigError, match="num_arenas"):
        ArenaEnv(num_arenas=0)


@pytest.mark.parametrize("backend", ["Serial", "Multiprocessing"])
def test_arena_env_under_pufferlib_vector(backend):
    kwargs = dict(num_workers=2) if backend == "Multiprocessing" else {}
    env_kwargs = dict(num_arenas=16, fighters_per_arena=2, opponents=["chaser"], threads=1, report_interval=5)
    vecenv = pufferlib.vector.make(
        ArenaEnv, backend=getattr(pufferlib.vector, backend), num_envs=2, env_kwargs=env_kwargs, **kwargs
    )
    try:
        obs, _ = vecenv.reset(seed=3)
        assert obs.shape == (32, 30)
        rng = np.random.default_rng(0)
        infos = []
        for _ in range(200):
            obs, rewards, terminals, truncations, step_infos = vecenv.step(rng.integers(0, 10, vecenv.num_agents))
            infos += step_infos
        assert obs.shape == (32, 30) and rewards.shape == (32,)
        assert infos and "win" in infos[0]
    finally:
        vecenv.close()


def test_serial_and_multiprocessing_agree():
    env_kwargs = dict(num_arenas=4, fighters_per_arena=2, opponents=["kiter"], threads=1)
    traces = []
    for backend, kwargs in [(pufferlib.vector.Serial, {}), (pufferlib.vector.Multiprocessing, {"num_workers": 2})]:
        vecenv = pufferlib.vector.make(ArenaEnv, backend=backend, num_envs=2, env_kwargs=env_kwargs, **kwargs)
        try:
            vecenv.reset(seed=11)
            actions = np.random.default_rng(2).integers(0, 10, (50, vecenv.num_agents))
            traces.append(np.stack([vecenv.step(a)[0].copy() for a in actions]))
        finally:
            vecenv.close()
    np.testing.assert_array_equal(traces[0], traces[1])


def test_gymnasium_view_passes_env_checker():
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker's advice on infinite bounds and render modes
        check_env(ArenaGymEnv(opponents=["chaser", "kiter"], seed=1), skip_render_check=True)


def test_gymnasium_view_episode():
    env = ArenaGymEnv(opponents=["chaser"], seed=2)
    obs, info = env.reset(seed=2)
    assert obs.shape == (30,) and obs.dtype == np.float32
    done, steps = False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(8)  # idle against a chaser
        done = terminated or truncated
        steps += 1
    assert terminated and info["win"] is False and info["rank"] == 2
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    with pytest.raises(ValueError, match="not in"):
        env.reset()
        env.step(12)
    first, _ = env.reset(seed=9)
    again, _ = env.reset(seed=9)
    np.testing.assert_array_equal(first, again)


def test_pettingzoo_view_passes_parallel_api_test():
    from pettingzoo.test import parallel_api_test

    parallel_api_test(ArenaParallelEnv(fighters=4, seed=1), num_cycles=300)


def test_pettingzoo_view_removes_the_eliminated():
    env = ArenaParallelEnv(fighters=3, seed=0)
    obs, _ = env.reset()
    assert set(obs) == {"fighter_0", "fighter_1", "fighter_2"}
    rng = np.random.default_rng(0)
    seen = [len(env.agents)]
    while env.agents:
        env.step({a: int(rng.integers(0, 10)) for a in env.agents})
        seen.append(len(env.agents))
    assert seen == sorted(seen, reverse=True) and seen[-1] == 0
    with pytest.raises(RuntimeError, match="call reset"):
        env.step({})
