"""The ring's rules: physics invariants, each reward term alone, eliminations and their
credit, ranks, observations, bots, and the kernel against the slow reference."""

import dataclasses
import math

import numpy as np
import pytest
from arena_helpers import EAST, WEST, Ring, compare_with_reference, only

from arena import REWARD_TERMS, ArenaConfigError, RewardWeights, Rules, parse_slots
from arena.kernel import ACTION_ATTACK, FATE_KNOCKED_OUT, FATE_RING_OUT, TERMINATED, TRUNCATED

NORTH, EAST_MOVE, SOUTH, WEST_MOVE = 0, 2, 4, 6


# ---------------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize(
    "fighters,opponents",
    [
        (2, ["chaser"]),
        (4, ["kiter", "edge_pusher", ["random", "chaser"]]),
        (8, None),
        (3, ["random", "idle"]),
        (3, ["counter", ["counter", "chaser"]]),
        (3, ["striker", ["striker", "kiter"]]),
    ],
)
@pytest.mark.parametrize("observation", ["basic", "full"])
def test_kernel_matches_reference_on_random_play(fighters, opponents, observation):
    ended = compare_with_reference(fighters, opponents, observation == "full")
    assert ended > 0, "the random play should end some matches, or the end-of-match path is untested"


@pytest.mark.parametrize("fighters,opponents", [(2, ["chaser"]), (4, ["striker", "kiter"]), (3, None)])
def test_kernel_matches_reference_with_the_inside_term(fighters, opponents):
    weights = RewardWeights(win=5.0, draw=-2.0, inside=3.0)
    ended = compare_with_reference(fighters, opponents, full=True, weights=weights)
    assert ended > 0


# ---------------------------------------------------------------- physics invariants
def test_speed_is_capped_for_self_propulsion():
    ring = Ring(2, friction=0.0)
    ring.place([(-4.0, -3.0), (1.0, 3.0)])
    for _ in range(12):  # 0.8 s: long enough to reach the cap, short enough to stay inside
        ring.step(EAST_MOVE)
    speed = np.hypot(*ring.arena.vel[0, 0])
    assert speed == pytest.approx(ring.rules.speed)
    assert ring.arena.vel[0, 0, 0] > 0 and abs(ring.arena.vel[0, 0, 1]) < 1e-9


def test_friction_brings_an_idle_fighter_to_rest():
    ring = Ring(2)
    ring.place([(0.0, 0.0), (3.0, 3.0)], velocities=[(3.0, 0.0), (0.0, 0.0)])
    ring.step()
    v1 = ring.arena.vel[0, 0, 0]
    assert v1 == pytest.approx(3.0 * math.exp(-3.0 * 4 / 60))
    for _ in range(200):
        ring.step()
    assert abs(ring.arena.vel[0, 0, 0]) < 1e-3


def test_collisions_conserve_momentum_and_separate_bodies():
    ring = Ring(2, friction=0.0, restitution=0.5, frame_skip=1, fighter_stats=({"mass": 1.0}, {"mass": 3.0}))
    ring.place([(-1.0, 0.0), (1.0, 0.0)], velocities=[(4.0, 0.0), (-1.0, 0.0)])
    masses = np.array([1.0, 3.0])
    momentum_before = (ring.arena.vel[0] * masses[:, None]).sum(axis=0)
    touched = False
    for _ in range(60):
        ring.step()
        gap = np.hypot(*(ring.arena.pos[0, 1] - ring.arena.pos[0, 0]))
        touched |= gap < 1.0 + 1e-6
        assert gap >= 1.0 - 1e-9, "bodies overlap after the collision step"
    momentum_after = (ring.arena.vel[0] * masses[:, None]).sum(axis=0)
    assert touched
    np.testing.assert_allclose(momentum_after, momentum_before, atol=1e-9)
    # The heavy body was pushed forwards, the light one bounced back.
    assert ring.arena.vel[0, 0, 0] < ring.arena.vel[0, 1, 0]


def test_attack_respects_cooldown():
    ring = Ring(2, only("hit"), frame_skip=1)
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
    hits = 0
    for _ in range(61):
        ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])  # hold them in place
        ring.step(ACTION_ATTACK)
        hits += ring.rewards[0]
    assert hits == 3  # frames 0, 30 and 60: one attack per 0.5 s


def test_attack_needs_reach_and_facing():
    for position, facing, expect_hit in [
        ((1.2, 0.0), EAST, True),
        ((1.4, 0.0), EAST, False),
        ((1.0, 0.0), WEST, False),
        ((0.3, 1.0), EAST, True),
        ((-1.0, 0.3), EAST, False),
    ]:
        ring = Ring(2, only("hit"))
        ring.place([(0.0, 0.0), position], facings=[facing, 0.0])
        ring.step(ACTION_ATTACK)
        assert (ring.rewards[0] == 1.0) == expect_hit, (position, facing)


def test_ten_default_hits_knock_out_a_fresh_fighter():
    ring = Ring(2, frame_skip=1, friction=0.0)
    for hit in range(10):
        assert ring.arena.alive[0, 1], f"knocked out after only {hit} hits"
        ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
        ring.arena.cooldown[0, 0] = 0
        ring.step(ACTION_ATTACK)
    assert ring.arena.fate[0, 1] == FATE_KNOCKED_OUT


def test_knockback_grows_as_health_drops():
    speeds = []
    for health in (1.0, 0.3):
        ring = Ring(2, frame_skip=1, friction=0.0)
        ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
        ring.arena.health[0, 1] = health
        ring.step(ACTION_ATTACK)
        speeds.append(ring.arena.vel[0, 1, 0])
    assert speeds[0] == pytest.approx(3.0 * (1 + 2.0 * 0.1))
    assert speeds[1] == pytest.approx(3.0 * (1 + 2.0 * 0.8))


# ---------------------------------------------------------------- reward terms one by one
def test_reward_survive_per_frame():
    ring = Ring(2, only("survive"), frame_skip=4)
    ring.step()
    assert ring.rewards[0] == 4.0


def test_reward_hit_and_damage_taken():
    ring = Ring(2, only("hit"), opponents=None)
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
    ring.step(ACTION_ATTACK, 8)
    assert ring.rewards.tolist() == [1.0, 0.0]
    ring = Ring(2, only("damage_taken", -1.0))
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
    ring.step(ACTION_ATTACK, 8)
    assert ring.rewards.tolist() == [0.0, pytest.approx(-1.0)]  # one 0.1-health hit


def test_reward_edge_zone():
    ring = Ring(2, only("edge"), frame_skip=2)
    ring.place([(5.5, 0.0), (-1.0, 0.0)])
    ring.step()
    assert ring.rewards.tolist() == [2.0, 0.0]


def test_inside_pays_the_ring_position_change_and_sums_to_minus_the_start():
    ring = Ring(2, only("inside", 6.0), opponents=["idle"], frame_skip=1)  # 6 m ring: one metre pays 1
    ring.place([(0.0, 0.0), (2.0, 0.0)], facings=[EAST, WEST])
    ring.step(2)  # east (the compass order of docs/arena.md): one frame towards the enemy, outwards
    own = float(np.hypot(*ring.arena.pos[0, 0]))
    assert own > 0
    assert ring.rewards[0] == pytest.approx((2.0 - own) - 2.0)  # (enemy - own) after, minus (2 - 0) before
    # Over whole matches (three learners, random moves and strikes, until one stands or the time
    # limit), each fighter's inside rewards add up to minus its ring position at the start.
    rng = np.random.default_rng(3)
    for seed in range(6):
        ring = Ring(3, RewardWeights(**{n: 0.0 for n in REWARD_TERMS} | {"draw": -1.0, "inside": 1.0}),
                    seed=seed, max_frames=600, spawn_jitter=1.0)  # fmt: skip
        pos = ring.arena.pos[0].copy()
        radii = np.hypot(pos[:, 0], pos[:, 1])
        start = np.array([radii[min((j for j in range(3) if j != i), key=lambda j: np.hypot(*(pos[j] - pos[i])))]
                          - radii[i] for i in range(3)]) / ring.rules.radius  # fmt: skip
        total = np.zeros(3)
        while True:
            ended = ring.step(*rng.integers(0, 10, 3))
            total += ring.rewards  # 0 for a fighter already out
            if ended:
                break
        ranks = ring.arena.final_rank[0]
        draws = -1.0 * ((ranks == 1) & ((ranks == 1).sum() > 1))
        np.testing.assert_allclose(total - draws, -start, atol=1e-5)


def test_knockout_credit_death_and_win():
    for term, expected in [("knockout", [1.0, 0.0]), ("death", [0.0, 1.0]), ("win", [1.0, 0.0])]:
        ring = Ring(2, only(term))
        ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
        ring.arena.health[0, 1] = 0.1
        ended = ring.step(ACTION_ATTACK, 8)
        assert ended == 1
        assert ring.rewards.tolist() == expected, term
        assert ring.arena.fate[0, 1] == FATE_KNOCKED_OUT
        assert ring.arena.final_kos[0].tolist() == [1, 0]
        assert ring.terminals.tolist() == [True, True]


def test_ring_out_credited_to_recent_hitter_only():
    # Hit towards the rim: the victim flies out within the credit window.
    ring = Ring(2, only("knockout"), frame_skip=1)
    ring.place([(4.0, 0.0), (5.0, 0.0)], facings=[EAST, WEST])
    ring.arena.health[0, 1] = 0.2
    total = 0.0
    for _ in range(120):
        if ring.step(ACTION_ATTACK if _ == 0 else 8):
            break
        total += ring.rewards[0]
    total += ring.rewards[0]
    assert ring.arena.fate[0, 1] == FATE_RING_OUT
    assert ring.arena.final_ringouts[0].tolist() == [1, 0]
    assert total == 1.0
    # Walking out of the ring with no recent hit credits nobody.
    ring = Ring(2, only("knockout"), frame_skip=1)
    ring.place([(-1.0, 0.0), (5.9, 0.0)])
    ring.arena.last_hitter[0, 1] = 0
    ring.arena.last_hit_frame[0, 1] = 0
    ring.arena.frame[0] = 200  # the hit was 200 frames (> 2 s) ago
    for _ in range(30):
        if ring.step(8, EAST_MOVE):
            break
    assert ring.arena.fate[0, 1] == FATE_RING_OUT
    assert ring.arena.final_ringouts[0].tolist() == [0, 0]
    assert ring.rewards[0] == 0.0


# ---------------------------------------------------------------- ranks, masks, match end
def test_ranks_by_elimination_order_and_health():
    ring = Ring(4, frame_skip=1, max_frames=3)
    ring.place([(-3.0, 0.0), (3.0, 0.0), (0.0, 3.0), (5.99, 0.0)], velocities=[(0.0, 0.0)] * 3 + [(3.0, 0.0)])
    ring.arena.health[0] = [0.5, 0.9, 0.5, 1.0]
    ring.step(8, 8, 8, EAST_MOVE)  # fighter 3 walks out first
    assert ring.masks.tolist() == [True, True, True, False]
    assert ring.terminals.tolist() == [False, False, False, True]
    ring.step()
    assert ring.step() == 1 and ring.arena.match_end[0] == TRUNCATED
    # Survivors by health (0 and 2 tie), then the eliminated.
    assert ring.arena.final_rank[0].tolist() == [2, 1, 2, 4]
    assert ring.truncations.tolist() == [True, True, True, False]


def test_last_fighter_standing_wins_and_masks_follow_eliminations():
    ring = Ring(3, frame_skip=1)
    ring.place([(0.0, 0.0), (5.98, 0.0), (-5.9, 0.0)], velocities=[(0, 0), (3.0, 0.0), (0, 0)])
    ring.step(8, EAST_MOVE, 8)
    assert ring.masks.tolist() == [True, False, True]
    ring.arena.vel[0, 2] = (-7.0, 0.0)
    ring.step(8, 8, WEST_MOVE)  # masked fighter's action is ignored; fighter 2 leaves the ring
    assert ring.arena.match_end[0] == TERMINATED
    assert ring.arena.final_rank[0].tolist() == [1, 3, 2]
    assert ring.masks.tolist() == [True, False, False]
    assert not ring.obs[1].any() and not ring.obs[2].any()


def test_auto_reset_starts_a_fresh_match():
    ring = Ring(2, autoreset=True, frame_skip=1)
    ring.place([(0.0, 0.0), (5.99, 0.0)], velocities=[(0, 0), (3.0, 0.0)])
    assert ring.step(8, EAST_MOVE) == 1
    assert ring.terminals.tolist() == [True, True]
    assert ring.masks.tolist() == [True, True]  # the new match's first observation
    assert ring.arena.alive[0].all() and ring.arena.frame[0] == 0
    assert ring.arena.health[0].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(np.hypot(*ring.arena.pos[0].T), 3.0, atol=0.31)


def test_a_draw_is_worth_less_than_the_win_it_could_have_been():
    # A time-out with equal health is a draw: each fighter is paid the draw weight.
    weights = RewardWeights.resolve({"survive": 1.0, "win": 5.0, "draw": -2.0})
    ring = Ring(2, weights, max_frames=8, frame_skip=4)
    ring.place([(-2.0, 0.0), (2.0, 0.0)])
    ring.step()
    assert ring.rewards.tolist() == [4.0, 4.0]
    assert ring.step() == 1
    assert ring.rewards.tolist() == [4.0 - 2.0, 4.0 - 2.0]
    # Knocking out on the first frame of a 3000-frame match: the win, and survive for the 2999
    # frames it no longer has to play, so the match is worth 3000 + 5 to the winner, more than
    # the 3000 - 2 of standing to the limit.
    ring = Ring(2, weights, frame_skip=1)
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
    ring.arena.health[0, 1] = 0.1
    assert ring.step(ACTION_ATTACK, 8) == 1
    assert ring.rewards.tolist() == [1.0 + 5.0 + 2999.0, 0.0]
    # A cost per frame standing (survive < 0) is not charged for the frames a win saves.
    costly = dataclasses.replace(weights, survive=-0.5)
    ring = Ring(2, costly, frame_skip=1)
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[EAST, WEST])
    ring.arena.health[0, 1] = 0.1
    ring.step(ACTION_ATTACK, 8)
    assert ring.rewards.tolist() == [-0.5 + 5.0, 0.0]


def test_draw_must_be_below_win():
    with pytest.raises(ArenaConfigError, match=r"rewards.draw \(0\) must be below rewards.win \(0\)"):
        RewardWeights(win=0.0, draw=0.0)
    with pytest.raises(ArenaConfigError, match=r"rewards.draw \(3\) must be below rewards.win \(2\)"):
        RewardWeights.resolve({"win": 2.0, "draw": 3.0})
    # A mapping without a draw weight gets -1, below any win weight of 0 or more.
    assert RewardWeights.resolve({"win": 0.0}).draw == -1.0
    assert RewardWeights.resolve("standard").draw == -1.0


def test_stats_spread_draws_each_fighters_body_per_match():
    stats = ({"size": 0.6, "speed": 3.0, "mass": 2.0},)  # slot 0's own stats; slot 1 the defaults
    ring = Ring(2, num_arenas=2000, stats_spread=0.3, fighter_stats=stats, autoreset=True, max_frames=4)
    first = ring.arena.size.copy(), ring.arena.speed.copy(), ring.arena.mass.copy()
    for values, bases in zip(first, ((0.6, 0.5), (3.0, 4.0), (2.0, 1.0)), strict=True):
        for f, base in enumerate(bases):
            assert base * 0.7 <= values[:, f].min() < base * 0.75 and base * 1.25 < values[:, f].max() <= base * 1.3
            assert abs(values[:, f].mean() - base) < 0.02 * base  # centred on the fighter's own stats
    assert np.corrcoef(first[0][:, 0], first[1][:, 0])[0, 1] < 0.1  # size and speed drawn apart
    ring.step()  # every match times out and a new one starts: new bodies, the same own stats
    assert not np.array_equal(ring.arena.size, first[0])
    np.testing.assert_array_equal(ring.arena.base_size[:, 0], 0.6)
    # Without a spread every fighter keeps its own stats.
    plain = Ring(2, num_arenas=8, fighter_stats=stats)
    assert (plain.arena.size[:, 0] == 0.6).all() and (plain.arena.speed[:, 1] == 4.0).all()
    with pytest.raises(ArenaConfigError, match=r"rules.stats_spread must be a fraction in \[0, 0.5\], got 0.8"):
        Rules(stats_spread=0.8)


def test_timeout_is_a_truncation():
    ring = Ring(2, max_frames=8, frame_skip=4)
    ring.place([(-2.0, 0.0), (2.0, 0.0)])
    assert ring.step() == 0
    assert ring.step() == 1
    assert ring.truncations.tolist() == [True, True] and not ring.terminals.any()


# ---------------------------------------------------------------- observations
def test_observation_layout_and_normalisation():
    ring = Ring(4, frame_skip=1, friction=0.0)
    ring.place(
        [(0.0, 0.0), (2.0, 0.0), (0.0, -1.0), (-3.0, 0.0)], velocities=[(1.0, 0.0), (0.0, 2.0), (0.0, 0.0), (0.0, 0.0)]
    )
    ring.arena.health[0] = [1.0, 0.5, 0.7, 0.2]
    ring.step()
    obs = ring.obs[0]
    dt = 1 / 60
    x0 = 1.0 * dt
    assert obs[:5] == pytest.approx([x0 / 6, 0.0, 1.0, 0.25, 0.0])
    # Nearest first: fighter 2 (1 m), fighter 1 (2 m), fighter 3 (3 m), then zeros.
    assert obs[5:10] == pytest.approx([-x0 / 6, -1 / 6, -0.25, 0.0, 0.7], abs=1e-6)
    assert obs[10:15] == pytest.approx([(2.0 - x0) / 6, 2 * dt / 6, -0.25, 0.5, 0.5], abs=1e-6)
    assert obs[15:20] == pytest.approx([(-3.0 - x0) / 6, 0.0, -0.25, 0.0, 0.2], abs=1e-6)
    assert not obs[20:].any()


# ---------------------------------------------------------------- bots
def _distance(ring):
    return float(np.hypot(*(ring.arena.pos[0, 1] - ring.arena.pos[0, 0])))


def test_chaser_closes_distance_and_hits():
    ring = Ring(2, opponents=["chaser"], rewards=only("damage_taken", -1.0))
    ring.place([(-3.0, 0.0), (3.0, 0.0)])
    start = _distance(ring)
    taken = 0.0
    for _ in range(60):
        ring.step()
        taken += ring.rewards[0]
    assert _distance(ring) < 1.5 < start
    assert taken < 0  # it struck the idle learner


def test_kiter_keeps_its_distance_while_cooling_down():
    ring = Ring(2, opponents=["kiter"])
    ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[0.0, WEST])
    distances = []
    for _ in range(40):
        ring.step()
        distances.append(_distance(ring))
    assert 0.8 < np.median(distances) < 2.5


def test_edge_pusher_gets_between_enemy_and_centre():
    ring = Ring(2, opponents=["edge_pusher"], spawn_jitter=0.0)
    ring.place([(3.0, 0.0), (-3.0, 0.0)])
    for _ in range(30):
        ring.step()
        if ring.arena.fate[0, 0] != 0:
            break
    learner, pusher = ring.arena.pos[0, 0], ring.arena.pos[0, 1]
    assert ring.arena.fate[0, 0] == FATE_RING_OUT or np.hypot(*pusher) < np.hypot(*learner)


def test_counter_holds_the_centre_and_strikes_whoever_comes_close():
    ring = Ring(2, opponents=["counter"], spawn_jitter=0.0)
    ring.place([(-4.0, 0.0), (2.5, 0.0)], facings=[0.0, 0.0])
    for _ in range(40):  # the idle learner stays far away: the counter goes home and waits
        ring.step()
    assert np.hypot(*ring.arena.pos[0, 1]) <= 1.0
    assert _distance(ring) > 2.0 * ring.rules.reach
    ring.place([(-1.0, 0.0), (0.0, 0.0)], facings=[0.0, 0.0])  # in reach, behind its back
    ring.step()
    assert ring.arena.health[0, 0] == 1.0  # it turns first...
    for _ in range(2):
        ring.step()
    assert ring.arena.health[0, 0] < 1.0  # ...then strikes


def test_striker_strikes_on_the_frame_its_cooldown_ends_where_the_chaser_waits():
    # Both bots stand in reach of an idle learner with 2 frames of cooldown left. The
    # striker holds its attack through the decision and lands it on frame 3 of 4; the
    # chaser sees it is not ready and only strikes at the next decision.
    landed = {}
    for bot in ("striker", "chaser"):
        ring = Ring(2, opponents=[bot], spawn_jitter=0.0)
        ring.place([(0.0, 0.0), (1.0, 0.0)], facings=[0.0, WEST])
        ring.arena.cooldown[0, 1] = 2
        ring.step()
        landed[bot] = ring.arena.health[0, 0] < 1.0
    assert landed == {"striker": True, "chaser": False}


def test_idle_bot_stays_and_random_bot_moves():
    ring = Ring(3, opponents=["idle", "random"], spawn_jitter=0.0)
    before = ring.arena.pos[0].copy()
    for _ in range(20):
        ring.step()
    assert np.allclose(ring.arena.pos[0, 1], before[1])
    assert not np.allclose(ring.arena.pos[0, 2], before[2])


def test_opponent_pool_is_sampled_per_match():
    ring = Ring(2, opponents=[["idle", "chaser"]], num_arenas=64, seed=3)
    bots = set(ring.arena.bot[:, 1].tolist())
    assert bots == {1, 2}


# ---------------------------------------------------------------- determinism
def _rollout_hash(seed, steps=1000):
    ring = Ring(4, opponents=["random", "chaser"], num_arenas=8, seed=seed, autoreset=True)
    actions = np.random.default_rng(0).integers(0, 10, (steps, ring.arena.num_agents)).astype(np.int32)
    for t in range(steps):
        ring.arena.step(actions[t], *ring.buffers())
    return ring.arena.state_hash()


def test_same_seed_same_rollout_different_seed_different_rollout():
    assert _rollout_hash(7) == _rollout_hash(7)
    assert _rollout_hash(7) != _rollout_hash(8)


def test_thread_count_does_not_change_results():
    import numba

    hashes = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        ring = Ring(8, num_arenas=32, seed=5, autoreset=True)
        ring.arena.threads = threads
        actions = np.random.default_rng(1).integers(0, 10, (200, ring.arena.num_agents)).astype(np.int32)
        for t in range(200):
            ring.arena.step(actions[t], *ring.buffers())
        hashes.append(ring.arena.state_hash())
    assert hashes[0] == hashes[1]


# ---------------------------------------------------------------- bad configuration
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"radius": -1.0}, "rules.radius must be a positive number"),
        ({"radius": float("nan")}, "rules.radius"),
        ({"frame_skip": 0}, "rules.frame_skip must be an integer >= 1"),
        ({"max_frames": 2.5}, "rules.max_frames"),
        ({"attack_cone_deg": 270}, "attack_cone_deg"),
        ({"edge_width": 7.0}, "edge_width"),
        ({"fighter_stats": [{"size": -1}]}, "fighter_stats[0].size"),
        ({"fighter_stats": [{"colour": 1}]}, "unknown key"),
    ],
)
def test_bad_rules_rejected(kwargs, message):
    with pytest.raises(ArenaConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Rules(**kwargs)


def test_unknown_rule_named():
    with pytest.raises(ArenaConfigError, match="unknown rule.*'radios'"):
        Rules.from_kwargs(radios=5.0)


@pytest.mark.parametrize(
    "fighters,opponents,message",
    [
        (1, None, "between 2 and 8, got 1"),
        (9, None, "between 2 and 8, got 9"),
        (2, ["ninja"], "unknown bot 'ninja'"),
        (2, [[]], "non-empty list"),
        (2, ["chaser", "idle", "idle"], "do not fit"),
    ],
)
def test_bad_slots_rejected(fighters, opponents, message):
    with pytest.raises(ArenaConfigError, match=message):
        parse_slots(fighters, opponents)


def test_bad_rewards_rejected():
    with pytest.raises(ArenaConfigError, match="unknown reward term.*'kill'"):
        RewardWeights.resolve({"kill": 1.0})
    with pytest.raises(ArenaConfigError, match="unknown reward preset"):
        RewardWeights.resolve("brutal")
    with pytest.raises(ArenaConfigError, match="rewards.hit must be a finite number"):
        RewardWeights(hit=float("inf"))
