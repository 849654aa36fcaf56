"""The network and the checkpoint format."""

import numpy as np
import pytest
import torch

from policies import AgentCheckpoint, CheckpointError, Policy, atomic_torch_save, sample_actions


def test_network_shapes_and_init():
    torch.manual_seed(0)
    policy = Policy()
    assert [m.out_features for m in policy.network if isinstance(m, torch.nn.Linear)] == [128, 128]
    x = torch.randn(64, 30)
    logits, value = policy(x)
    assert logits.shape == (64, 10) and value.shape == (64,)
    # std 0.01 on the policy head: nearly uniform first actions
    assert policy.actor.weight.abs().max() < 0.05 and (policy.critic.bias == 0).all()
    action, logprob, entropy, value2 = policy.get_action_and_value(x)
    assert action.shape == (64,) and torch.allclose(value, value2)
    assert torch.allclose(entropy, torch.full((64,), np.log(10.0)), atol=1e-3)
    _, logprob_again, _, _ = policy.get_action_and_value(x, action)
    assert torch.allclose(logprob, logprob_again)


def test_get_action_and_value_matches_torch_categorical():
    policy = Policy()
    x = torch.randn(32, 30)
    actions = torch.randint(0, 10, (32,))
    _, logprob, entropy, _ = policy.get_action_and_value(x, actions)
    dist = torch.distributions.Categorical(logits=policy(x)[0])
    torch.testing.assert_close(logprob, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())


def test_gumbel_sampling_follows_the_distribution():
    logprobs = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(20000, 3)
    counts = torch.bincount(sample_actions(logprobs, torch.Generator().manual_seed(0)), minlength=3)
    np.testing.assert_allclose(counts.numpy() / 20000, [0.7, 0.2, 0.1], atol=0.015)


@pytest.mark.parametrize("dense_above", [0, 8, 32, 10_000, None])  # all dense, mixed, all padded, by cost
def test_policy_stack_matches_each_policys_own_forward(dense_above):
    from policies.network import PolicyStack

    torch.manual_seed(0)
    policies = [Policy(hidden_size=32) for _ in range(5)]
    rng = np.random.default_rng(0)
    index = rng.choice(5, size=203, p=[0.6, 0.2, 0.1, 0.1, 0.0])  # uneven groups, one policy unused
    x = torch.from_numpy(rng.standard_normal((203, 30)).astype(np.float32))
    got = PolicyStack(policies, dense_above=dense_above).logits(x, index)
    for k, policy in enumerate(policies):
        rows = np.flatnonzero(index == k)
        with torch.no_grad():
            expected, _ = policy(x[rows])
        torch.testing.assert_close(got[rows], expected, rtol=1e-5, atol=1e-5)


def test_policy_stack_rejects_mixed_shapes():
    from policies.network import PolicyStack

    with pytest.raises(ValueError, match="one shape"):
        PolicyStack([Policy(hidden_size=32), Policy(hidden_size=64)])


def test_checkpoint_round_trip(tmp_path):
    policy = Policy()
    ckpt = AgentCheckpoint(
        policy, config={"name": "x"}, fighter_id=7, model_version=3, global_step=1234, metrics={"win_rate": 0.5}
    )
    path = ckpt.save(tmp_path / "sub" / "model.pt")
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    loaded = AgentCheckpoint.load(path)
    assert (loaded.fighter_id, loaded.model_version, loaded.global_step) == (7, 3, 1234)
    assert loaded.config == {"name": "x"} and loaded.metrics == {"win_rate": 0.5}
    obs = np.random.default_rng(0).normal(size=(16, 30)).astype(np.float32)
    a1, v1 = ckpt.get_action_and_value(obs)
    a2, v2 = loaded.get_action_and_value(obs)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(v1, v2)
    assert a1.dtype == np.int64 and v1.dtype == np.float32
    action, value = loaded.get_action_and_value(obs[0])  # one observation: scalars
    assert isinstance(action, int) and isinstance(value, float)
    np.testing.assert_array_equal(loaded(obs), a1)  # callable: greedy actions
    sampled, _ = loaded.get_action_and_value(np.repeat(obs[:1], 500, axis=0), greedy=False)
    assert 0 <= sampled.min() and sampled.max() < 10
    with pytest.raises(ValueError, match=r"shape \(n, 30\)"):
        loaded.get_action_and_value(np.zeros((4, 29), np.float32))


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AgentCheckpoint.load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="is a folder with no checkpoint in it"):
        AgentCheckpoint.load(tmp_path)
    snapshots = tmp_path / "run" / "league"
    snapshots.mkdir(parents=True)
    AgentCheckpoint(Policy()).save(snapshots / "snapshot_0001_step_0.pt")
    with pytest.raises(CheckpointError, match=r"is a folder; give a checkpoint file such as .*snapshot_0001_step_0.pt"):
        AgentCheckpoint.load(snapshots)  # a league folder: suggest a file that is there
    (tmp_path / "run" / "checkpoints").mkdir()
    AgentCheckpoint(Policy()).save(tmp_path / "run" / "checkpoints" / "latest.pt")
    with pytest.raises(
        CheckpointError, match=r"is a folder; give a checkpoint file such as .*run/checkpoints/latest.pt"
    ):
        AgentCheckpoint.load(tmp_path / "run")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        AgentCheckpoint.load(tmp_path / "garbage.pt")
    AgentCheckpoint(Policy()).save(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        AgentCheckpoint.load(tmp_path / "truncated.pt")
    torch.save(Policy().state_dict(), tmp_path / "state_dict.pt")
    with pytest.raises(CheckpointError, match="is not a wrestling-arena-agent checkpoint"):
        AgentCheckpoint.load(tmp_path / "state_dict.pt")
    bad = torch.load(tmp_path / "good.pt", weights_only=True)
    bad["policy"]["hidden_size"] = 64
    atomic_torch_save(bad, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        AgentCheckpoint.load(tmp_path / "mismatch.pt")
    bad["format_version"] = 99
    atomic_torch_save(bad, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        AgentCheckpoint.load(tmp_path / "future.pt")


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "model.pt"
    AgentCheckpoint(Policy(), global_step=1).save(path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"x": Unpicklable()}, path)
    assert AgentCheckpoint.load(path).global_step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
