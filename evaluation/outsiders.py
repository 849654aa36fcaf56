"""Opponents written from docs/arena.md alone, as a game developer or a player would script one.

Each is a ``module:function`` player (docs/evaluation.md, "Players"): it reads the 30-number
observation of docs/arena.md (its own position, the nearest enemy's relative position and
velocity) and returns actions of the action table. They use nothing from ``arena/`` (no bot
code, no bot parameters), no training config names them, and the gauntlet plays them only
when asked, so results against them measure behaviour a fighter never met:

    python evaluate.py gauntlet CKPT --opponents outsiders

(``outsiders`` stands for every function of ``PLAYERS``; one of them alone is
``evaluation.outsiders:circler``). They are stateless and deterministic: where one "hesitates"
or "fumbles", the choice is a hash of the observation, so a seed replays the same matches.
"""

import numpy as np

RADIUS = 6.0  # m, the default ring: observations hold positions divided by it
SPEED = 4.0  # m/s, the default top speed: observations hold velocities divided by it
STRIKE = 1.2  # m: strike when the nearest enemy's centre is this close (the reach is 1.3 m)
IDLE, ATTACK = 8, 9


def _compass(dx, dy):
    """The move action (0 north, 1 north-east, ... 7 north-west) nearest to each (dx, dy)."""
    return np.floor((np.pi / 2 - np.arctan2(dy, dx)) / (np.pi / 4) + 0.5).astype(np.int64) % 8


def _rotate(dx, dy, angle):
    c, s = np.cos(angle), np.sin(angle)
    return c * dx - s * dy, s * dx + c * dy


def _unpack(obs):
    """Own position (m), the nearest enemy's offset (m) and closing speed (m/s), who plays."""
    obs = np.asarray(obs, dtype=np.float64)
    x, y = obs[:, 0] * RADIUS, obs[:, 1] * RADIUS
    dx, dy = obs[:, 5] * RADIUS, obs[:, 6] * RADIUS
    distance = np.hypot(dx, dy)
    # the enemy's velocity relative to ours, projected on the line towards it: > 0 when it comes at us
    with np.errstate(invalid="ignore", divide="ignore"):
        closing = -(obs[:, 7] * dx + obs[:, 8] * dy) * SPEED / distance
    closing = np.where(distance > 0, closing, 0.0)
    playing = distance > 0  # an eliminated fighter (or one without enemies) observes zeros
    return x, y, dx, dy, distance, closing, playing


def _hash(obs, salt):
    """A number in [0, 1) that only the observation decides (a player's whim, reproducibly)."""
    obs = np.asarray(obs, dtype=np.float64)
    mixed = obs[:, 0] * 12.9898 + obs[:, 1] * 78.233 + obs[:, 3] * 37.719 + obs[:, 6] * 4.581 + salt
    return np.modf(np.abs(np.sin(mixed) * 43758.5453))[0]


def _finish(actions, playing):
    return np.where(playing, actions, IDLE).astype(np.int64)


def circler(obs):
    """Closes in on a spiral (45 degrees off the line to the enemy) and strikes in reach."""
    _, _, dx, dy, distance, _, playing = _unpack(obs)
    sx, sy = _rotate(dx, dy, np.pi / 4)
    return _finish(np.where(distance <= STRIKE, ATTACK, _compass(sx, sy)), playing)


def centre_guard(obs):
    """Holds the middle of the ring: walks back to it, turns to an enemy that comes within 2.5 m,
    strikes in reach and never goes after anyone."""
    x, y, dx, dy, distance, _, playing = _unpack(obs)
    home = _compass(-x, -y)
    off_centre = np.hypot(x, y) > 0.8
    face = np.where(distance < 2.5, _compass(dx, dy), IDLE)
    actions = np.where(distance <= STRIKE, ATTACK, np.where(off_centre, home, face))
    return _finish(actions, playing)


def rim_runner(obs):
    """Runs anticlockwise round the ring 4.8 m from the centre and strikes an enemy in reach
    ahead of it (its facing is where it runs)."""
    x, y, dx, dy, distance, _, playing = _unpack(obs)
    r = np.maximum(np.hypot(x, y), 1e-6)
    tx, ty = -y / r, x / r  # the anticlockwise tangent
    correction = (4.8 - r) / 1.0  # steer back onto the 4.8 m circle
    mx, my = tx + correction * x / r, ty + correction * y / r
    ahead = dx * tx + dy * ty > 0
    actions = np.where((distance <= STRIKE) & ahead, ATTACK, _compass(mx, my))
    return _finish(actions, playing)


def flanker(obs):
    """Goes round the enemy to the side nearer the centre, then presses it outwards: it strikes
    from the inside so that the knockback carries the enemy towards the rim."""
    x, y, dx, dy, distance, _, playing = _unpack(obs)
    ex, ey = x + dx, y + dy
    er = np.maximum(np.hypot(ex, ey), 1e-6)
    # the spot 1.1 m from the enemy on its way to the centre
    gx, gy = ex - 1.1 * ex / er, ey - 1.1 * ey / er
    to_goal = np.hypot(gx - x, gy - y)
    inside = np.hypot(x, y) < er - 0.5
    go_round = _compass(gx - x, gy - y)
    actions = np.where(
        distance <= STRIKE,
        np.where(inside | (to_goal < 0.4), ATTACK, go_round),
        np.where(to_goal < 0.4, _compass(dx, dy), go_round),
    )
    return _finish(actions, playing)


def fumbler(obs):
    """A clumsy chaser: runs at the enemy and strikes in reach, but one decision in three it
    presses a key at random."""
    _, _, dx, dy, distance, _, playing = _unpack(obs)
    planned = np.where(distance <= STRIKE, ATTACK, _compass(dx, dy))
    whim = _hash(obs, 1.0)
    random_key = np.minimum((_hash(obs, 2.0) * 10).astype(np.int64), 9)
    return _finish(np.where(whim < 1 / 3, random_key, planned), playing)


def swinger(obs):
    """Swings whenever the enemy is within 2 m (most swings miss) and walks at it otherwise."""
    _, _, dx, dy, distance, _, playing = _unpack(obs)
    return _finish(np.where(distance <= 2.0, ATTACK, _compass(dx, dy)), playing)


def sidestepper(obs):
    """Waits 1.6 m away; when the enemy rushes in (closing faster than 1 m/s within 1.5 m) it
    steps aside, and it strikes whatever is in reach."""
    _, _, dx, dy, distance, closing, playing = _unpack(obs)
    aside = _compass(*_rotate(dx, dy, np.pi / 2))
    keep = np.where(distance > 1.7, _compass(dx, dy), np.where(distance < 1.5, _compass(-dx, -dy), IDLE))
    rushed = (distance < 1.5) & (closing > 1.0)
    actions = np.where(distance <= STRIKE, ATTACK, np.where(rushed, aside, keep))
    return _finish(actions, playing)


def hit_and_run(obs):
    """Plays for the time limit: strikes in reach, and once ahead on health runs from an enemy
    within 2.5 m (bending towards the centre to stay in the ring); level or behind, it chases."""
    obs_ = np.asarray(obs, dtype=np.float64)
    x, y, dx, dy, distance, _, playing = _unpack(obs)
    own, enemy = obs_[:, 2], obs_[:, 9]
    leads = own > enemy + 1e-6
    # run away from the enemy, bent towards the centre so that it does not leave the ring
    unit = np.maximum(distance, 1e-6)
    away_x, away_y = -dx / unit - 0.5 * x / RADIUS, -dy / unit - 0.5 * y / RADIUS
    run = (distance < 2.5) & leads
    actions = np.where(distance <= STRIKE, ATTACK, np.where(run, _compass(away_x, away_y), _compass(dx, dy)))
    return _finish(actions, playing)


PLAYERS = {
    "circler": circler,
    "centre_guard": centre_guard,
    "rim_runner": rim_runner,
    "flanker": flanker,
    "fumbler": fumbler,
    "swinger": swinger,
    "sidestepper": sidestepper,
    "hit_and_run": hit_and_run,
}
"""Every outsider by name, in the order reports list them."""

GROUP = "outsiders"
"""The word that stands for every outsider in evaluate.py's --opponents."""


def specs() -> dict[str, str]:
    """name -> player spec (``evaluation.outsiders:NAME``) of every outsider."""
    return {name: f"{__name__}:{name}" for name in PLAYERS}


def expand_outsiders(opponents) -> list[str]:
    """``opponents`` (player specs) with the word ``outsiders`` replaced by ``NAME=SPEC`` of
    every outsider, so that results are keyed by the outsider's name."""
    out: list[str] = []
    for entry in opponents:
        if entry == GROUP:
            out.extend(f"{name}={spec}" for name, spec in specs().items())
        else:
            out.append(entry)
    return out
