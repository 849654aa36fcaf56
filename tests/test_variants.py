"""Bot variants: defaults are the built-in bots, variants match the slow reference, each
parameter does what docs/arena.md says, and bad specs are named."""

import math

import numpy as np
import pytest
from arena_helpers import Ring, compare_with_reference

from arena import ArenaConfigError, parse_slots
from arena.kernel import ACTION_ATTACK
from arena.rules import BOT_NAMES
from arena.variants import HELD_OUT_VARIANTS, TRAINING, TRAINING_VARIANTS, VALID, VARIANTS, resolve_variant


# ---------------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize(
    "fighters,opponents",
    [
        (3, ["kiter[noise=0.3;lag=0.3]", ["far_kiter", "patient_counter"]]),
        (
            4,
            [
                "chaser[approach=0.4;hesitate=0.5;standoff=1.5;retreat=1.0]",
                "edge_pusher[standoff=1.5;range=0.85;retreat=0.8]",
                "striker[lag=0.5;noise=0.2;range=0.8;standoff=2]",
            ],
        ),
        (3, ["counter[retreat=1.5;hesitate=0.3;approach=0.2]", ["random[lag=0.5]", "lurking_striker"]]),
        (
            4,
            [
                "striker[leash=0.2;noise=0.1]",
                ["chaser[leash=0.3;approach=0.6]", "counter[leash=0.1]", "idle[leash=0.1]"],
                ["kiter[leash=0.25;retreat=2]", "edge_pusher[leash=0.15;lag=0.3]", "random[leash=0.05]"],
            ],
        ),
    ],
)
def test_variants_match_the_reference(fighters, opponents):
    compare_with_reference(fighters, opponents)


# ---------------------------------------------------------------- defaults are the built-in bots
def test_default_parameters_are_the_builtin_bot():
    for name in BOT_NAMES:
        assert resolve_variant(name).builtin
        assert resolve_variant(f"{name}[noise=0;lag=0]").builtin
    assert resolve_variant("kiter[retreat=1.2]").builtin and not resolve_variant("kiter[retreat=1.3]").builtin
    # A variant with default parameters takes the built-in bot's row of the variant table.
    slots = parse_slots(3, ["kiter[retreat=1.2]", "far_kiter"])
    ring = Ring(3, opponents=["kiter[retreat=1.2]", "far_kiter"])
    assert ring.arena.bot[0, 1] == BOT_NAMES.index("kiter") and ring.arena.bot[0, 2] == len(BOT_NAMES)
    assert slots[1][0].bot == slots[2][0].bot == "kiter"


def _rollout_hash(opponents, steps=200):
    ring = Ring(3, opponents=opponents, num_arenas=8, seed=11, autoreset=True)
    actions = np.random.default_rng(0).integers(0, 10, (steps, ring.arena.num_agents)).astype(np.int32)
    for t in range(steps):
        ring.arena.step(actions[t], *ring.buffers())
    return ring.arena.state_hash()


def test_explicit_defaults_play_exactly_as_the_builtin_bots():
    assert _rollout_hash(["kiter", "edge_pusher"]) == _rollout_hash(["kiter[retreat=1.2]", "edge_pusher[noise=0]"])
    assert _rollout_hash(["kiter", "edge_pusher"]) != _rollout_hash(["kiter[noise=0.1]", "edge_pusher"])


# ---------------------------------------------------------------- behaviour of the parameters
def _action_histogram(bot, arenas=256, steps=30):
    """Frequencies of the 10 actions a bot took against an idle agent, over decisions it stood."""
    ring = Ring(2, opponents=[bot], num_arenas=arenas, seed=5, autoreset=True)
    counts = np.zeros(10)
    for _ in range(steps):
        standing = ring.arena.alive[:, 1].astype(bool)
        ring.step()
        counts += np.bincount(ring.arena.action[standing, 1], minlength=10)
    return counts / counts.sum()


def test_full_noise_plays_like_the_random_bot():
    uniform = np.full(10, 0.1)
    np.testing.assert_allclose(_action_histogram("random"), uniform, atol=0.02)
    np.testing.assert_allclose(_action_histogram("chaser[noise=1]"), uniform, atol=0.02)
    assert _action_histogram("chaser")[8] == 0.0  # the test tells bots apart: a chaser never idles


def _versus_idle(bot, decisions=90):
    """Distance to an idle agent after ``decisions``, its closest approach, and the agent's health."""
    ring = Ring(2, opponents=[bot], seed=2)
    closest = math.inf
    for _ in range(decisions):
        ring.step()
        closest = min(closest, float(np.hypot(*(ring.arena.pos[0, 1] - ring.arena.pos[0, 0]))))
    final = float(np.hypot(*(ring.arena.pos[0, 1] - ring.arena.pos[0, 0])))
    return final, closest, float(ring.arena.health[0, 0])


def test_far_standoff_keeps_its_distance():
    _, closest, health = _versus_idle("chaser")
    assert closest < 1.3 and health < 1.0  # the chaser walks in and strikes
    final, closest, health = _versus_idle("chaser[standoff=3]")  # 3 reach = 3.9 m
    assert health == 1.0 and closest > 3.0 and final > 3.0


def test_strike_range_makes_it_close_in_further():
    for bot, strikes in (("chaser", True), ("chaser[range=0.8]", False)):
        ring = Ring(2, opponents=[bot], frame_skip=1, seed=2)
        ring.place([(0.0, 0.0), (1.2, 0.0)], facings=[0.0, math.pi])  # 1.2 m apart, facing each other
        ring.step()
        # 1.2 m is within reach (1.3 m) but not within 0.8 of it: the variant steps in first.
        assert (ring.arena.action[0, 1] == ACTION_ATTACK) == strikes, bot


def test_a_leash_keeps_it_near_the_centre():
    """A leashed chaser does not follow an agent who stands off beyond its leash; it walks
    back to it when it starts outside, and still strikes whoever comes within reach."""
    for bot, leash_m in (("chaser", None), ("chaser[leash=0.25]", 1.5), ("striker[leash=0.1]", 0.6)):
        ring = Ring(2, opponents=[bot], seed=2)
        ring.place([(4.0, 0.0), (0.0, -3.0)], facings=[math.pi, 0.0])  # the bot starts 3 m out
        farthest_late = 0.0
        for t in range(120):
            ring.step()
            if t >= 40:
                farthest_late = max(farthest_late, float(np.hypot(*ring.arena.pos[0, 1])))
        health = float(ring.arena.health[0, 0])
        if leash_m is None:
            assert health < 1.0  # the plain chaser walks out to the agent and strikes
        else:
            assert health == 1.0 and farthest_late < leash_m + 0.5, (bot, farthest_late)
    ring = Ring(2, opponents=["striker[leash=0.1]"], frame_skip=1, seed=2)
    ring.place([(0.0, -1.0), (0.0, -2.0)], facings=[-math.pi / 2, math.pi / 2])  # 2 m out, facing the agent 1 m away
    ring.step()
    assert ring.arena.action[0, 1] == ACTION_ATTACK


def test_full_lag_repeats_the_first_action():
    ring = Ring(2, opponents=["chaser[lag=0.95]"], num_arenas=64, seed=4)
    changes = 0
    previous = ring.arena.action[:, 1].copy()
    for _ in range(10):
        ring.step()
        changes += int((ring.arena.action[:, 1] != previous).sum())
        previous = ring.arena.action[:, 1].copy()
    assert changes < 0.15 * 64 * 10  # it re-decides on about 5% of its decisions


# ---------------------------------------------------------------- names, ranges and bad specs
def test_named_variants_and_ranges():
    assert set(HELD_OUT_VARIANTS) | set(TRAINING_VARIANTS) == set(VARIANTS) and HELD_OUT_VARIANTS
    for name in HELD_OUT_VARIANTS:
        params = VARIANTS[name].params
        assert any(not lo <= getattr(params, k) <= hi for k, (lo, hi) in TRAINING.items()), name
    for name in BOT_NAMES:  # the built-in bots are in the training ranges
        assert not resolve_variant(name).held_out
    for key, (lo, hi) in TRAINING.items():
        assert VALID[key][0] <= lo <= hi <= VALID[key][1]
    v = resolve_variant(" far_kiter[noise=0.1] ")
    assert v.bot == "kiter" and v.params.retreat == 2.5 and v.params.noise == 0.1


@pytest.mark.parametrize(
    "spec,message",
    [
        ("kitr", "unknown bot 'kitr'; did you mean 'kiter'"),
        ("kitr[noise=0.1]", "unknown bot 'kitr' in 'kitr\\[noise=0.1\\]'"),
        ("kiter[retret=2]", "unknown parameter 'retret'; did you mean 'retreat'"),
        ("kiter[noise=1.5]", "noise must be in \\[0, 1\\], got 1.5"),
        ("kiter[noise=lots]", "noise must be a number in \\[0, 1\\], got 'lots'"),
        ("kiter[noise=nan]", "noise must be a number"),
        ("kiter[noise]", "'noise' is not key=value"),
        ("kiter[noise=0.1;noise=0.2]", "given twice"),
        ("chaser[approach=0]", "approach must be in \\[0.05, 1\\]"),
    ],
)
def test_bad_variant_specs_are_named(spec, message):
    with pytest.raises(ArenaConfigError, match=message):
        resolve_variant(spec)
    with pytest.raises(ArenaConfigError, match=message):
        parse_slots(2, [spec])
