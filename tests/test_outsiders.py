"""The outsiders (evaluation/outsiders.py): opponents written from docs/arena.md alone. They
play valid actions on any observation, do what their docstrings say, fight for real, and the
word ``outsiders`` names them all on evaluate.py's command line."""

import json

import numpy as np
import pytest

from evaluate import evaluate, main
from evaluation.gauntlet import gauntlet_opponents
from evaluation.outsiders import PLAYERS, RADIUS, SPEED, expand_outsiders, specs
from evaluation.players import PlayerError

NORTH, NORTH_EAST, EAST, WEST, ATTACK, IDLE = 0, 1, 2, 6, 9, 8


def observation(own=(0.0, 0.0), enemy=None, own_health=1.0, enemy_health=1.0, closing=0.0):
    """One 30-number observation (docs/arena.md): own position in m, the nearest enemy's
    position in m, and the enemy's speed towards us in m/s."""
    obs = np.zeros(30, dtype=np.float32)
    obs[0], obs[1] = own[0] / RADIUS, own[1] / RADIUS
    obs[2] = own_health
    if enemy is not None:
        dx, dy = enemy[0] - own[0], enemy[1] - own[1]
        obs[5], obs[6] = dx / RADIUS, dy / RADIUS
        unit = np.hypot(dx, dy)
        obs[7], obs[8] = -closing * dx / unit / SPEED, -closing * dy / unit / SPEED
        obs[9] = enemy_health
    return obs[None, :]


@pytest.mark.parametrize("name", list(PLAYERS))
def test_valid_actions_on_any_observation_and_idle_when_out(name):
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(257, 30)).astype(np.float32)
    obs[:, 2] = rng.uniform(0, 1, 257)
    obs[::5] = 0.0  # eliminated fighters observe zeros
    actions = PLAYERS[name](obs)
    assert actions.shape == (257,) and np.issubdtype(actions.dtype, np.integer)
    assert ((actions >= 0) & (actions < 10)).all()
    assert (actions[::5] == IDLE).all()
    assert np.array_equal(actions, PLAYERS[name](obs.copy()))  # stateless: the same again
    assert len(set(actions[1::5].tolist())) > 1  # it does not press one key whatever it sees


def test_each_does_what_its_docstring_says():
    p = PLAYERS
    # circler: spirals in 45 degrees off the line (east -> north-east), strikes in reach
    assert p["circler"](observation(enemy=(3.0, 0.0)))[0] == NORTH_EAST
    assert p["circler"](observation(enemy=(1.1, 0.0)))[0] == ATTACK
    # centre_guard: walks home, turns to an enemy within 2.5 m, strikes in reach, never chases
    assert p["centre_guard"](observation(own=(3.0, 0.0), enemy=(-1.0, 3.0)))[0] == WEST
    assert p["centre_guard"](observation(enemy=(0.0, 2.0)))[0] == NORTH
    assert p["centre_guard"](observation(enemy=(0.0, 4.0)))[0] == IDLE
    assert p["centre_guard"](observation(own=(3.0, 0.0), enemy=(3.0, 1.0)))[0] == ATTACK
    # rim_runner: anticlockwise on the 4.8 m circle (north at the east point)
    assert p["rim_runner"](observation(own=(4.8, 0.0), enemy=(-3.0, 0.0)))[0] == NORTH
    assert p["rim_runner"](observation(own=(4.8, 0.0), enemy=(4.8, 1.0)))[0] == ATTACK  # ahead
    assert p["rim_runner"](observation(own=(4.8, 0.0), enemy=(4.8, -1.0)))[0] != ATTACK  # behind
    # flanker: heads for the spot between the enemy and the centre, strikes from there
    assert p["flanker"](observation(own=(0.0, -4.0), enemy=(4.0, 0.0)))[0] == NORTH_EAST
    assert p["flanker"](observation(own=(2.9, 0.0), enemy=(4.0, 0.0)))[0] == ATTACK
    assert p["flanker"](observation(own=(4.0, -1.0), enemy=(4.0, 0.0)))[0] != ATTACK  # not inside yet
    # swinger: swings from 2 m
    assert p["swinger"](observation(enemy=(1.8, 0.0)))[0] == ATTACK
    assert p["swinger"](observation(enemy=(2.5, 0.0)))[0] == EAST
    # sidestepper: steps aside from a rush, holds 1.6 m otherwise
    assert p["sidestepper"](observation(enemy=(1.4, 0.0), closing=2.0))[0] == NORTH
    assert p["sidestepper"](observation(enemy=(1.4, 0.0)))[0] == WEST
    assert p["sidestepper"](observation(enemy=(1.6, 0.0)))[0] == IDLE
    # hit_and_run: ahead on health it runs, level it chases
    ahead = observation(enemy=(2.0, 0.0), own_health=1.0, enemy_health=0.5)
    assert p["hit_and_run"](ahead)[0] == WEST
    assert p["hit_and_run"](observation(enemy=(2.0, 0.0)))[0] == EAST
    # fumbler: a chaser that presses a random key one decision in three
    rng = np.random.default_rng(1)
    many = np.repeat(observation(enemy=(3.0, 0.0)), 600, axis=0)
    many[:, 0:2] = rng.uniform(-0.5, 0.5, size=(600, 2))  # other places, other whims
    fumbles = np.mean(p["fumbler"](many) != EAST)
    assert 0.2 < fumbles < 0.45


def test_they_fight():
    """Against the idle bot the attackers win by knockout or ring-out; the centre guard, which
    never goes after anyone, draws at the time limit."""
    results = evaluate(
        "idle", {n: s for n, s in specs().items() if n in ("circler", "flanker", "centre_guard")}, matches=40, seed=0
    )
    # results are the idle bot's: it loses to the two that attack it
    for attacker in ("circler", "flanker"):
        assert 1 - results[attacker]["win_rate"] - results[attacker]["draw_rate"] >= 0.9
    assert results["centre_guard"]["draw_rate"] == 1.0


def test_the_word_outsiders_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["idle", "--opponents", "chaser,outsiders", "--matches", "4", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["results"]) == ["chaser", *PLAYERS]
    assert "rim_runner" in capsys.readouterr().out


def test_named_specs_are_keyed_by_their_name():
    assert expand_outsiders(["chaser", "outsiders"])[1] == "circler=evaluation.outsiders:circler"
    assert list(evaluate("idle", ["c=chaser", "striker"], matches=2, seed=0)) == ["c", "striker"]
    assert list(gauntlet_opponents(["c=chaser"]))[-1] == "c"
    assert list(evaluate("idle", ["chaser", "chaser"], matches=2, seed=0)) == ["chaser"]  # a repeat counts once


def test_one_name_for_two_opponents_is_an_error_not_a_lost_result():
    with pytest.raises(PlayerError, match="two opponents are named 'a'"):
        evaluate("idle", ["a=chaser", "a=kiter"], matches=2, seed=0)
    with pytest.raises(PlayerError, match="two opponents are named 'chaser'"):
        gauntlet_opponents(["chaser=kiter"])  # it would have hidden the gauntlet's own chaser
