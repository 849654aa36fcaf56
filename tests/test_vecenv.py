"""The trainer's vector env (training/vecenv.py): every env seeded apart whatever the backend and the
split, Multiprocessing running exactly what Serial runs, the envs' state saved and restored, and
envs train.py cannot train refused with one line, nothing left on disk."""

import os
import subprocess
import sys

import numpy as np
import pytest
from golden_runs import ROOT

from configs import CONFIG_DIR, EnvConfig
from training.vecenv import env_state, make_vecenv, start_env


def rollout(vecenv, steps=40, seed=9):
    """Observations after each of ``steps`` seeded random steps, and the first ones."""
    rng = np.random.default_rng(0)
    first, _, _ = start_env(vecenv, seed, "cpu")
    seen = [first.numpy().copy()]
    for _ in range(steps):
        vecenv.send(rng.integers(0, vecenv.single_action_space.n, vecenv.num_agents).astype(np.int32))
        obs = vecenv.recv()[0]
        seen.append(np.array(obs, copy=True))
    vecenv.close()
    return np.stack(seen)


@pytest.mark.parametrize("name", ["arena", "gymnasium"])
def test_multiprocessing_runs_what_serial_runs_and_seeds_every_env_apart(name):
    """4 envs on 2 workers: pufferlib alone seeds two of them alike (seed + 1 twice)."""
    env = EnvConfig(name=name, id="CartPole-v1" if name == "gymnasium" else None, num_envs=4, num_arenas=3)
    serial = rollout(make_vecenv(env, seed=9))
    env.backend, env.num_workers = "Multiprocessing", 2
    multi = rollout(make_vecenv(env, seed=9))
    np.testing.assert_array_equal(serial, multi)
    per_env = serial.reshape(serial.shape[0], 4, -1)  # (steps, envs, that env's rows)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.array_equal(per_env[:, a], per_env[:, b]), f"envs {a} and {b} ran the same episodes"


def test_mismatched_workers_are_a_config_error():
    from configs import ConfigError

    env = EnvConfig(num_envs=3, num_arenas=2, backend="Multiprocessing", num_workers=2)
    with pytest.raises(ConfigError, match=r"env.num_envs \(3\) must be a multiple of env.num_workers \(2\)"):
        make_vecenv(env, seed=0)


def test_the_arena_state_saved_mid_run_continues_exactly():
    env = EnvConfig(num_envs=2, num_arenas=8)
    a = make_vecenv(env, seed=4)
    start_env(a, 4, "cpu")
    rng = np.random.default_rng(1)
    actions = [rng.integers(0, 10, a.num_agents).astype(np.int32) for _ in range(60)]
    for act in actions[:30]:
        a.send(act)
        a.recv()
    saved = env_state(a)
    b = make_vecenv(env, seed=123)  # another seed: the restored state must win over it
    obs_b, mask_b, restored = start_env(b, 123, "cpu", saved)
    assert restored
    np.testing.assert_array_equal(obs_b.numpy(), np.concatenate([e["buffers"]["observations"] for e in saved["envs"]]))
    for act in actions[30:]:
        a.send(act)
        b.send(act)
        out_a, out_b = a.recv(), b.recv()
        for x, y in zip(out_a[:4], out_b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert out_a[4] == out_b[4]  # the same episode reports
    a.close()
    b.close()


def run_train(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


@pytest.mark.parametrize(
    "env_id, message",
    [
        ("NoSuchEnv-v0", "env.id 'NoSuchEnv-v0' is not a Gymnasium env"),
        ("Pendulum-v1", "env.id 'Pendulum-v1' has Box actions .* discrete actions only"),
    ],
)
def test_envs_train_py_cannot_train_are_one_line_errors_and_leave_nothing(tmp_path, env_id, message):
    import re

    run_dir = tmp_path / "run"
    result = run_train(str(CONFIG_DIR / "cartpole.yaml"), "--env.id", env_id, "--run-dir", str(run_dir))
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_a_failed_start_leaves_no_run_folder_but_keeps_a_resumable_one(tmp_path):
    """A wrong --init-from fails before the loop: the new folder is removed; a run that saved
    checkpoints keeps its folder whatever happens next."""
    bad = tmp_path / "not-a-checkpoint.pt"
    bad.write_bytes(b"nothing")
    result = run_train(str(CONFIG_DIR / "cartpole.yaml"), "--init-from", str(bad), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "not a readable checkpoint" in result.stderr
    assert not (tmp_path / "run").exists()
