"""The self-play league: the learner's rows only, frozen snapshots, pool sampling, promotion, configs."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arena.rules import BOT_IDS, BOT_NAMES, LEARNER, bot_id
from arena.variants import resolve_variant
from configs import CONFIG_DIR, ConfigError, PromotionConfig, load_config
from league import Curriculum, League, LeagueEnv, OpponentPool, resolve_stages
from league.curriculum import Stage
from policies import AgentCheckpoint, CheckpointError, Policy, read_checkpoint
from train import train
from training.state import Score, TrainerState

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--env.num_arenas",
    "32",
    "--train.num_steps",
    "16",
    "--eval.interval",
    "0",
    "--torch_threads",
    "1",
    "--log_interval",
    "0.01",
    "--league.snapshot_interval",
    "1000",
    "--league.rating_interval",
    "1",
    "--league.specialists",
    "[]",
    "--league.fixed",
    "0",
    "--league.bots",
    "0.68",
    "--league.init_from",
    "null",
]  # the shipped specialists train for minutes


def stage(
    fighters=2, learners=1, num_arenas=16, latest=0.5, past=0.3, bots=0.2, bot_names=("chaser", "idle"), promote=None
) -> Stage:
    return Stage(0, "s", fighters, learners, num_arenas, latest, past, bots, list(bot_names), "seed", promote)


def pool_with_snapshots(n, bots=("chaser", "idle"), directory=None, **kw) -> OpponentPool:
    pool = OpponentPool(list(bots), directory=directory, **kw)
    for k in range(n):
        torch.manual_seed(k)
        pool.add_snapshot(Policy(), step=1000 * k)
    return pool


# --------------------------------------------------------------------------- the learner's rows only
def test_league_env_exposes_only_the_learner_rows_and_drives_the_rest():
    pool = pool_with_snapshots(2)
    env = LeagueEnv(stage(fighters=4, learners=2, num_arenas=8), pool, seed=3)
    env.async_reset(3)
    assert env.num_agents == 8 * 2
    full = env.env.observations
    rng = np.random.default_rng(0)
    for _ in range(40):
        np.testing.assert_array_equal(env.observations, full[env.learner_rows])
        np.testing.assert_array_equal(env.masks, env.env.masks[env.learner_rows])
        learner_actions = rng.integers(0, 10, env.num_agents)
        alive_before = env.arena.alive[:, :2].reshape(-1).astype(bool)
        env.send(learner_actions)
        obs, rewards, terminals, truncations, infos, _, masks = env.recv()
        # Each learner slot took exactly the action sent for its row (where it was standing).
        took = env.arena.action[:, :2].reshape(-1)
        np.testing.assert_array_equal(took[alive_before], learner_actions[alive_before])
        assert obs.shape == (16, 30) and rewards.shape == terminals.shape == truncations.shape == masks.shape == (16,)
    # Opponent slots hold the bot id of the entry drawn for them, LEARNER (policy-driven) for snapshots.
    np.testing.assert_array_equal(env.arena.bot[:, 2:], pool.bot_ids[env.assignment])
    assert set(np.unique(env.arena.bot[:, :2])) == {LEARNER}


def test_frozen_opponents_never_enter_the_learner_batch_and_stay_frozen(tmp_path):
    summary = train(
        CONFIG_DIR / "selfplay.yaml",
        TINY + ["--train.total_timesteps", "2000", "--league.stages", "[{fighters: 4, learners: 1}]"],
        run_dir=tmp_path / "run",
        progress=False,
    )
    # 32 arenas x 1 learner slot x 16 steps per update: only the learner's live rows count
    # (each opponent slot is a frozen snapshot or a bot and adds none).
    assert summary["global_step"] <= summary["iterations"] * 16 * 32
    assert summary["global_step"] > summary["iterations"] * 16 * 32 * 0.5
    run = tmp_path / "run"
    snapshots = sorted((run / "league").glob("snapshot_*.pt"))
    assert len(snapshots) >= 2
    first = read_checkpoint(snapshots[0])["state_dict"]
    final = read_checkpoint(run / "checkpoints" / "latest.pt")["state_dict"]
    assert any(not torch.equal(first[k], final[k]) for k in first), "the learner trained"
    state = read_checkpoint(run / "checkpoints" / "latest.pt")["trainer_state"]["league"]
    assert state["pool"]["entries"][-1]["kind"] == "snapshot"


def test_frozen_snapshot_has_no_gradients_and_ignores_later_training():
    policy = Policy()
    pool = OpponentPool(["chaser"])
    entry = pool.add_snapshot(policy, step=0)
    frozen = pool.policy(entry.id)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    policy(torch.randn(64, 30))[0].sum().backward()
    optimizer.step()
    assert all(not p.requires_grad for p in frozen.parameters())
    for k, v in frozen.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(policy.state_dict().values(), before.values(), strict=True))


# --------------------------------------------------------------------------- snapshots on disk
def test_snapshots_load_back_identical(tmp_path):
    pool = pool_with_snapshots(3, directory=tmp_path)
    pool.record([2, 3, 3], [1.0, 0.0, 0.5])
    obs = torch.randn(256, 30)
    restored = OpponentPool(["chaser", "idle"], directory=tmp_path)
    restored.load_state_dict(pool.state_dict())
    assert [e.name for e in restored.entries] == [e.name for e in pool.entries]
    np.testing.assert_array_equal(restored.score, pool.score)
    for e in pool.snapshots():
        original, loaded = pool.policy(e.id), restored.policy(e.id)
        for k, v in original.state_dict().items():
            assert torch.equal(v, loaded.state_dict()[k]), k
        assert torch.equal(original(obs)[0].argmax(-1), loaded(obs)[0].argmax(-1))


def test_missing_snapshot_file_is_a_clear_error(tmp_path):
    pool = pool_with_snapshots(1, directory=tmp_path)
    state = pool.state_dict()
    for f in tmp_path.glob("snapshot_*.pt"):
        f.unlink()
    with pytest.raises(Exception, match="snapshot 'v1' file .* is missing"):
        OpponentPool(["chaser", "idle"], directory=tmp_path).load_state_dict(state)


def test_pool_retires_the_oldest_snapshot_beyond_its_size():
    pool = pool_with_snapshots(5, pool_size=3)
    assert [e.name for e in pool.snapshots()] == ["v3", "v4", "v5"]
    assert pool.latest.name == "v5"
    ids = pool.sample(20000, np.random.default_rng(0), 0.4, 0.4, 0.2)
    drawn = {pool.entries[i].name for i in ids}
    assert drawn == {"chaser", "idle", "v3", "v4", "v5"}


# --------------------------------------------------------------------------- sampling
def test_pool_sampling_follows_its_probabilities():
    pool = pool_with_snapshots(3, bots=("chaser", "idle", "kiter"))
    n = 200_000
    ids = pool.sample(n, np.random.default_rng(1), latest=0.5, past=0.3, bots=0.2)
    freq = np.bincount(ids, minlength=len(pool.entries)) / n
    # 3 bots share 0.2; v1 and v2 share 0.3 (uniform); the latest (v3) has 0.5.
    expected = np.array([0.2 / 3] * 3 + [0.15, 0.15, 0.5])
    np.testing.assert_allclose(freq, expected, atol=0.005)  # binomial sd <= 0.0012
    # A stage may limit the bots; the missing older snapshots hand their share to the latest.
    young = pool_with_snapshots(1, bots=("chaser", "idle", "kiter"))
    ids = young.sample(n, np.random.default_rng(2), latest=0.5, past=0.3, bots=0.2, bot_names=["kiter"])
    freq = np.bincount(ids, minlength=len(young.entries)) / n
    np.testing.assert_allclose(freq, [0.0, 0.0, 0.2, 0.8], atol=0.005)


def test_the_draw_follows_every_change_of_the_pool(tmp_path):
    """The groups of a draw are kept between draws (they are drawn at nearly every step): a new
    snapshot, a retired one, a fixed fighter and a restored pool all change the next draw as a
    pool that never drew before would draw."""
    mix = dict(latest=0.3, past=0.3, bots=0.3, bot_names=["chaser", "idle", "idle"], fixed=0.1)

    def fresh(pool):  # the same entries and records, no draw kept
        again = OpponentPool(["chaser", "idle"], pool_size=pool.pool_size, prioritized=True, directory=tmp_path)
        again.load_state_dict(pool.state_dict())
        return again.probabilities(**mix)

    pool = pool_with_snapshots(2, pool_size=3, prioritized=True, directory=tmp_path)
    pool.record([0, 2, 3], [0.0, 1.0, 0.5])
    first = pool.probabilities(**mix)
    np.testing.assert_array_equal(first, fresh(pool))
    for change in range(4):
        if change == 3:
            checkpoint = tmp_path / "fixed.pt"
            AgentCheckpoint(Policy(), model_version=1, global_step=0).save(checkpoint)
            pool.add_fixed(checkpoint)
        else:  # the third snapshot fills the pool, the fourth retires v1
            pool.add_snapshot(Policy(), step=5000 + change)
        pool.record([len(pool.entries) - 1], [0.0])
        probs = pool.probabilities(**mix)
        assert len(probs) == len(pool.entries) and probs.sum() == pytest.approx(1.0)
        np.testing.assert_array_equal(probs, fresh(pool))
    assert probs[pool.entries[2].id] == 0.0  # v1, retired
    restored = OpponentPool(["chaser", "idle"], pool_size=3, prioritized=True, directory=tmp_path)
    restored.probabilities(**mix)  # a draw kept for its own (bots only) entries
    restored.load_state_dict(pool.state_dict())
    np.testing.assert_array_equal(restored.probabilities(**mix), probs)


def test_a_bot_named_k_times_is_drawn_k_times_as_often(tmp_path):
    """Repeats in league.bot_names weigh: one pool entry per bot, drawn in proportion to how often
    the stage names it (as they do in env.opponents), also after prioritising."""
    names = ["chaser", "striker", "idle", "striker", "striker"]
    pool = OpponentPool(names, prioritized=True)
    assert [e.name for e in pool.entries] == ["chaser", "striker", "idle"]
    probs = pool.probabilities(latest=0.0, past=0.0, bots=1.0, bot_names=names)
    np.testing.assert_allclose(probs, [0.2, 0.6, 0.2])
    pool.record([0] * 4 + [1] * 4, [0.5] * 4 + [0.0] * 4)  # draws with the chaser, loses to the striker
    probs = pool.probabilities(latest=0.0, past=0.0, bots=1.0, bot_names=names)
    w = np.array([0.25, 3 * 1.0, 0.25])  # (1 - score)^2 x copies; idle has no results: even
    np.testing.assert_allclose(probs, w / w.sum())
    # A league config's repeats reach the pool's draws (before, they were merged away).
    config = load_config(CONFIG_DIR / "aggression.yaml")
    league = League(config, tmp_path / "league")
    stage = league.stages[0]
    probs = league.pool.probabilities(stage.latest, stage.past, stage.bots, stage.bot_names, stage.fixed)
    by_name = {e.name: probs[e.id] for e in league.pool.entries}
    assert by_name["striker"] == pytest.approx(6 * by_name["chaser"])


def test_prioritised_sampling_favours_opponents_that_beat_the_learner():
    pool = pool_with_snapshots(4, bots=("chaser", "idle"), prioritized=True, priority_exponent=2.0)
    v1, v2, v3 = (e.id for e in pool.snapshots()[:3])
    pool.record(
        [v1] * 10 + [v2] * 10, [1.0] * 10 + [0.0] * 10
    )  # scores are means: fading keeps them  # beats v1 always, loses to v2 always
    pool.record([0] * 4 + [1] * 4, [0.5] * 4 + [1.0] * 4)  # draws with chaser, beats idle
    probs = pool.probabilities(latest=0.5, past=0.3, bots=0.2)
    # Past weights (1 - s)^2: v1 -> floor 1e-3, v2 -> 1, v3 (no results, counts as even) -> 0.25.
    w = np.array([1e-3, 1.0, 0.25])
    np.testing.assert_allclose(probs[[v1, v2, v3]], 0.3 * w / w.sum())
    np.testing.assert_allclose(probs[[0, 1]], 0.2 * np.array([0.25, 1e-3]) / (0.25 + 1e-3))
    assert probs[pool.latest.id] == pytest.approx(0.5) and probs.sum() == pytest.approx(1.0)
    freq = np.bincount(pool.sample(200_000, np.random.default_rng(3), 0.5, 0.3, 0.2), minlength=len(probs)) / 200_000
    np.testing.assert_allclose(freq, probs, atol=0.005)


def test_the_priority_floor_is_what_an_opponent_the_learner_always_beats_keeps():
    bots = ("chaser", "idle", "kiter", "counter", "striker")
    for floor in (1e-3, 1e-5):
        pool = pool_with_snapshots(1, bots=bots, prioritized=True, priority_floor=floor)
        pool.record([0] * 10 + [1] * 40, [0.8] * 10 + [1.0] * 40)  # beats the chaser 80%, idle always
        probs = pool.probabilities(latest=0.0, past=0.0, bots=1.0)
        w = np.array([0.04, floor, 0.25, 0.25, 0.25])  # (1 - 0.8)^2, the floor, three without results (0.5)
        np.testing.assert_allclose(probs[[0, 1, 2, 3, 4]], w / w.sum())
    config = load_config(CONFIG_DIR / "aggression.yaml", ["--league.priority_floor", "0.0001"])
    assert League(config, None).pool.priority_floor == 1e-4


def test_share_caps_keep_an_opponent_the_learner_only_draws_with_from_taking_over_its_group():
    bots = ("chaser", "idle", "kiter", "counter", "striker")
    pool = pool_with_snapshots(1, bots=bots, prioritized=True, share_caps={"striker": 0.1})
    uncapped = pool_with_snapshots(1, bots=bots, prioritized=True)
    for p in (pool, uncapped):  # beats the chaser 90%, idle, kiter and counter always; draws with the striker
        p.record([0] * 10 + [1] * 10 + [2] * 10 + [3] * 10 + [4] * 10, [0.9] * 10 + [1.0] * 30 + [0.5] * 10)
    # Weights (1 - s)^2: 0.01, three at the 1e-3 floor, 0.25: uncapped, the striker takes 95% of the bots.
    w = np.array([0.01, 1e-3, 1e-3, 1e-3, 0.25])
    np.testing.assert_allclose(uncapped.probabilities(latest=0.6, past=0.0, bots=0.4)[:5], 0.4 * w / w.sum())
    # Capped at 0.1 it keeps a tenth; the others share the rest by their weights, the chaser most.
    probs = pool.probabilities(latest=0.6, past=0.0, bots=0.4)
    np.testing.assert_allclose(probs[:5], 0.4 * np.append(0.9 * w[:4] / w[:4].sum(), 0.1))
    assert probs.sum() == pytest.approx(1.0)
    freq = np.bincount(pool.sample(200_000, np.random.default_rng(4), 0.6, 0.0, 0.4), minlength=len(probs)) / 200_000
    np.testing.assert_allclose(freq, probs, atol=0.005)
    with pytest.raises(ValueError, match="share cap of 'chaser' must be in"):
        OpponentPool(["chaser"], share_caps={"chaser": 0.0})


INF = np.inf


@pytest.mark.parametrize(
    "shares, caps, expected",
    [
        ([0.7, 0.2, 0.1], [0.5, INF, INF], [0.5, 0.2 / 0.3 * 0.5, 0.1 / 0.3 * 0.5]),
        ([0.5, 0.45, 0.05], [0.4, 0.4, INF], [0.4, 0.4, 0.2]),  # the second goes over once the first gives its excess
        ([0.9, 0.1], [0.2, 0.3], [0.4, 0.6]),  # every entry capped, caps short of 1: shares follow the caps
        ([0.3, 0.3, 0.4], [INF, INF, INF], [0.3, 0.3, 0.4]),
    ],
)
def test_capped_shares_stay_under_their_caps_and_sum_to_one(shares, caps, expected):
    from league.pool import capped

    out = capped(np.array(shares), np.array(caps))
    np.testing.assert_allclose(out, expected)
    assert out.sum() == pytest.approx(1.0)


def test_results_fade_to_the_window_and_give_ratings():
    pool = pool_with_snapshots(1, result_window=100)
    chaser = 0
    pool.record([chaser] * 1000, [0.0] * 1000)
    assert pool.games[chaser] == pytest.approx(100, rel=1e-3)  # about the last result_window results
    pool.record([chaser] * 100, [1.0] * 100)  # recent wins outweigh the old losses
    keep = 0.99**100
    assert pool.recent_scores()["chaser"] == pytest.approx(1 - keep, rel=1e-3)
    pool.record([pool.latest.id] * 50, [0.0] * 50)
    ratings = pool.ratings()
    assert ratings["learner"] > ratings["chaser"] and ratings["v1"] > ratings["learner"]


def test_match_results_score_the_learner_against_each_opponent():
    pool = pool_with_snapshots(1, bots=("chaser", "idle"), result_window=10**9)  # no fading: plain counts
    env = LeagueEnv(stage(fighters=4, learners=2, num_arenas=3), pool, seed=0)
    wins, ranks = [], []
    env.on_match = lambda w, r: (wins.extend(w), ranks.extend(r))
    env.async_reset(0)
    env.assignment[:] = [[0, 1], [1, 2], [2, 2]]
    env.arena.final_rank[:] = [[1, 2, 3, 4], [3, 3, 1, 2], [2, 1, 2, 4]]
    env.record_results(np.array([0, 1, 2]))
    # arena 0: both learners beat both bots; arena 1: both lose to idle(1) and v1(2);
    # arena 2: learner0 (rank 2) draws v1 (rank 2) and beats v1 (rank 4), learner1 beats both.
    np.testing.assert_allclose(pool.games, [2, 4, 6], rtol=1e-6)
    np.testing.assert_allclose(pool.score, [2, 2, 0.5 + 1 + 1 + 1], rtol=1e-6)
    assert wins == [True, False, False, False, False, True] and ranks == [1, 2, 3, 3, 2, 1]


def test_league_bots_with_the_same_parameters_share_a_row():
    """Two names for one behaviour (a named variant and its spelled-out parameters) play from one
    row in the pool and in the arena, as the arena alone would seat them."""
    bots = ["slow_chaser", "chaser[approach=0.6]", "chaser[approach=0.6;noise=0]", "chaser"]
    pool = OpponentPool(bots)
    env = LeagueEnv(stage(bots=1.0, latest=0.0, past=0.0, bot_names=bots, num_arenas=16), pool, seed=0)
    rows = [e.bot for e in pool.entries]
    assert rows == [len(BOT_NAMES)] * 3 + [BOT_IDS["chaser"]]
    np.testing.assert_array_equal(env.arena.variants, pool.variant_table())
    assert len(env.arena.variants) == len(BOT_NAMES) + 1


def test_bot_variants_play_in_the_league_from_their_own_rows(tmp_path):
    """Named variants and bot[key=value;...] specs are league bots: each plays from its own row of
    the arena's variant table (the pool's), keeps it across a resume, and a bad one is refused."""
    bots = ["chaser", "far_kiter", "kiter[retreat=2.0;noise=0.1]", "idle"]
    pool = OpponentPool(bots, directory=tmp_path)
    env = LeagueEnv(stage(bots=1.0, latest=0.0, past=0.0, bot_names=bots, num_arenas=64), pool, seed=0)
    env.async_reset(0)
    rows = [e.bot for e in pool.entries]
    assert rows[0] == BOT_IDS["chaser"] and rows[3] == BOT_IDS["idle"]
    assert rows[1:3] == [len(BOT_NAMES), len(BOT_NAMES) + 1]
    np.testing.assert_array_equal(env.arena.variants, pool.variant_table())
    np.testing.assert_array_equal(env.arena.variants[rows[2]], resolve_variant(bots[2]).pack())
    drawn = env.arena.bot[:, 1]
    assert set(drawn.tolist()) == set(rows)  # 64 matches draw every bot
    restored = OpponentPool(["idle", "far_kiter"], directory=tmp_path)
    restored.load_state_dict(pool.state_dict())
    assert [e.bot for e in restored.entries] == [BOT_IDS["chaser"], len(BOT_NAMES), len(BOT_NAMES) + 1, BOT_IDS["idle"]]
    with pytest.raises(ConfigError, match=r"league.bot_names' .* names a bad bot: .*unknown parameter 'retrat'"):
        load_config(CONFIG_DIR / "selfplay.yaml", {"league.bot_names": ["chaser", "kiter[retrat=2]"]})


def test_same_seed_gives_the_same_league_rollout():
    def rollout():
        torch.manual_seed(0)
        pool = pool_with_snapshots(2)
        env = LeagueEnv(stage(num_arenas=8), pool, seed=5)
        env.async_reset(5)
        rng, trace = np.random.default_rng(0), []
        for _ in range(200):
            env.send(rng.integers(0, 10, env.num_agents))
            trace.append(env.observations.copy())
        return np.stack(trace), env.assignment.copy(), env.arena.state_hash()

    a, b = rollout(), rollout()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_a_greedy_share_makes_that_share_of_snapshot_opponents_play_their_argmax():
    torch.manual_seed(0)
    pool = pool_with_snapshots(3)
    env = LeagueEnv(stage(num_arenas=512, latest=0.5, past=0.5, bots=0.0), pool, seed=1, greedy_opponents=0.3)
    env.async_reset(1)
    assert abs(env.greedy.mean() - 0.3) < 0.05  # drawn per opponent slot at each match start
    rows = env.opponent_rows
    obs = torch.from_numpy(env.env.observations[rows])
    with torch.no_grad():
        argmax = np.stack(
            [pool.policy(int(i))(obs[k : k + 1])[0].argmax(-1).item() for k, i in enumerate(env.assignment.reshape(-1))]
        )
    env.opponent_actions()
    greedy = env.greedy.reshape(-1)
    np.testing.assert_array_equal(env.actions[rows][greedy], argmax[greedy])
    # The others sample: with ten actions some differ from the argmax.
    assert (env.actions[rows][~greedy] != argmax[~greedy]).mean() > 0.3
    # Plain true/false draw nothing extra, so their runs are unchanged.
    assert LeagueEnv(stage(), pool, seed=1, greedy_opponents=True).greedy.all()


# --------------------------------------------------------------------------- fixed opponents
def fighter_file(path, seed=0, hidden_size=128):
    torch.manual_seed(seed)
    return AgentCheckpoint(Policy(hidden_size=hidden_size), global_step=777).save(path)


def test_fixed_opponents_are_drawn_with_their_share_and_hand_it_on_when_absent(tmp_path):
    pool = pool_with_snapshots(2, bots=("chaser", "idle"))
    tactical = pool.add_fixed(fighter_file(tmp_path / "final-tactical" / "checkpoints" / "best.pt"))
    named = pool.add_fixed(fighter_file(tmp_path / "b.pt", seed=1), name="other")
    assert (tactical.name, named.name) == ("final-tactical", "other")  # the run folder, or the name given
    assert tactical.kind == "fixed" and pool.bot_ids[tactical.id] == LEARNER and pool.latest.name == "v2"
    n = 200_000
    ids = pool.sample(n, np.random.default_rng(4), latest=0.4, past=0.3, bots=0.2, fixed=0.1)
    freq = np.bincount(ids, minlength=len(pool.entries)) / n
    # bots chaser, idle share 0.2; v1 has 0.3; the latest (v2) 0.4; the two fixed fighters share 0.1.
    np.testing.assert_allclose(freq, [0.1, 0.1, 0.3, 0.4, 0.05, 0.05], atol=0.005)
    # Without fixed fighters their share goes to the others, in proportion.
    bare = pool_with_snapshots(2, bots=("chaser", "idle"))
    np.testing.assert_allclose(bare.probabilities(0.4, 0.3, 0.2, fixed=0.1), np.array([0.1, 0.1, 0.3, 0.4]) / 0.9)


def test_fixed_opponents_play_their_own_network_and_survive_a_resume(tmp_path):
    path = fighter_file(tmp_path / "f.pt", seed=5)
    pool = pool_with_snapshots(1, directory=tmp_path / "league")
    fixed = pool.add_fixed(path, name="f")
    env = LeagueEnv(stage(num_arenas=64, latest=0.0, past=0.0, bots=0.0), pool, seed=2, greedy_opponents=True)
    env.stage.fixed = 1.0
    env.async_reset(2)
    assert (env.assignment == fixed.id).all()
    rows = env.opponent_rows
    own = AgentCheckpoint.load(path).policy
    with torch.no_grad():
        argmax = own(torch.from_numpy(env.env.observations[rows]))[0].argmax(-1).numpy()
    env.opponent_actions()
    np.testing.assert_array_equal(env.actions[rows], argmax)
    # A resumed pool keeps the entry and loads the same network from its file.
    restored = OpponentPool(["chaser", "idle"], directory=tmp_path / "league")
    restored.load_state_dict(pool.state_dict())
    assert restored.entries[fixed.id].name == "f" and restored.entries[fixed.id].policy is None
    for k, v in own.state_dict().items():
        assert torch.equal(v, restored.policy(fixed.id).state_dict()[k]), k
    path.unlink()
    with pytest.raises(CheckpointError, match="fixed opponent 'f': its checkpoint .*f.pt' is missing"):
        OpponentPool(["chaser", "idle"], directory=tmp_path / "league").load_state_dict(pool.state_dict())


def test_a_training_run_fields_fixed_opponents_and_rates_them(tmp_path):
    path = fighter_file(tmp_path / "runs" / "final-tactical" / "checkpoints" / "best.pt")
    summary = train(
        CONFIG_DIR / "selfplay.yaml",
        TINY
        + [
            "--train.total_timesteps",
            "3000",
            "--league.fixed",
            "0.5",
            "--league.bots",
            "0.18",
            "--league.fixed_opponents",
            f"[{path}]",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert "final-tactical" in summary["league"]["scores"] and "final-tactical" in summary["league"]["ratings"]


def tiny_mode(tmp_path, name="tiny_tactical"):
    """A mode config that trains in seconds, for specialists."""
    mode = tmp_path / f"{name}.yaml"
    mode.write_text(
        f"extends: {CONFIG_DIR / 'tactical.yaml'}\nenv: {{num_arenas: 32}}\n"
        "train: {num_steps: 16, total_timesteps: 1500}\neval: {interval: 0}\ntorch_threads: 1\n"
    )
    return mode


def test_specialists_train_first_join_the_pool_and_are_reused_on_resume(tmp_path, capsys):
    mode = tiny_mode(tmp_path)
    run = tmp_path / "run"
    overrides = TINY + [
        "--train.total_timesteps",
        "3000",
        "--league.fixed",
        "0.5",
        "--league.bots",
        "0.18",
        "--league.specialists",
        f"[{{config: {mode}, seed: 5, update_precision: bfloat16, hidden_size: 32}}]",
        "--league.init_from",
        "tiny_tactical_s5",
        "--policy.hidden_size",
        "32",
    ]
    summary = train(CONFIG_DIR / "selfplay.yaml", overrides, run_dir=run, progress=False)
    specialist = run / "specialists" / "tiny_tactical_s5"
    assert json.loads((specialist / "summary.json").read_text())["update_precision"] == "bfloat16"
    assert read_checkpoint(specialist / "checkpoints" / "latest.pt")["policy"]["hidden_size"] == 32  # tactical's is 128
    assert summary["update_precision"] == "float32"  # the entry's precision is the specialist's alone
    [fielded] = summary["league"]["specialists"]
    assert fielded["name"] == "tiny_tactical_s5" and Path(fielded["checkpoint"]).parent == specialist / "checkpoints"
    trained = read_checkpoint(fielded["checkpoint"])  # best.pt, or latest.pt when it had no finished match to rank by
    assert trained["config"]["seed"] == 5 and trained["config"]["mode"] == "tactical"
    # league.init_from: the learner started from the specialist's weights (the pool's first snapshot
    # is the starting policy), then learned away from them.
    first = read_checkpoint(sorted((run / "league").glob("snapshot_0001_*.pt"))[0])["state_dict"]
    final = read_checkpoint(run / "checkpoints" / "latest.pt")["state_dict"]
    for key, start in first.items():  # the specialist sees 30 numbers, the learner 48: its extra inputs start at 0
        weights = trained["state_dict"][key]
        assert torch.equal(start[..., : weights.shape[-1]], weights)
        assert not start[..., weights.shape[-1] :].any()
    assert first["network.0.weight"].shape[-1] == 48 and trained["state_dict"]["network.0.weight"].shape[-1] == 30
    assert not all(torch.equal(final[k], first[k]) for k in final)
    assert "tiny_tactical_s5" in summary["league"]["scores"]  # it was drawn and played
    entries = read_checkpoint(run / "checkpoints" / "latest.pt")["trainer_state"]["league"]["pool"]["entries"]
    assert [e["name"] for e in entries if e["kind"] == "fixed"] == ["tiny_tactical_s5"]
    assert "league: training specialist tiny_tactical_s5" in capsys.readouterr().out
    # Resuming trains no specialist again: the one on disk joins the pool as it is.
    stamp = (specialist / "summary.json").stat().st_mtime_ns
    summary = train(resume=run, overrides=["--train.total_timesteps", "4000"], progress=False)
    assert (specialist / "summary.json").stat().st_mtime_ns == stamp
    assert "training specialist" not in capsys.readouterr().out
    assert summary["global_step"] >= 4000 and "tiny_tactical_s5" in summary["league"]["scores"]


@pytest.mark.parametrize(
    "second, learner, message",
    [
        ("", 64, r"hidden size 128 \(policy.hidden_size of '.*tiny_tactical.yaml'\), but .*hidden_size, 64"),
        (", hidden_size: 32", 128, r"hidden size 32 \(league.specialists\[1\].hidden_size\), but .*hidden_size, 128"),
    ],
)
def test_a_specialist_the_league_cannot_field_fails_before_any_trains(tmp_path, second, learner, message):
    mode = tiny_mode(tmp_path)  # tactical.yaml's network: hidden size 128
    specialists = f"[{{config: {mode}, seed: 5, hidden_size: {learner}}}, {{config: {mode}, seed: 6{second}}}]"
    overrides = TINY + ["--league.specialists", specialists, "--policy.hidden_size", str(learner)]
    with pytest.raises(ConfigError, match=r"league.specialists\[1\]: its network would have " + message):
        train(CONFIG_DIR / "selfplay.yaml", overrides, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "specialists").exists()  # the first one, which fits, did not train either


def test_a_league_config_cannot_be_a_specialist(tmp_path):
    overrides = TINY + ["--league.specialists", "[{config: selfplay.yaml}]"]
    with pytest.raises(ConfigError, match=r"league.specialists\[0\].config 'selfplay.yaml' is a league config"):
        train(CONFIG_DIR / "selfplay.yaml", overrides, run_dir=tmp_path / "run", progress=False)


@pytest.mark.parametrize(
    "opponents, message",
    [
        (["missing.pt"], r"league.fixed_opponents: no checkpoint file 'missing.pt'"),
        (["small"], r"hidden size 64; the league runs opponents with the learner's shape \(48, 10, 128\)"),
        (["junk"], r"league.fixed_opponents: .*junk.pt"),
    ],
)
def test_bad_fixed_opponents_are_clear_errors(tmp_path, opponents, message):
    fighter_file(tmp_path / "small.pt", hidden_size=64)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    specs = [str(tmp_path / f"{o}.pt") if o != "missing.pt" else o for o in opponents]
    config = load_config(CONFIG_DIR / "selfplay.yaml", {"league.fixed_opponents": specs, "league.fixed": 0.24})
    with pytest.raises(CheckpointError, match=message):
        League(config, tmp_path / "league")
    # train.py reads them before the specialists train (minutes with the shipped ones), not after.
    overrides = TINY + [
        "--league.fixed",
        "0.5",
        "--league.bots",
        "0.18",
        "--league.fixed_opponents",
        f"[{specs[0]}]",
        "--league.specialists",
        f"[{{config: {tiny_mode(tmp_path)}, seed: 5}}]",
    ]
    with pytest.raises(CheckpointError, match=message):
        train(CONFIG_DIR / "selfplay.yaml", overrides, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "specialists").exists()


# --------------------------------------------------------------------------- curriculum
def test_promotion_triggers_on_the_win_rate_over_the_window():
    rule = PromotionConfig(metric="win_rate", threshold=0.6, window=10, min_steps=100)
    cur = Curriculum([stage(promote=rule), stage(fighters=4)])
    cur.record([1] * 9, [1] * 9)
    assert not cur.ready(1000), "9 matches < window"
    cur.record([0], [2])
    assert cur.metric() == pytest.approx(0.9) and not cur.ready(50), "min_steps not reached"
    assert cur.ready(100)
    cur.record([0] * 4, [2] * 4)  # the window slides: 5 wins in the last 10
    assert cur.metric() == pytest.approx(0.5) and not cur.ready(1000)
    cur.record([1] * 5, [1] * 5)  # each win pushes out an old win until the losses leave the window
    assert cur.metric() == pytest.approx(0.5) and not cur.ready(1000)
    cur.record([1], [1])
    assert cur.metric() == pytest.approx(0.6) and cur.ready(1000)
    cur.promote(1000)
    assert cur.index == 1 and cur.stage.fighters == 4 and not cur.ready(10**9), "the last stage never ends"
    assert cur.history == [(0, 0), (1, 1000)]


def test_promotion_by_mean_rank_and_by_max_steps():
    cur = Curriculum([stage(promote=PromotionConfig(metric="mean_rank", threshold=1.5, window=4)), stage()])
    cur.record([0, 0, 0, 0], [2, 2, 1, 1])
    assert cur.ready(0)
    cur = Curriculum([stage(promote=PromotionConfig(threshold=0.9, window=1000, max_steps=500)), stage()])
    assert not cur.ready(499) and cur.ready(500)


def test_curriculum_run_promotes_changes_the_ring_and_resumes(tmp_path):
    stages = (
        "[{name: duel, fighters: 2, promote: {max_steps: 1500}}, "
        "{name: ffa, fighters: 4, learners: 2, num_arenas: 8, bots: 1.0, latest: 0.0, past: 0.0}]"
    )
    run = tmp_path / "run"
    summary = train(
        CONFIG_DIR / "selfplay.yaml",
        TINY + ["--train.total_timesteps", "2500", "--league.stages", stages],
        run_dir=run,
        progress=False,
    )
    league = summary["league"]
    assert league["stage"] == "ffa" and [h["stage"] for h in league["stage_history"]] == ["duel", "ffa"]
    assert 1500 <= league["stage_history"][1]["from_step"] < 2500
    events = EventAccumulator(str(run)).Reload()
    stage_chart = [e.value for e in events.Scalars("league/stage")]
    assert stage_chart[0] == 0 and stage_chart[-1] == 1
    assert any(tag.startswith("league_rating/") for tag in events.Tags()["scalars"])
    # Resume continues in the second stage with the pool as it was.
    resumed = train(resume=run, overrides=["--train.total_timesteps", "3500"], progress=False)
    assert resumed["league"]["stage"] == "ffa" and resumed["global_step"] >= 3500
    assert resumed["league"]["snapshots"] >= league["snapshots"]
    saved = json.loads((run / "summary.json").read_text())
    assert saved["league"]["stage_history"][:2] == league["stage_history"]


def test_start_stage_skips_the_curriculum():
    config = load_config(CONFIG_DIR / "tournament.yaml", ["--league.start_stage", "2"])
    league = League(config, directory=None)
    assert league.stage.fighters == 8 and league.curriculum.index == 2


def test_resolved_stages_fill_in_league_and_env_values():
    config = load_config(CONFIG_DIR / "selfplay.yaml", {"league.stages": [{"fighters": 4, "bots": 0.2, "fixed": 0.48}]})
    (s,) = resolve_stages(config)
    assert (s.fighters, s.learners, s.num_arenas, s.bots, s.latest) == (
        4,
        1,
        config.env.num_arenas,
        0.2,
        config.league.latest,
    )
    assert s.rewards == config.env.rewards and s.promote is None
    assert bot_id(s.bot_names[0]) >= 0


# --------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    "override, message",
    [
        (
            {"league.stages": [{"fighters": 2, "learners": 2}]},
            r"league.stages\[0\].learners' .* from 1 to fighters - 1",
        ),
        ({"league.stages": [{"fighters": 9}]}, r"league.stages\[0\].fighters' .* from 2 to 8"),
        (
            {"league.stages": [{"fightrs": 4}]},
            r"unknown key 'league.stages\[0\].fightrs'.*did you mean 'league.stages\[0\].fighters'",
        ),
        ({"league.stages": [{"promote": {"metric": "elo"}}, {}]}, r"promote.metric' .* win_rate or mean_rank"),
        (
            {"league.stages": [{"promote": {"threshold": 1.5}}, {}]},
            r"stages\[0\].promote.threshold' .* a win rate in \[0, 1\], got 1.5",
        ),
        (
            {"league.stages": [{"fighters": 4, "promote": {"metric": "mean_rank", "threshold": 0.5}}, {}]},
            r"stages\[0\].promote.threshold' .* a mean rank from 1 to fighters = 4, got 0.5",
        ),
        (
            {"league.stages": [{"fighters": 4, "promote": {"metric": "mean_rank", "threshold": 9}}, {}]},
            r"from 1 to fighters = 4, got 9",
        ),
        (
            {"league.stages": [{}, {"promote": {"threshold": 0.8}}]},
            r"stages\[1\].promote' .* the last stage, which never ends",
        ),
        ({"league.stages": [{"bot_names": ["chasr"]}]}, r"unknown bot 'chasr'"),
        ({"league.stages": [{"rewards": {"hits": 1.0}}]}, r"unknown reward term 'hits'"),
        ({"league.stages": "duel"}, r"league.stages' .* must be a list of mappings"),
        ({"league.latest": 0, "league.past": 0, "league.bots": 0, "league.fixed": 1.0}, r"positive total probability"),
        ({"league.latest": 1.5}, r"league.latest' .* a probability in \[0, 1\], got 1.5"),
        (
            {"league.bots": 0.5},
            r"opponent mix of league \(set in .*selfplay.yaml and the command line \(league.bots=0.5\)\) "
            r"must sum to 1: latest 0.14 \+ past 0.18 \+ bots 0.5 \+ fixed 0.24 = 1.06",
        ),
        (
            {"league.stages": [{"bots": 1.0}]},
            r"opponent mix of league.stages\[0\] \(set in .*selfplay.yaml and the command line .*\) must sum to 1: "
            r"latest 0.14 \+ past 0.18 \+ bots 1 \+ fixed 0.24 = 1.56",
        ),
        ({"league.start_stage": 3}, r"league.start_stage' .* from 0 to 0"),
        ({"league.pool_size": 0}, r"league.pool_size' .* >= 1"),
        ({"league.opponent_greedy": 1.5}, r"league.opponent_greedy' .* true, false or a share from 0 to 1, got 1.5"),
        ({"league.opponent_greedy": "often"}, r"league.opponent_greedy' .* must be bool or float"),
        (
            {"league.specialists": []},
            r"league.fixed' .* is 0.24 but neither league.fixed_opponents nor league.specialists",
        ),
        (
            {
                "league.stages": [{"fixed": 0.2, "bots": 0.48}],
                "league.fixed": 0,
                "league.bots": 0.68,
                "league.specialists": [],
            },
            r"league.stages\[0\].fixed' .* neither league.fixed_opponents",
        ),
        (
            {"league.specialists": [{"config": "tactcal.yaml"}]},
            r"league.specialists\[0\].config' .* names no config file",
        ),
        (
            {"league.specialists": [{"config": "tactical.yaml"}, {"config": "tactical.yaml"}]},
            r"league.specialists\[1\].name' .* 'tactical_s101' is taken",
        ),
        (
            {"league.specialists": [{"config": "tactical.yaml", "total_timesteps": 0}]},
            r"total_timesteps' .* >= 1 or null",
        ),
        (
            {"league.specialists": [{"config": "tactical.yaml", "name": "../elsewhere"}]},
            r"specialists\[0\].name' .* '../elsewhere' must be a folder name",
        ),
        (
            {"league.specialists": [{"config": "tactical.yaml", "seed": -3}]},
            r"specialists\[0\].seed' .* from 0 to 2\*\*32 - 1 .*got -3",
        ),
        ({"league.fixed": -0.1}, r"league.fixed' .* a probability in \[0, 1\], got -0.1"),
        (
            {"league.share_caps": {"chaser": 0}},
            r"league.share_caps.chaser' .* a fraction of its group's share in \(0, 1\]",
        ),
        ({"league.share_caps": {"chasr": 0.1}}, r"league.share_caps.chasr' .* names no bot or fixed opponent .*chaser"),
        (
            {"league.share_caps": {"far_kiter": 0.1}},
            r"league.share_caps.far_kiter' .* names no bot or fixed opponent of this league",
        ),
        ({"league.share_caps": "striker"}, r"league.share_caps' .* must be a mapping"),
        (
            {"league.init_from": "tactical_s9"},
            r"league.init_from' .* names no specialist: 'tactical_s9' \(specialists: aggr",
        ),
        (
            {"league.init_from": "x", "league.specialists": [], "league.fixed": 0, "league.bots": 0.68},
            r"league.init_from' .* names no specialist: 'x' \(specialists: none\)",
        ),
    ],
)
def test_bad_league_configs_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_DIR / "selfplay.yaml", override)


def test_league_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {CONFIG_DIR / 'selfplay.yaml'}\nleague:\n  stages:\n    - {{fighters: 4, learners: 4}}\n")
    with pytest.raises(ConfigError, match=f"league.stages\\[0\\].learners' in {bad}"):
        load_config(bad)


# --------------------------------------------------------------------------- population-based training
def test_pbt_trains_the_population_rates_it_and_exploits(tmp_path):
    from league.pbt import main, run_pbt

    summary = run_pbt(
        CONFIG_DIR / "selfplay.yaml",
        TINY + ["--train.total_timesteps", "2000"],
        population=2,
        generations=2,
        out=tmp_path / "pbt",
        matches=8,
        seed=1,
    )
    history = json.loads((tmp_path / "pbt" / "pbt.json").read_text())["history"]
    assert [h["generation"] for h in history] == [1, 2] and history == summary["history"]
    first = history[0]
    assert {"member0", "member1", "random", "idle"} <= set(first["ratings"])
    # Member 1 started from perturbed hyperparameters; a lower-rated member copied the better one.
    assert first["hyperparameters"][0] != first["hyperparameters"][1]
    ratings = [first["ratings"]["member0"], first["ratings"]["member1"]]
    if ratings[0] != ratings[1]:
        (ex,) = first["exploits"]
        assert ex["copied"] == int(np.argmax(ratings)) and ex["member"] == int(np.argmin(ratings))
        assert history[1]["hyperparameters"][ex["member"]] == ex["new_hyperparameters"]
    for k in (0, 1):  # both members trained the whole budget, resuming their run folders
        ckpt = read_checkpoint(tmp_path / "pbt" / f"member{k}" / "checkpoints" / "latest.pt")
        assert ckpt["global_step"] >= 2000
    assert main([str(CONFIG_DIR / "selfplay.yaml"), "--population", "1"]) == 2


def test_pbt_exploit_points_the_copied_replay_candidates_at_the_source_files(tmp_path):
    from league.pbt import exploit

    members = [tmp_path / "pbt" / f"member{k}" for k in range(3)]
    for k, d in enumerate(members):
        (d / "checkpoints").mkdir(parents=True)
        (d / "checkpoints" / "step_000000001000.pt").write_bytes(f"member{k}".encode())
        AgentCheckpoint(Policy(), trainer_state={"evals": [[1000, [0.5, 0.0], "step_000000001000.pt"]]}).save(
            d / "checkpoints" / "latest.pt"
        )
    exploit(members[0], members[1])  # member1 carries on from member0's weights and its candidates
    exploit(members[1], members[2])  # and member2 from those: still member0's file
    for d in members[1:]:
        (entry,) = TrainerState.from_dict(read_checkpoint(d / "checkpoints" / "latest.pt")["trainer_state"]).evals
        assert (entry.global_step, entry.score) == (1000, Score(0.5, 0.0))
        assert (d / "checkpoints" / entry.checkpoint).read_bytes() == b"member0"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--population", "1"], "population must be at least 2, got 1"),
        (["--matches", "0"], "matches must be at least 1"),
        (["--exploit", "1.5"], r"exploit must be a fraction of the population in \(0, 1\], got 1.5"),
        (["--seed", "-1"], r"seed must be an integer from 0 to 2\*\*32 - 1, got -1"),
        (["--league.bots", "0.5"], "opponent mix of league .* must sum to 1"),
        (["--league.fixed_opponents", "[missing.pt]"], "league.fixed_opponents: no checkpoint file 'missing.pt'"),
    ],
)
def test_pbt_bad_arguments_are_one_line_errors_before_anything_trains(tmp_path, capsys, args, message):
    from league.pbt import main

    assert main([str(CONFIG_DIR / "selfplay.yaml"), "--out", str(tmp_path / "pbt")] + args) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "pbt" / "member0").exists()


def test_pbt_trains_the_specialists_once_for_every_member(tmp_path, capsys):
    from league.pbt import run_pbt

    overrides = TINY + [
        "--train.total_timesteps",
        "1000",
        "--league.fixed",
        "0.5",
        "--league.bots",
        "0.18",
        "--league.specialists",
        f"[{{config: {tiny_mode(tmp_path)}, seed: 5}}]",
    ]
    run_pbt(CONFIG_DIR / "selfplay.yaml", overrides, population=2, generations=1, out=tmp_path / "pbt", matches=4)
    assert capsys.readouterr().out.count("league: training specialist tiny_tactical_s5") == 1
    shared = tmp_path / "pbt" / "specialists" / "tiny_tactical_s5" / "checkpoints" / "latest.pt"
    for k in (0, 1):
        copy = tmp_path / "pbt" / f"member{k}" / "specialists" / "tiny_tactical_s5" / "checkpoints" / "latest.pt"
        assert copy.read_bytes() == shared.read_bytes()
        entries = read_checkpoint(tmp_path / "pbt" / f"member{k}" / "checkpoints" / "latest.pt")["trainer_state"][
            "league"
        ]["pool"]["entries"]
        fielded = copy.parent / "best.pt" if (copy.parent / "best.pt").is_file() else copy
        assert [e["path"] for e in entries if e["kind"] == "fixed"] == [str(fielded.resolve())]  # its own copy


def test_exploit_copies_weights_optimizer_and_pool(tmp_path):
    from league.pbt import exploit

    a, b = tmp_path / "a", tmp_path / "b"
    train(CONFIG_DIR / "selfplay.yaml", TINY + ["--train.total_timesteps", "1000"], run_dir=a, progress=False)
    train(
        CONFIG_DIR / "selfplay.yaml",
        TINY + ["--train.total_timesteps", "1000", "--seed", "7"],
        run_dir=b,
        progress=False,
    )
    exploit(a, b)
    for key in ("state_dict",):
        sa = read_checkpoint(a / "checkpoints" / "latest.pt")[key]
        sb = read_checkpoint(b / "checkpoints" / "latest.pt")[key]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert sorted(p.name for p in (a / "league").iterdir()) == sorted(p.name for p in (b / "league").iterdir())
    resumed = train(
        resume=b, overrides=["--train.total_timesteps", "2000", "--train.learning_rate", "1e-3"], progress=False
    )
    assert resumed["global_step"] >= 2000


def test_retired_snapshots_leave_the_ratings():
    pool = pool_with_snapshots(3, pool_size=2)
    v1, v2, v3 = (e.id for e in pool.snapshots(active_only=False))
    pool.record([v1, v2, v3, 0], [1.0, 0.5, 0.0, 1.0])
    assert set(pool.ratings()) == {"learner", "chaser", "v2", "v3"}
    assert set(pool.recent_scores()) == {"chaser", "v2", "v3"}


def test_worst_case_best_checkpoint_selection(tmp_path, monkeypatch):
    import evaluation.evaluate as evaluate_module

    calls = iter([{"random": 0.9, "chaser": 0.2}, {"random": 0.5, "chaser": 0.4}, {"random": 1.0, "chaser": 0.1}])

    def fake_evaluate(policy, opponents, **kw):  # scripted results, one set per evaluation
        rates = next(calls, {"random": 0.0, "chaser": 0.0})
        return {
            o: dict(
                win_rate=rates[o],
                survival_rate=0.0,
                avg_reward=0.0,
                knockouts=0.0,
                ring_outs=0.0,
                mean_rank=1.5,
                match_length=1.0,
            )
            for o in opponents
        }

    monkeypatch.setattr(evaluate_module, "evaluate", fake_evaluate)
    monkeypatch.setattr("evaluation.replay.replay_clip", lambda *a, **k: None)
    monkeypatch.setattr("training.tensorboard.RunWriter.add_clip", lambda *a, **k: None)
    summary = train(
        CONFIG_DIR / "selfplay.yaml",
        TINY
        + [
            "--train.total_timesteps",
            "1500",
            "--eval.interval",
            "1",
            "--eval.final_candidates",
            "0",  # the periodic choice
            "--eval.opponents",
            "random,chaser",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    # Means 0.55, 0.45, 0.55; worst cases 0.2, 0.4, 0.1: the second evaluation is the best.
    assert summary["best_eval"]["chaser"]["win_rate"] == 0.4 and summary["best_score"][0] == 0.4


def test_league_bench_runs_and_reports_both_timings(capsys):
    from league.bench import main

    result = main(["--rows", "64", "--snapshots", "5", "--steps", "1", "--repeats", "1", "--json"])
    assert result["snapshots"] == 5 and 0 < result["snapshot_rows"] <= 64
    assert result["per_snapshot_ms"] > 0 and result["stacked_ms"] > 0
    assert '"speedup"' in capsys.readouterr().out
