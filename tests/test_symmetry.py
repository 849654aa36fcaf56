"""The ring's symmetries (arena.symmetry) against the reference rules: turning or mirroring a
match gives the turned observation, and the permuted actions play the turned match."""

import copy
import math

import numpy as np
import pytest
import torch

from arena.reference import Fighter, observation, simulate_frame
from arena.rules import RewardWeights, Rules
from arena.spec import ACTION_ATTACK, ACTION_IDLE, OBSERVATIONS
from arena.symmetry import ELEMENTS, action_permutation, observation_matrix, vector_map


def random_fighters(rng, n=3):
    """n fighters close together near the centre (so that they hit and collide), mid-match."""
    fighters = []
    for _ in range(n):
        angle, r = rng.uniform(0, 2 * math.pi), rng.uniform(0, 1.2)
        fighters.append(
            Fighter(
                x=r * math.cos(angle),
                y=r * math.sin(angle),
                vx=rng.normal(0, 2),
                vy=rng.normal(0, 2),
                facing=rng.uniform(-6, 6),
                health=rng.uniform(0.2, 1.0),
                cooldown=int(rng.integers(0, 3)),
                alive=True,
                last_hitter=-1,
                last_hit_frame=-1000,
                elim_order=0,
                fate=0,
                size=0.5,
                speed=4.0,
                mass=1.0,
                bot=-1,
                action=ACTION_IDLE,
            )
        )
    return fighters


def mapped(fighters, g):
    """The same fighters in the ring mapped by element g."""
    v = vector_map(g)
    out = copy.deepcopy(fighters)
    for f in out:
        f.x, f.y = v @ (f.x, f.y)
        f.vx, f.vy = v @ (f.vx, f.vy)
        cos, sin = v @ (math.cos(f.facing), math.sin(f.facing))
        f.facing = math.atan2(sin, cos)
    return out


@pytest.mark.parametrize("kind", ["basic", "full"])
def test_the_mapped_observation_is_the_observation_of_the_mapped_ring(kind):
    rng = np.random.default_rng(0)
    rules = Rules()
    for trial in range(20):
        fighters = random_fighters(rng, n=int(rng.integers(2, 8)))
        fighters[-1].alive = trial % 3 != 0  # eliminated fighters are left out of the observation
        for g in range(ELEMENTS):
            other = mapped(fighters, g)
            for me in range(len(fighters)):
                want = np.array(observation(other, me, rules, full=kind == "full"))
                got = observation_matrix(g, OBSERVATIONS[kind]) @ np.array(
                    observation(fighters, me, rules, kind == "full")
                )
                np.testing.assert_allclose(got, want, atol=1e-9, err_msg=f"element {g}, fighter {me}")


def test_permuted_actions_play_the_mapped_match():
    """Moves, attacks (targets, the cone), knockback and collisions all turn with the ring."""
    rng = np.random.default_rng(1)
    rules, weights = Rules(), RewardWeights()
    hits = 0
    for _ in range(40):
        fighters = random_fighters(rng)
        g = int(rng.integers(0, ELEMENTS))
        other, perm = mapped(fighters, g), action_permutation(g)
        for frame in range(12):
            actions = rng.integers(0, 10, len(fighters))
            for f, h, a in zip(fighters, other, actions, strict=True):
                f.action, h.action = int(a), int(perm[a])
            simulate_frame(fighters, frame, 0, rules, weights)
            simulate_frame(other, frame, 0, rules, weights)
            for f, h in zip(fighters, other, strict=True):
                want = mapped([f], g)[0]
                assert (h.alive, h.health, h.cooldown) == (want.alive, pytest.approx(want.health), want.cooldown)
                np.testing.assert_allclose([h.x, h.y, h.vx, h.vy], [want.x, want.y, want.vx, want.vy], atol=1e-9)
                assert math.cos(h.facing) == pytest.approx(math.cos(want.facing), abs=1e-9)
                assert math.sin(h.facing) == pytest.approx(math.sin(want.facing), abs=1e-9)
        hits += sum(f.hits for f in fighters)
    assert hits > 20  # the attacks (and so the cone and knockback) were exercised


def test_the_group():
    """Element 0 is the identity, each element permutes the moves only, and the 16 are distinct."""
    assert (action_permutation(0) == np.arange(10)).all()
    seen = set()
    for g in range(ELEMENTS):
        perm = action_permutation(g)
        assert (
            sorted(perm[:8]) == list(range(8))
            and perm[ACTION_IDLE] == ACTION_IDLE
            and perm[ACTION_ATTACK] == ACTION_ATTACK
        )
        seen.add(tuple(perm))
        m = observation_matrix(g, 48)
        np.testing.assert_allclose(m @ m.T, np.eye(48), atol=1e-12)  # lengths and scalars kept
    assert len(seen) == ELEMENTS
    with pytest.raises(ValueError, match="30.*48.*not 31"):
        observation_matrix(1, 31)


class Symmetrised(torch.nn.Module):
    """A network made exactly symmetric: the mean over the 16 symmetries of its turned outputs."""

    def __init__(self, net, obs_size):
        super().__init__()
        self.net = net
        self.matrices = torch.as_tensor(np.stack([observation_matrix(g, obs_size) for g in range(ELEMENTS)])).float()
        self.perms = torch.as_tensor(np.stack([action_permutation(g) for g in range(ELEMENTS)]))

    def forward(self, obs):
        logits, values = 0, 0
        for g in range(ELEMENTS):
            turned_logits, turned_values = self.net(obs @ self.matrices[g].T)
            logits = logits + turned_logits[:, self.perms[g]] / ELEMENTS  # the turned move of each action
            values = values + turned_values / ELEMENTS
        return logits, values


@pytest.mark.parametrize("obs_size", [30, 48])
def test_the_symmetry_loss_is_zero_for_a_symmetric_policy_only(obs_size):
    from policies.network import Policy
    from training.symmetry import SymmetryLoss

    torch.manual_seed(0)
    net = Policy(obs_size)
    symmetric = Symmetrised(net, obs_size)
    loss = SymmetryLoss(obs_size, rows=0.5, device="cpu")
    obs = torch.randn(400, obs_size)
    elements = loss.draw(len(obs), "cpu")
    rows, turned = loss.turned(obs, elements)
    assert 100 < len(rows) < 300 and (elements[rows] > 0).all()
    turns_only = SymmetryLoss(obs_size, rows=1.0, device="cpu", mirrors=False).draw(1000, "cpu")
    assert set(turns_only.tolist()) == set(range(1, 8))  # every row, by a turn, never a mirror
    np.testing.assert_allclose(
        turned.numpy(),
        np.stack([observation_matrix(int(elements[r]), obs_size) @ obs[r].numpy() for r in rows]),
        atol=1e-5,
    )
    with torch.no_grad():
        for model, small in ((symmetric, True), (net, False)):
            logits, values = model(obs)
            turned_logits, turned_values = model(turned)
            terms = loss.terms(logits, values, turned_logits, turned_values, rows, elements, vf_coef=0.5)
            assert terms.shape == (len(rows),)
            assert (float(terms.max()) < 1e-5) if small else (float(terms.mean()) > 1e-3)


def test_an_update_with_the_symmetry_loss_makes_the_policy_more_symmetric():
    """PPO's update with symmetry_coef > 0 reports the loss and lowers it on rows it never saw."""
    from configs.schema import TrainConfig
    from policies.network import Policy
    from training.ppo import ppo_update
    from training.symmetry import SymmetryLoss

    torch.manual_seed(1)
    policy = Policy(48)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    n = 2048
    obs = torch.randn(n, 48)
    with torch.no_grad():
        actions, logprobs, _, values = policy.get_action_and_value(obs)
    batch = dict(obs=obs, actions=actions, logprobs=logprobs, advantages=torch.randn(n), returns=torch.randn(n),
                 values=values)  # fmt: skip
    args = TrainConfig(symmetry_coef=1.0, update_epochs=4)
    loss = SymmetryLoss(48, args.symmetry_rows, "cpu")

    def held_out_loss():
        test = torch.randn(1000, 48)
        elements = torch.randint(1, ELEMENTS, (1000,))
        rows, turned = loss.turned(test, elements)
        with torch.no_grad():
            return float(loss.terms(*policy(test), *policy(turned), rows, elements, args.vf_coef).mean())

    before = held_out_loss()
    for _ in range(5):
        stats = ppo_update(policy, optimizer, batch, args, symmetry=loss)
    assert stats["symmetry_loss"] > 0
    assert held_out_loss() < 0.5 * before


def fixed_action_checkpoint(path, action: int, obs_size: int = 30):
    """A fighter that always takes ``action``: zero weights into the actor, its bias on it."""
    from policies import AgentCheckpoint
    from policies.network import Policy

    policy = Policy(obs_size)
    with torch.no_grad():
        policy.actor.weight.zero_()
        policy.actor.bias.zero_()
        policy.actor.bias[action] = 5.0
    return AgentCheckpoint(policy).save(path)


def test_evaluate_symmetry_scores_fighters_by_how_they_answer_a_turned_ring(tmp_path, capsys):
    """Always attacking is the same move in every turned ring; always going north is the turned
    move only under the one symmetry that keeps north (the mirror across the y axis)."""
    import json

    from evaluate import main
    from evaluation.symmetry import symmetry_report

    attack = symmetry_report(fixed_action_checkpoint(tmp_path / "attack.pt", 9), ["idle"], matches=2)
    assert attack.agreement == 1.0 and attack.kl < 1e-6 and attack.states > 10
    north = symmetry_report(fixed_action_checkpoint(tmp_path / "north.pt", 0), ["idle", "chaser"], matches=2)
    assert north.agreement == pytest.approx(1 / 15) and north.kl > 1.0
    assert north.turns == 0 and north.mirrors == pytest.approx(1 / 8)
    assert set(north.per_opponent) == {"idle", "chaser"}

    path = fixed_action_checkpoint(tmp_path / "n48.pt", 0, obs_size=48)
    assert (
        main(["symmetry", str(path), "--opponents", "striker", "--matches", "1", "--json", str(tmp_path / "s.json")])
        == 0
    )
    assert "striker" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["agreement"] == pytest.approx(1 / 15)
    assert main(["symmetry", str(path), "--matches", "0"]) == 2
    assert "matches must be at least 1" in capsys.readouterr().err
