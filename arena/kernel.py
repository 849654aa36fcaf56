"""Numba kernels of the ring: one call steps every arena.

State layout: every array has a leading (num_arenas,) or (num_arenas, fighters) axis.
Per-fighter values live in two packed arrays with named columns, `fl` (float64) and
`it` (int32), shape (num_arenas, fighters, columns); per-arena counters in `ar` (int32,
(num_arenas, columns)). Packing keeps one arena's whole state in a few contiguous
cache lines and keeps kernel signatures short enough for numba to inline every helper
(CPython turns calls with more than 30 arguments into *args calls, which numba cannot
inline); arena.core.Arena exposes each column as a named view for Python code.

Kernels take plain arrays, hold no Python objects, allocate nothing per step and write
their outputs in place. Arenas are independent, so `step_arenas` spreads them
over threads with prange and each arena only touches its own slices; every random draw
comes from the arena's own splitmix64 generator, so results do not depend on the thread
count.

numba's on-disk cache (cache=True) is keyed on this file alone: every jitted function that
inlines these kernels lives here, and after renumbering the P_/R_/V_ indices in arena/rules.py
or changing a constant of arena/spec.py this file must be touched (or __pycache__ cleared)
so the cache is rebuilt.

The rules these kernels implement are written out in docs/arena.md; arena/reference.py
is a slow, obvious implementation of the same document that the tests compare with.
"""

import math
import os

import numba
import numpy as np
from numba import njit, prange

from arena.rules import (
    LEARNER,
    P_ACCEL,
    P_COOLDOWN,
    P_COS_CONE,
    P_CREDIT_WINDOW,
    P_EDGE_WIDTH,
    P_FRICTION_DECAY,
    P_HIT_DAMAGE,
    P_KNOCKBACK,
    P_KNOCKBACK_SCALE,
    P_RADIUS,
    P_REACH,
    P_RESTITUTION,
    P_SPAWN_JITTER,
    P_SPEED_NORM,
    P_STATS_SPREAD,
    R_DAMAGE_TAKEN,
    R_DEATH,
    R_DRAW,
    R_EDGE,
    R_HIT,
    R_INSIDE,
    R_KNOCKOUT,
    R_SURVIVE,
    R_WIN,
    V_APPROACH,
    V_HESITATE,
    V_KIND,
    V_LAG,
    V_LEASH,
    V_NOISE,
    V_RANGE,
    V_RETREAT,
    V_STANDOFF,
)
from arena.spec import (
    ACTION_ATTACK,
    ACTION_IDLE,
    ENEMY_FEATURES,
    FATE_ALIVE,
    FATE_KNOCKED_OUT,
    FATE_RING_OUT,
    FULL_EXTRA,
    NUM_ACTIONS,
    OBS_SIZE,
)

# GNU OpenMP aborts a process that forks after using it (pufferlib's Multiprocessing
# forks); the fork-safe layers (tbb if installed, else numba's workqueue) do not.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"

DT = 1.0 / 60.0  # seconds per frame
NO_FIGHTER = -1
HEALTH_EPSILON = 1e-9  # health below this is 0: ten hits of 0.1 leave 1e-16 in floating point

# Columns of `fl`, the per-fighter float64 state.
X, Y = 0, 1  # position, m
VX, VY = 2, 3  # velocity, m/s
FACING = 4  # facing angle, radians (0 = +x, counter-clockwise)
HEALTH = 5  # health, 0..1
SIZE = 6  # body radius, m
SPEED = 7  # maximum self-propelled speed, m/s
MASS = 8  # mass, kg
EP_RETURN = 9  # reward collected this match
STEP_REWARD = 10  # reward collected this decision (scratch)
FINAL_RETURN = 11  # EP_RETURN of the last ended match
BASE_SIZE = 12  # the fighter's own size, speed and mass; SIZE, SPEED and MASS are this match's
BASE_SPEED = 13  # (the same unless the rules' stats_spread draws them per match)
BASE_MASS = 14
NUM_FL = 15

# Columns of `it`, the per-fighter int32 state.
COOLDOWN = 0  # frames until the next attack is possible
ALIVE = 1  # 1 while in the match
LAST_HITTER = 2  # slot of the last fighter who hit this one, or NO_FIGHTER
LAST_HIT_FRAME = 3  # frame of that hit
ELIM_ORDER = 4  # 0 while standing, else the arena's elimination count when eliminated
FATE = 5  # FATE_* below
BOT = 6  # row of the bot variant table (rows 0-6: the built-in bots by id), or LEARNER for a policy-driven agent
ACTION = 7  # action held this decision
EP_HITS = 8  # hits landed this match
EP_KOS = 9  # credited knockouts this match
EP_RINGOUTS = 10  # credited ring-outs this match
HIT_TARGET = 11  # this frame's attack target (scratch)
AGENT_ROW = 12  # row in the flat agent buffers, or -1 for scripted slots
FINAL_RANK = 13  # rank in the last ended match
FINAL_HITS = 14  # EP_HITS, EP_KOS, EP_RINGOUTS and FATE of the last ended match
FINAL_KOS = 15
FINAL_RINGOUTS = 16
FINAL_FATE = 17
NUM_IT = 18

# Columns of `ar`, the per-arena int32 counters.
FRAME = 0  # frames simulated in this match
ELIM_COUNT = 1  # elimination events so far
MATCH_END = 2  # ONGOING, TERMINATED or TRUNCATED after the last decision
FINAL_LENGTH = 3  # frames of the last ended match
NUM_AR = 4

# Match status.
ONGOING = 0
TERMINATED = 1
TRUNCATED = 2

# Scripted bot ids (arena.rules.BOT_NAMES order).
BOT_RANDOM, BOT_IDLE, BOT_CHASER, BOT_KITER, BOT_EDGE_PUSHER, BOT_COUNTER, BOT_STRIKER = 0, 1, 2, 3, 4, 5, 6
# A bot's retreat distance (kiter: 1.2 reach), edge_pusher's standoff (0.8 reach) and the other
# behaviour parameters are columns of the variant table (arena/variants.py holds the defaults).
EDGE_SAFE_FRACTION = 0.6  # a retreat bends towards the centre past this fraction of R
EDGE_PULL = 3.0  # strength of that bend per unit of radius fraction
BRAKE_SPEED = 0.5  # a bot inside its standoff distance brakes while closing in faster than this, m/s
PUSH_ARRIVED = 0.3  # edge_pusher considers itself in position within this distance, m
COUNTER_GUARD = 2.0  # counter turns to face enemies closer than this, in units of reach
COUNTER_HOME = 1.0  # counter walks back to the centre when further out than this, m

# Compass: action k moves towards angle pi/2 - k*pi/4 (0 = north = +y, 2 = east = +x, clockwise).
SQRT_HALF = math.sqrt(0.5)
DIR_X = np.array([0.0, SQRT_HALF, 1.0, SQRT_HALF, 0.0, -SQRT_HALF, -1.0, -SQRT_HALF])
DIR_Y = np.array([1.0, SQRT_HALF, 0.0, -SQRT_HALF, -1.0, -SQRT_HALF, 0.0, SQRT_HALF])
DIR_ANGLE = np.array([math.pi / 2 - k * math.pi / 4 for k in range(8)])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_POW_M53 = 1.0 / 9007199254740992.0


# ---------------------------------------------------------------- randomness
@njit(cache=True, inline="always")
def rng_next(rng, a):
    """splitmix64: advance arena a's generator and return 64 random bits."""
    z = rng[a] + _GOLDEN
    rng[a] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def rng_uniform(rng, a):
    """A float in [0, 1) from the top 53 bits."""
    return float(rng_next(rng, a) >> _S11) * _TWO_POW_M53


@njit(cache=True, inline="always")
def rng_below(rng, a, n):
    """An integer in [0, n)."""
    return min(int(rng_uniform(rng, a) * n), n - 1)


# ---------------------------------------------------------------- geometry helpers
@njit(cache=True, inline="always")
def compass(dx, dy):
    """The move action (0-7) whose direction is closest to (dx, dy)."""
    angle = math.atan2(dy, dx)
    k = int(math.floor((math.pi / 2.0 - angle) / (math.pi / 4.0) + 0.5))
    return k % 8


@njit(cache=True, inline="always")
def in_cone(facing, dx, dy, cos_cone):
    """Whether direction (dx, dy) lies within the attack cone around the facing angle."""
    d = math.sqrt(dx * dx + dy * dy)
    if d == 0.0:
        return True
    return (math.cos(facing) * dx + math.sin(facing) * dy) >= cos_cone * d


@njit(cache=True, inline="always")
def nearest_enemy(fl, it, a, f):
    """Index of the nearest alive enemy of fighter f (ties: lower index), or NO_FIGHTER."""
    best = NO_FIGHTER
    best_d2 = 0.0
    for j in range(fl.shape[1]):
        if j == f or it[a, j, ALIVE] == 0:
            continue
        dx = fl[a, j, X] - fl[a, f, X]
        dy = fl[a, j, Y] - fl[a, f, Y]
        d2 = dx * dx + dy * dy
        if best == NO_FIGHTER or d2 < best_d2:
            best = j
            best_d2 = d2
    return best


@njit(cache=True)
def ring_position(fl, it, a, f, radius):
    """How far inside its nearest standing enemy fighter f stands: the enemy's distance from the
    centre minus its own, in ring radii (the `inside` reward's potential); 0 with no enemy standing."""
    j = nearest_enemy(fl, it, a, f)
    if j == NO_FIGHTER:
        return 0.0
    own = math.sqrt(fl[a, f, X] * fl[a, f, X] + fl[a, f, Y] * fl[a, f, Y])
    enemy = math.sqrt(fl[a, j, X] * fl[a, j, X] + fl[a, j, Y] * fl[a, j, Y])
    return (enemy - own) / radius


@njit(cache=True)
def add_ring_positions(a, fl, it, weight, radius):
    """Add weight x its ring position to the decision's reward of each standing fighter of arena a."""
    for f in range(fl.shape[1]):
        if it[a, f, ALIVE] != 0:
            fl[a, f, STEP_REWARD] += weight * ring_position(fl, it, a, f, radius)


# ---------------------------------------------------------------- scripted bots
@njit(cache=True, inline="always")
def retreat_move(a, f, fl, dx, dy, dist, radius):
    """The move away from an enemy at (dx, dy), bent towards the centre near the rim."""
    ux = -dx / max(dist, 1e-9)
    uy = -dy / max(dist, 1e-9)
    r = math.sqrt(fl[a, f, X] ** 2 + fl[a, f, Y] ** 2)
    pull = max(0.0, r / radius - EDGE_SAFE_FRACTION) * EDGE_PULL
    if r > 0.0:
        ux -= pull * fl[a, f, X] / r
        uy -= pull * fl[a, f, Y] / r
    return compass(ux, uy)


@njit(cache=True, inline="always")
def hold_off(a, f, fl, dx, dy, dist):
    """Inside its standoff distance a bot does not step in: it brakes (moves away) while its own
    velocity still carries it towards the enemy faster than BRAKE_SPEED, else it idles."""
    closing = (fl[a, f, VX] * dx + fl[a, f, VY] * dy) / max(dist, 1e-9)
    if closing > BRAKE_SPEED:
        return compass(-dx, -dy)
    return ACTION_IDLE


@njit(cache=True, inline="always")
def bot_action(v, a, f, fl, it, rng, params, variants):
    """The action of bot variant v (a row of `variants`) by its base rules, for fighter f of
    arena a this decision. Defaults (retreat 0, standoff 0, range 1) never change a branch."""
    kind = int(variants[v, V_KIND])
    if kind == BOT_RANDOM:
        return rng_below(rng, a, NUM_ACTIONS)
    if kind == BOT_IDLE:
        return ACTION_IDLE
    j = nearest_enemy(fl, it, a, f)
    if j == NO_FIGHTER:
        return ACTION_IDLE
    reach = params[P_REACH]
    strike = variants[v, V_RANGE] * reach
    keep = variants[v, V_STANDOFF] * reach
    retreat = variants[v, V_RETREAT] * reach
    dx = fl[a, j, X] - fl[a, f, X]
    dy = fl[a, j, Y] - fl[a, f, Y]
    dist = math.sqrt(dx * dx + dy * dy)
    ready = it[a, f, COOLDOWN] == 0
    facing_enemy = in_cone(fl[a, f, FACING], dx, dy, params[P_COS_CONE])
    if not ready and dist < retreat:
        # Every bot with a retreat distance backs off while cooling down (the kiter by default).
        return retreat_move(a, f, fl, dx, dy, dist, params[P_RADIUS])
    if kind == BOT_CHASER:
        if dist <= strike and ready and facing_enemy:
            return ACTION_ATTACK
        if strike < dist < keep:
            return hold_off(a, f, fl, dx, dy, dist)
        return compass(dx, dy)
    if kind == BOT_KITER:
        if ready:
            if dist <= strike and facing_enemy:
                return ACTION_ATTACK
            if strike < dist < keep:
                return hold_off(a, f, fl, dx, dy, dist)
            return compass(dx, dy)
        return ACTION_IDLE
    if kind == BOT_EDGE_PUSHER:
        # Stand between the enemy and the centre, then strike outwards.
        er = math.sqrt(fl[a, j, X] ** 2 + fl[a, j, Y] ** 2)
        if er > 1e-9:
            ox = fl[a, j, X] / er
            oy = fl[a, j, Y] / er
        else:
            ox = dx / max(dist, 1e-9)
            oy = dy / max(dist, 1e-9)
        my_r = math.sqrt(fl[a, f, X] ** 2 + fl[a, f, Y] ** 2)
        if dist <= strike and ready and facing_enemy and my_r < er:
            return ACTION_ATTACK
        tx = fl[a, j, X] - ox * variants[v, V_STANDOFF] * reach - fl[a, f, X]
        ty = fl[a, j, Y] - oy * variants[v, V_STANDOFF] * reach - fl[a, f, Y]
        if math.sqrt(tx * tx + ty * ty) > PUSH_ARRIVED:
            return compass(tx, ty)
        return compass(dx, dy)
    if kind == BOT_COUNTER:
        # Never approaches: strike whoever comes into reach, face whoever comes near,
        # otherwise hold the centre.
        home = fl[a, f, X] ** 2 + fl[a, f, Y] ** 2 <= COUNTER_HOME * COUNTER_HOME
        if ready and dist < COUNTER_GUARD * reach:
            if dist <= strike and facing_enemy:
                return ACTION_ATTACK
            if facing_enemy:
                return ACTION_IDLE
            return compass(dx, dy)
        if not home:
            return compass(-fl[a, f, X], -fl[a, f, Y])
        return ACTION_IDLE
    if kind == BOT_STRIKER:
        # The chaser without its wait for the cooldown: it holds the attack whenever the
        # enemy is in reach, so a cooldown that ends mid-decision strikes on that frame.
        if dist <= strike and facing_enemy:
            return ACTION_ATTACK
        if strike < dist < keep:
            return hold_off(a, f, fl, dx, dy, dist)
        return compass(dx, dy)
    return ACTION_IDLE


@njit(cache=True, inline="always")
def variant_action(v, a, f, fl, it, rng, params, variants):
    """The action of bot variant v for fighter f of arena a: noise, reaction delay, the leash,
    hesitation and approach speed around bot_action. Each draws from the arena's generator only
    when its parameter is away from its default, so a built-in bot's random stream is unchanged
    (the leash draws nothing)."""
    noise = variants[v, V_NOISE]
    if noise > 0.0 and rng_uniform(rng, a) < noise:
        return rng_below(rng, a, NUM_ACTIONS)
    lag = variants[v, V_LAG]
    if lag > 0.0 and rng_uniform(rng, a) < lag:
        return int(it[a, f, ACTION])  # the action of its previous decision (idle at a match start)
    act = bot_action(v, a, f, fl, it, rng, params, variants)
    leash = variants[v, V_LEASH]
    if leash < 1.0 and act != ACTION_ATTACK:
        # Farther from the centre than its leash, it walks back instead of moving on (a strike
        # stays); the random and idle bots have no moves of their own to hold back.
        kind = int(variants[v, V_KIND])
        x = fl[a, f, X]
        y = fl[a, f, Y]
        if kind != BOT_RANDOM and kind != BOT_IDLE and x * x + y * y > (leash * params[P_RADIUS]) ** 2:
            act = compass(-x, -y)
    hesitate = variants[v, V_HESITATE]
    if hesitate > 0.0 and act == ACTION_ATTACK and it[a, f, COOLDOWN] == 0 and rng_uniform(rng, a) < hesitate:
        return ACTION_IDLE
    approach = variants[v, V_APPROACH]
    if approach < 1.0 and act < 8:
        j = nearest_enemy(fl, it, a, f)
        if j != NO_FIGHTER:
            towards = DIR_X[act] * (fl[a, j, X] - fl[a, f, X]) + DIR_Y[act] * (fl[a, j, Y] - fl[a, f, Y])
            if towards > 0.0 and rng_uniform(rng, a) >= approach:
                return ACTION_IDLE
    return act


@njit(cache=True)
def bot_actions(v, arenas, slots, fl, it, rng, params, variants, out):
    """out[k] = bot variant v's action for fighter slots[k] of arena arenas[k] (idle once
    eliminated): built-in bots playing agent rows, for evaluation and the demos. It lives
    here because numba's cache only notices edits to the file of the function it compiled."""
    for k in range(arenas.shape[0]):
        a = arenas[k]
        f = slots[k]
        if it[a, f, ALIVE] == 0:
            out[k] = ACTION_IDLE
        else:
            out[k] = variant_action(v, a, f, fl, it, rng, params, variants)


# ---------------------------------------------------------------- one arena
@njit(cache=True, inline="always")
def reset_arena(a, fl, it, ar, rng, bot_pool, pool_len, params):
    """Start a new match in arena a: fighters evenly on a circle of radius R/2 facing
    the centre, rotated by a random angle, each with radial and arc jitter; bots of
    slots with a pool are drawn from it; with a stats spread, each fighter's size, speed and
    mass are drawn around its own."""
    n = fl.shape[1]
    radius = params[P_RADIUS]
    jitter = params[P_SPAWN_JITTER]
    spread = params[P_STATS_SPREAD]
    rotation = rng_uniform(rng, a) * 2.0 * math.pi
    for f in range(n):
        r = 0.5 * radius + (2.0 * rng_uniform(rng, a) - 1.0) * jitter
        angle = rotation + 2.0 * math.pi * f / n + (2.0 * rng_uniform(rng, a) - 1.0) * jitter / (0.5 * radius)
        fl[a, f, X] = r * math.cos(angle)
        fl[a, f, Y] = r * math.sin(angle)
        fl[a, f, VX] = 0.0
        fl[a, f, VY] = 0.0
        fl[a, f, FACING] = angle + math.pi
        fl[a, f, HEALTH] = 1.0
        fl[a, f, EP_RETURN] = 0.0
        it[a, f, COOLDOWN] = 0
        it[a, f, ALIVE] = 1
        it[a, f, LAST_HITTER] = NO_FIGHTER
        it[a, f, LAST_HIT_FRAME] = 0
        it[a, f, ELIM_ORDER] = 0
        it[a, f, FATE] = FATE_ALIVE
        it[a, f, ACTION] = ACTION_IDLE
        it[a, f, EP_HITS] = 0
        it[a, f, EP_KOS] = 0
        it[a, f, EP_RINGOUTS] = 0
        if pool_len[f] > 0:
            it[a, f, BOT] = bot_pool[f, rng_below(rng, a, pool_len[f])]
        if spread > 0.0:  # drawn only with a spread, so runs without one keep their random stream
            fl[a, f, SIZE] = fl[a, f, BASE_SIZE] * (1.0 + spread * (2.0 * rng_uniform(rng, a) - 1.0))
            fl[a, f, SPEED] = fl[a, f, BASE_SPEED] * (1.0 + spread * (2.0 * rng_uniform(rng, a) - 1.0))
            fl[a, f, MASS] = fl[a, f, BASE_MASS] * (1.0 + spread * (2.0 * rng_uniform(rng, a) - 1.0))
    ar[a, FRAME] = 0
    ar[a, ELIM_COUNT] = 0


@njit(cache=True, inline="always")
def physics_frame(a, fl, it, ar, params, weights):
    """Advance arena a by one 60 Hz frame, adding this frame's rewards to STEP_REWARD."""
    n = fl.shape[1]
    reach = params[P_REACH]
    cos_cone = params[P_COS_CONE]
    radius = params[P_RADIUS]
    now = ar[a, FRAME]

    # 1. Actions: moves accelerate and turn the fighter; ready attacks pick a target.
    for f in range(n):
        it[a, f, HIT_TARGET] = NO_FIGHTER
        if it[a, f, ALIVE] == 0:
            continue
        act = it[a, f, ACTION]
        if act < 8:
            vx0 = fl[a, f, VX]
            vy0 = fl[a, f, VY]
            s0 = math.sqrt(vx0 * vx0 + vy0 * vy0)
            vx = vx0 + DIR_X[act] * params[P_ACCEL] * DT
            vy = vy0 + DIR_Y[act] * params[P_ACCEL] * DT
            s1 = math.sqrt(vx * vx + vy * vy)
            cap = max(fl[a, f, SPEED], s0)  # moving never adds speed past the cap; knockback may exceed it
            if s1 > cap:
                vx *= cap / s1
                vy *= cap / s1
            fl[a, f, VX] = vx
            fl[a, f, VY] = vy
            fl[a, f, FACING] = DIR_ANGLE[act]
        elif act == ACTION_ATTACK and it[a, f, COOLDOWN] == 0:
            it[a, f, COOLDOWN] = int(params[P_COOLDOWN])
            best_d2 = reach * reach
            for j in range(n):
                if j == f or it[a, j, ALIVE] == 0:
                    continue
                dx = fl[a, j, X] - fl[a, f, X]
                dy = fl[a, j, Y] - fl[a, f, Y]
                d2 = dx * dx + dy * dy
                if d2 <= best_d2 and in_cone(fl[a, f, FACING], dx, dy, cos_cone):
                    if it[a, f, HIT_TARGET] == NO_FIGHTER or d2 < best_d2:
                        it[a, f, HIT_TARGET] = j
                        best_d2 = d2

    # 2. Hits land together, in attacker order: damage, knockback, credit.
    for f in range(n):
        j = it[a, f, HIT_TARGET]
        if j == NO_FIGHTER:
            continue
        damage = params[P_HIT_DAMAGE]
        health = fl[a, j, HEALTH] - damage
        if health < HEALTH_EPSILON:
            health = 0.0
        fl[a, j, HEALTH] = health
        impulse = params[P_KNOCKBACK] * (1.0 + params[P_KNOCKBACK_SCALE] * (1.0 - health))
        dx = fl[a, j, X] - fl[a, f, X]
        dy = fl[a, j, Y] - fl[a, f, Y]
        d = math.sqrt(dx * dx + dy * dy)
        if d > 0.0:
            ux = dx / d
            uy = dy / d
        else:
            ux = math.cos(fl[a, f, FACING])
            uy = math.sin(fl[a, f, FACING])
        fl[a, j, VX] += ux * impulse / fl[a, j, MASS]
        fl[a, j, VY] += uy * impulse / fl[a, j, MASS]
        it[a, j, LAST_HITTER] = f
        it[a, j, LAST_HIT_FRAME] = now
        it[a, f, EP_HITS] += 1
        fl[a, f, STEP_REWARD] += weights[R_HIT]
        fl[a, j, STEP_REWARD] += weights[R_DAMAGE_TAKEN] * damage * 10.0

    # 3. Friction, then motion.
    decay = params[P_FRICTION_DECAY]
    for f in range(n):
        if it[a, f, ALIVE] == 0:
            continue
        fl[a, f, VX] *= decay
        fl[a, f, VY] *= decay
        fl[a, f, X] += fl[a, f, VX] * DT
        fl[a, f, Y] += fl[a, f, VY] * DT

    # 4. Bodies collide: push overlapping pairs apart by inverse mass, exchange momentum.
    e = params[P_RESTITUTION]
    for i in range(n):
        if it[a, i, ALIVE] == 0:
            continue
        for j in range(i + 1, n):
            if it[a, j, ALIVE] == 0:
                continue
            dx = fl[a, j, X] - fl[a, i, X]
            dy = fl[a, j, Y] - fl[a, i, Y]
            reach_ij = fl[a, i, SIZE] + fl[a, j, SIZE]
            d2 = dx * dx + dy * dy
            if d2 >= reach_ij * reach_ij:
                continue
            d = math.sqrt(d2)
            overlap = reach_ij - d
            if d > 0.0:
                nx = dx / d
                ny = dy / d
            else:
                nx = 1.0
                ny = 0.0
            inv_i = 1.0 / fl[a, i, MASS]
            inv_j = 1.0 / fl[a, j, MASS]
            share_i = inv_i / (inv_i + inv_j)
            share_j = inv_j / (inv_i + inv_j)
            fl[a, i, X] -= nx * overlap * share_i
            fl[a, i, Y] -= ny * overlap * share_i
            fl[a, j, X] += nx * overlap * share_j
            fl[a, j, Y] += ny * overlap * share_j
            closing = (fl[a, j, VX] - fl[a, i, VX]) * nx + (fl[a, j, VY] - fl[a, i, VY]) * ny
            if closing < 0.0:
                impulse = -(1.0 + e) * closing / (inv_i + inv_j)
                fl[a, i, VX] -= impulse * inv_i * nx
                fl[a, i, VY] -= impulse * inv_i * ny
                fl[a, j, VX] += impulse * inv_j * nx
                fl[a, j, VY] += impulse * inv_j * ny

    # 5. Cooldowns tick.
    for f in range(n):
        if it[a, f, ALIVE] != 0 and it[a, f, COOLDOWN] > 0:
            it[a, f, COOLDOWN] -= 1

    # 6. Eliminations: knockouts (credited to the hitter) and ring-outs (credited to a
    #    recent hitter). Everyone eliminated in the same frame shares one elimination order.
    eliminated_any = False
    for f in range(n):
        if it[a, f, ALIVE] == 0:
            continue
        if fl[a, f, HEALTH] <= 0.0:
            it[a, f, FATE] = FATE_KNOCKED_OUT
        elif fl[a, f, X] ** 2 + fl[a, f, Y] ** 2 > radius * radius:
            it[a, f, FATE] = FATE_RING_OUT
        else:
            continue
        if not eliminated_any:
            ar[a, ELIM_COUNT] += 1
            eliminated_any = True
        it[a, f, ALIVE] = 0
        it[a, f, ELIM_ORDER] = ar[a, ELIM_COUNT]
        fl[a, f, VX] = 0.0
        fl[a, f, VY] = 0.0
        fl[a, f, STEP_REWARD] += weights[R_DEATH]
        c = it[a, f, LAST_HITTER]
        if it[a, f, FATE] == FATE_KNOCKED_OUT and c != NO_FIGHTER:
            it[a, c, EP_KOS] += 1
            fl[a, c, STEP_REWARD] += weights[R_KNOCKOUT]
        elif c != NO_FIGHTER and now - it[a, f, LAST_HIT_FRAME] <= params[P_CREDIT_WINDOW]:
            it[a, c, EP_RINGOUTS] += 1
            fl[a, c, STEP_REWARD] += weights[R_KNOCKOUT]

    # 7. Per-frame terms for the fighters still standing.
    edge_r = radius - params[P_EDGE_WIDTH]
    for f in range(n):
        if it[a, f, ALIVE] == 0:
            continue
        fl[a, f, STEP_REWARD] += weights[R_SURVIVE]
        if fl[a, f, X] ** 2 + fl[a, f, Y] ** 2 > edge_r * edge_r:
            fl[a, f, STEP_REWARD] += weights[R_EDGE]

    ar[a, FRAME] = now + 1


@njit(cache=True, inline="always")
def match_status(a, it, ar, max_frames):
    """TERMINATED when at most one fighter stands, TRUNCATED at the frame limit, else ONGOING."""
    standing = 0
    for f in range(it.shape[1]):
        standing += it[a, f, ALIVE]
    if standing <= 1:
        return TERMINATED
    if ar[a, FRAME] >= max_frames:
        return TRUNCATED
    return ONGOING


@njit(cache=True, inline="always")
def rank_fighters(a, fl, it):
    """Competition ranking (1, 1, 3, ...) into FINAL_RANK: standing fighters before
    eliminated ones, standing fighters by health, eliminated ones by how late they fell."""
    n = fl.shape[1]
    for i in range(n):
        better = 0
        alive_i = it[a, i, ALIVE] != 0
        for j in range(n):
            if j == i:
                continue
            alive_j = it[a, j, ALIVE] != 0
            if alive_j and not alive_i:
                better += 1
            elif alive_j and alive_i and fl[a, j, HEALTH] > fl[a, i, HEALTH]:
                better += 1
            elif not alive_j and not alive_i and it[a, j, ELIM_ORDER] > it[a, i, ELIM_ORDER]:
                better += 1
        it[a, i, FINAL_RANK] = 1 + better


@njit(cache=True, inline="always")
def write_enemy(a, slot, j, fl, x, y, vx, vy, inv_r, inv_v, out, row):
    """Enemy j's five features in observation slot `slot` (zeros when j is NO_FIGHTER)."""
    base = 5 + ENEMY_FEATURES * slot
    if j == NO_FIGHTER:
        for k in range(ENEMY_FEATURES):
            out[row, base + k] = 0.0
        return
    out[row, base + 0] = (fl[a, j, X] - x) * inv_r
    out[row, base + 1] = (fl[a, j, Y] - y) * inv_r
    out[row, base + 2] = (fl[a, j, VX] - vx) * inv_v
    out[row, base + 3] = (fl[a, j, VY] - vy) * inv_v
    out[row, base + 4] = fl[a, j, HEALTH]


@njit(cache=True, inline="always")
def write_extra(a, slot, j, fl, it, inv_cooldown, out, row):
    """The full observation's three numbers of fighter j in slot `slot` (0: the observer;
    1 + k: the k-th nearest enemy): cooldown left as a fraction, cos and sin of its facing
    (zeros when j is NO_FIGHTER)."""
    base = OBS_SIZE + FULL_EXTRA * slot
    if j == NO_FIGHTER:
        for k in range(FULL_EXTRA):
            out[row, base + k] = 0.0
        return
    out[row, base + 0] = it[a, j, COOLDOWN] * inv_cooldown
    out[row, base + 1] = math.cos(fl[a, j, FACING])
    out[row, base + 2] = math.sin(fl[a, j, FACING])


@njit(cache=True, inline="always")
def write_observation(a, f, fl, it, params, out, row):
    """The observation of fighter f (zeros once eliminated): the 30 numbers, and with an out
    of arena.spec.FULL_OBS_SIZE columns the full observation's 18 more; see docs/arena.md."""
    if it[a, f, ALIVE] == 0:
        for k in range(out.shape[1]):
            out[row, k] = 0.0
        return
    inv_r = 1.0 / params[P_RADIUS]
    inv_v = 1.0 / params[P_SPEED_NORM]
    x = fl[a, f, X]
    y = fl[a, f, Y]
    vx = fl[a, f, VX]
    vy = fl[a, f, VY]
    out[row, 0] = x * inv_r
    out[row, 1] = y * inv_r
    out[row, 2] = fl[a, f, HEALTH]
    out[row, 3] = vx * inv_v
    out[row, 4] = vy * inv_v
    # The 5 nearest alive enemies, kept sorted in scalars by insertion (no allocation).
    # Enemies are visited in index order and only a strictly nearer one moves ahead,
    # so ties keep the lower index first.
    d0 = d1 = d2 = d3 = d4 = np.inf
    j0 = j1 = j2 = j3 = j4 = NO_FIGHTER
    for j in range(fl.shape[1]):
        if j == f or it[a, j, ALIVE] == 0:
            continue
        dx = fl[a, j, X] - x
        dy = fl[a, j, Y] - y
        d = dx * dx + dy * dy
        if d >= d4:
            continue
        if d < d3:
            d4, j4 = d3, j3
            if d < d2:
                d3, j3 = d2, j2
                if d < d1:
                    d2, j2 = d1, j1
                    if d < d0:
                        d1, j1 = d0, j0
                        d0, j0 = d, j
                    else:
                        d1, j1 = d, j
                else:
                    d2, j2 = d, j
            else:
                d3, j3 = d, j
        else:
            d4, j4 = d, j
    write_enemy(a, 0, j0, fl, x, y, vx, vy, inv_r, inv_v, out, row)
    write_enemy(a, 1, j1, fl, x, y, vx, vy, inv_r, inv_v, out, row)
    write_enemy(a, 2, j2, fl, x, y, vx, vy, inv_r, inv_v, out, row)
    write_enemy(a, 3, j3, fl, x, y, vx, vy, inv_r, inv_v, out, row)
    write_enemy(a, 4, j4, fl, x, y, vx, vy, inv_r, inv_v, out, row)
    if out.shape[1] > OBS_SIZE:  # the full observation
        inv_cooldown = 1.0 / max(params[P_COOLDOWN], 1.0)
        write_extra(a, 0, f, fl, it, inv_cooldown, out, row)
        write_extra(a, 1, j0, fl, it, inv_cooldown, out, row)
        write_extra(a, 2, j1, fl, it, inv_cooldown, out, row)
        write_extra(a, 3, j2, fl, it, inv_cooldown, out, row)
        write_extra(a, 4, j3, fl, it, inv_cooldown, out, row)
        write_extra(a, 5, j4, fl, it, inv_cooldown, out, row)


@njit(cache=True, inline="always")
def decide_and_step(
    a,
    fl,
    it,
    ar,
    rng,
    bot_pool,
    pool_len,
    actions_in,
    obs_out,
    rew_out,
    term_out,
    trunc_out,
    mask_out,
    params,
    variants,
    weights,
    frame_skip,
    max_frames,
    autoreset,
):
    """One decision for arena a: choose bot actions, run frame_skip frames (stopping early
    when the match ends), rank and reset an ended match, and write each agent row's
    observation, summed reward, terminal, truncation and mask. Returns 1 if the match ended.

    MATCH_END is set to ONGOING/TERMINATED/TRUNCATED; for an ended match the FINAL_*
    columns hold its ranks, returns, hits, credited knockouts and ring-outs, fates and
    length, copied before the arena resets.
    """
    n = fl.shape[1]
    standing_before = 0  # bitmask of who stood at the start of the decision
    for f in range(n):
        fl[a, f, STEP_REWARD] = 0.0
        if it[a, f, ALIVE] != 0:
            standing_before |= 1 << f
            if it[a, f, BOT] == LEARNER:
                it[a, f, ACTION] = actions_in[it[a, f, AGENT_ROW]]
            else:
                it[a, f, ACTION] = variant_action(it[a, f, BOT], a, f, fl, it, rng, params, variants)
    inside = weights[R_INSIDE]  # potential-based: the ring position's change over the decision,
    if inside != 0.0:  # minus the position before it...
        add_ring_positions(a, fl, it, -inside, params[P_RADIUS])
    status = ONGOING
    for _ in range(frame_skip):
        physics_frame(a, fl, it, ar, params, weights)
        status = match_status(a, it, ar, max_frames)
        if status != ONGOING:
            break
    ar[a, MATCH_END] = status
    if inside != 0.0 and status == ONGOING:  # ...plus the one after it (0 once a fighter fell or the match ended)
        add_ring_positions(a, fl, it, inside, params[P_RADIUS])
    if status != ONGOING:
        rank_fighters(a, fl, it)
        winners = 0
        for f in range(n):
            if it[a, f, FINAL_RANK] == 1:
                winners += 1
        # A sole winner is paid the win and a positive survive for the frames it did not have to
        # play; fighters sharing rank 1 are paid the draw (RewardWeights: stalling never pays).
        left = max(max_frames - ar[a, FRAME], 0)
        for f in range(n):
            if it[a, f, FINAL_RANK] == 1:
                if winners == 1:
                    fl[a, f, STEP_REWARD] += weights[R_WIN] + max(weights[R_SURVIVE], 0.0) * left
                else:
                    fl[a, f, STEP_REWARD] += weights[R_DRAW]
    for f in range(n):
        fl[a, f, EP_RETURN] += fl[a, f, STEP_REWARD]
    if status != ONGOING:
        ar[a, FINAL_LENGTH] = ar[a, FRAME]
        for f in range(n):
            fl[a, f, FINAL_RETURN] = fl[a, f, EP_RETURN]
            it[a, f, FINAL_HITS] = it[a, f, EP_HITS]
            it[a, f, FINAL_KOS] = it[a, f, EP_KOS]
            it[a, f, FINAL_RINGOUTS] = it[a, f, EP_RINGOUTS]
            it[a, f, FINAL_FATE] = it[a, f, FATE]
    # Agent outputs: terminal when eliminated this decision or the match terminated;
    # truncated when the match hit the frame limit with the fighter standing.
    for f in range(n):
        row = it[a, f, AGENT_ROW]
        if row < 0:
            continue
        died_now = (standing_before >> f) & 1 == 1 and it[a, f, ALIVE] == 0
        rew_out[row] = fl[a, f, STEP_REWARD]
        term_out[row] = died_now or status == TERMINATED
        trunc_out[row] = status == TRUNCATED and it[a, f, ALIVE] != 0
    if status != ONGOING and autoreset:
        reset_arena(a, fl, it, ar, rng, bot_pool, pool_len, params)
    for f in range(n):
        row = it[a, f, AGENT_ROW]
        if row < 0:
            continue
        mask_out[row] = it[a, f, ALIVE] != 0
        write_observation(a, f, fl, it, params, obs_out, row)
    return 0 if status == ONGOING else 1


# ---------------------------------------------------------------- all arenas
@njit(cache=True, parallel=True)
def step_arenas(
    fl,
    it,
    ar,
    rng,
    bot_pool,
    pool_len,
    actions_in,
    obs_out,
    rew_out,
    term_out,
    trunc_out,
    mask_out,
    params,
    variants,
    weights,
    frame_skip,
    max_frames,
    autoreset,
):
    """decide_and_step for every arena, arenas spread over numba's threads with prange
    (numba.set_num_threads(1) runs them on the calling thread). Returns how many matches
    ended."""
    ended = 0
    for a in prange(fl.shape[0]):
        ended += decide_and_step(
            a,
            fl,
            it,
            ar,
            rng,
            bot_pool,
            pool_len,
            actions_in,
            obs_out,
            rew_out,
            term_out,
            trunc_out,
            mask_out,
            params,
            variants,
            weights,
            frame_skip,
            max_frames,
            autoreset,
        )
    return ended


@njit(cache=True)
def reset_arenas(fl, it, ar, rng, bot_pool, pool_len, obs_out, rew_out, term_out, trunc_out, mask_out, params):
    """Start a new match in every arena and write the first observations."""
    for a in range(fl.shape[0]):
        reset_arena(a, fl, it, ar, rng, bot_pool, pool_len, params)
        ar[a, MATCH_END] = ONGOING
        for f in range(fl.shape[1]):
            row = it[a, f, AGENT_ROW]
            if row < 0:
                continue
            rew_out[row] = 0.0
            term_out[row] = False
            trunc_out[row] = False
            mask_out[row] = True
            write_observation(a, f, fl, it, params, obs_out, row)
