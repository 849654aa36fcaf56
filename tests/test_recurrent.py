"""policy.kind lstm: the recurrent network, its memory through rollouts and updates, checkpoints
and the players that evaluate it."""

import numpy as np
import pytest
import torch

from configs import ConfigError
from configs.checks import POLICY_KINDS as CONFIG_KINDS
from envs import ArenaEnv
from evaluation.players import RecurrentActor, resolve_player
from policies import AgentCheckpoint, CheckpointError, Policy, read_checkpoint
from policies.network import POLICY_KINDS, FrozenNetworks, RecurrentPolicy, build_policy, widen_inputs
from training.memory import Memory
from training.ppo import Rollout


def test_the_config_names_the_network_kinds_the_code_builds():
    assert CONFIG_KINDS == POLICY_KINDS == ("mlp", "lstm")
    assert isinstance(build_policy("lstm", 30, 10, 16), RecurrentPolicy)
    with pytest.raises(ValueError, match="policy.kind"):
        build_policy("gru", 30, 10, 16)


def test_a_sequence_gives_what_step_by_step_calls_with_carried_state_give():
    torch.manual_seed(0)
    policy = RecurrentPolicy(30, 10, 16)
    steps, n = 25, 6
    x = torch.randn(steps, n, 30)
    resets = torch.rand(steps, n) < 0.15
    state0 = (torch.randn(n, 16), torch.randn(n, 16))
    logits, values, last = policy.forward_sequence(x, state0, resets)
    state = state0
    for t in range(steps):
        step_logits, step_values, state = policy(x[t], state, resets[t])
        torch.testing.assert_close(step_logits, logits[t], rtol=0, atol=1e-5)
        torch.testing.assert_close(step_values, values[t], rtol=0, atol=1e-5)
    torch.testing.assert_close(state[0], last[0], rtol=0, atol=1e-6)


def test_a_reset_row_forgets_and_the_others_remember():
    torch.manual_seed(1)
    policy = RecurrentPolicy(30, 10, 16)
    x = torch.randn(3, 30)
    remembered = (torch.randn(3, 16), torch.randn(3, 16))
    reset = torch.tensor([True, False, False])
    logits, _, _ = policy(x, remembered, reset)
    fresh, _, _ = policy(x, policy.initial_state(3))
    assert torch.allclose(logits[0], fresh[0])  # row 0 starts afresh
    assert not torch.allclose(logits[1:], fresh[1:])  # the others read their memory


def test_memory_resets_at_match_starts_and_for_eliminated_fighters():
    policy = RecurrentPolicy(30, 10, 8)
    memory = Memory(policy, 4, "cpu")
    masks = torch.tensor([True, True, False, True])
    assert memory.resets(masks).all()  # the envs just started: every match is new
    memory.ended(torch.tensor([False, True, False, False]))
    assert memory.resets(masks).tolist() == [False, True, True, False]


def rollout_with_memory(policy, num_steps=100, seed=0):
    """A rollout on the arena as train.py collects it (fighters fall and matches restart within it)."""
    env = ArenaEnv(
        num_arenas=6, fighters_per_arena=3, seed=seed, opponents=["chaser"], observation="full", max_frames=150
    )
    obs, _ = env.reset(seed=seed)
    memory = Memory(policy, env.num_agents, "cpu")
    rollout = Rollout.allocate(num_steps, env.num_agents, (policy.obs_size,), "cpu", recurrent=True)
    next_obs, next_mask = torch.from_numpy(obs.copy()), torch.from_numpy(env.masks.copy())
    memory.state = (torch.randn_like(memory.state[0]), torch.randn_like(memory.state[1]))  # mid-match memory
    memory.starts[:] = False
    rollout.initial_state = memory.snapshot()
    generator = torch.Generator().manual_seed(seed)
    for step in range(num_steps):
        rollout.obs[step], rollout.masks[step] = next_obs, next_mask
        logits, rollout.values[step] = memory.decide(policy, next_obs, next_mask, rollout.resets[step])
        logprobs = torch.log_softmax(logits, -1)
        action = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(-1)
        rollout.actions[step], rollout.logprobs[step] = action, logprobs.gather(-1, action[:, None]).squeeze(-1)
        obs, reward, terminal, truncation, _ = env.step(action.numpy().astype(np.int32))
        rollout.dones[step] = torch.from_numpy(terminal | truncation)
        memory.ended(rollout.dones[step])
        next_obs, next_mask = torch.from_numpy(obs.copy()), torch.from_numpy(env.masks.copy())
    env.close()
    return rollout


def test_the_update_replays_the_rollout_from_its_initial_state():
    """Replaying each agent's whole sequence from the kept initial state, resetting where the
    rollout did, gives the rollout's own log-probabilities and values: PPO's ratio starts at 1."""
    torch.manual_seed(2)
    policy = RecurrentPolicy(48, 10, 32)
    with torch.no_grad():  # a larger forget bias: memory that lasts, so a missed reset would show
        policy.lstm.bias_hh[32:64] += 2.0
    rollout = rollout_with_memory(policy)
    assert rollout.resets.any() and (~rollout.masks).any() and rollout.dones.any()
    with torch.no_grad():
        logits, values, _ = policy.forward_sequence(rollout.obs, rollout.initial_state, rollout.resets)
        logprobs = torch.log_softmax(logits, -1).gather(-1, rollout.actions[..., None]).squeeze(-1)
        live = rollout.masks
        torch.testing.assert_close(logprobs[live], rollout.logprobs[live], rtol=0, atol=1e-5)
        torch.testing.assert_close(values[live], rollout.values[live], rtol=0, atol=1e-5)
        # without the resets the replay differs where a match restarted: the resets matter
        _, wrong, _ = policy.forward_sequence(rollout.obs, rollout.initial_state, None)
        assert (wrong - values)[live].abs().max() > 1e-2


def test_a_recurrent_checkpoint_takes_and_returns_its_state(tmp_path):
    torch.manual_seed(3)
    policy = RecurrentPolicy(48, 10, 16)
    path = AgentCheckpoint(policy, config={"env": {"observation": "full"}}).save(tmp_path / "lstm.pt")
    model = AgentCheckpoint.load(path)
    assert (model.kind, model.observation, model.recurrent) == ("lstm", "full", True)
    assert read_checkpoint(path)["policy"]["kind"] == "lstm"
    obs = torch.randn(5, 3, 48).numpy()
    logits, values, _ = policy.forward_sequence(torch.from_numpy(obs), policy.initial_state(3))
    state = None
    for t in range(5):
        actions, step_values, state = model.get_action_and_value(obs[t], state)
        assert actions.tolist() == logits[t].argmax(-1).tolist()
        np.testing.assert_allclose(step_values, values[t].detach().numpy(), atol=1e-5)
        assert state[0].shape == (3, 16)
    action, value, (h, c) = model.get_action_and_value(obs[0, 0])  # one fighter, 1-D
    assert isinstance(action, int) and h.shape == (16,)
    with pytest.raises(ValueError, match="shape"):
        model.get_action_and_value(obs[0], (h, c))  # one fighter's state for three fighters
    with pytest.raises(ValueError, match="full observation"):
        model.get_action_and_value(np.zeros((2, 30), np.float32))
    with pytest.raises(TypeError, match="state"):
        model(obs[0])


def test_a_feed_forward_checkpoint_returns_two_values_and_refuses_a_state(tmp_path):
    model = AgentCheckpoint.load(AgentCheckpoint(Policy()).save(tmp_path / "mlp.pt"))
    assert (model.kind, model.observation, model.recurrent) == ("mlp", "basic", False)
    assert len(model.get_action_and_value(np.zeros((2, 30), np.float32))) == 2
    with pytest.raises(TypeError, match="feed-forward"):
        model.get_action_and_value(np.zeros((2, 30), np.float32), state=model_state(2))


def model_state(n):
    return np.zeros((n, 128), np.float32), np.zeros((n, 128), np.float32)


def test_a_checkpoint_written_before_policy_kind_existed_loads_as_mlp(tmp_path):
    data = AgentCheckpoint(Policy()).to_dict()
    del data["policy"]["kind"], data["observation"]
    torch.save(data, tmp_path / "old.pt")
    model = AgentCheckpoint.load(tmp_path / "old.pt")
    assert (model.kind, model.observation) == ("mlp", "basic")
    data["policy"]["kind"] = "transformer"
    torch.save(data, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="transformer"):
        AgentCheckpoint.load(tmp_path / "odd.pt")


def test_a_recurrent_player_remembers_within_a_match_and_forgets_between_matches():
    torch.manual_seed(4)
    actor = RecurrentActor(RecurrentPolicy(30, 10, 16))
    obs = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    first = actor(obs, np.ones(4, bool))
    state_after_first = actor.state
    again = actor(obs, np.zeros(4, bool))  # the same observation, with memory of the first
    assert not torch.equal(actor.state[0], state_after_first[0])
    restarted = actor(obs, np.array([True, False, True, False]))
    assert restarted[0] == first[0] and restarted[2] == first[2]  # rows 0 and 2: a new match
    assert again.shape == (4,)


def test_evaluation_plays_a_recurrent_checkpoint(tmp_path):
    from evaluation.evaluate import evaluate

    path = AgentCheckpoint(RecurrentPolicy(30, 10, 16)).save(tmp_path / "lstm.pt")
    player = resolve_player(str(path))
    assert player.obs_size == 30
    results = evaluate(str(path), ["chaser"], matches=8, seed=1)
    assert results["chaser"]["matches"] == 8


def test_frozen_networks_of_both_kinds_evaluate_together_with_memory():
    torch.manual_seed(5)
    mlp, lstm = Policy(30, 10, 16), RecurrentPolicy(30, 10, 16)
    networks = FrozenNetworks([mlp, lstm, widen_inputs(Policy(30, 10, 16), 30)])
    x = torch.randn(6, 30)
    index = np.array([0, 1, 1, 2, 0, 1])
    h, c = torch.randn(6, 16), torch.randn(6, 16)
    reset = torch.tensor([False, True, False, False, False, False])
    before_h, before_c = h.clone(), c.clone()
    got = networks.logits(x, index, (h, c), reset)
    rows = [1, 2, 5]
    logits, _, (new_h, _) = lstm(x[rows], (before_h[rows], before_c[rows]), reset[rows])
    torch.testing.assert_close(got[rows], logits)
    torch.testing.assert_close(h[rows], new_h)  # the recurrent rows' memory moved on in place
    torch.testing.assert_close(got[[0, 4]], mlp(x[[0, 4]])[0])
    torch.testing.assert_close(h[[0, 3, 4]], before_h[[0, 3, 4]])  # feed-forward rows: untouched


def test_widened_networks_of_either_kind_ignore_the_numbers_they_never_saw():
    torch.manual_seed(6)
    for policy in (Policy(30, 10, 16), RecurrentPolicy(30, 10, 16)):
        wide = widen_inputs(policy, 48)
        x = torch.randn(4, 48)
        if policy.recurrent:
            state = policy.initial_state(4)
            torch.testing.assert_close(wide(x, state)[0], policy(x[:, :30], state)[0])
        else:
            torch.testing.assert_close(wide(x)[0], policy(x[:, :30])[0])


def test_an_unknown_policy_kind_is_a_config_error():
    from configs import load_config

    with pytest.raises(ConfigError, match="policy.kind"):
        load_config("configs/chaser-duel.yaml", ["--policy.kind", "gru"])
