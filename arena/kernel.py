"""Numba kernels of the ring: one call steps every arena.

State is struct-of-arrays with a leading (num_arenas, fighters) axis; kernels take
plain arrays, hold no Python objects, allocate nothing per step and write their
outputs in place. Arenas are independent, so `step_arenas_parallel` runs them with
prange and each arena only touches its own slices; every random draw comes from the
arena's own splitmix64 generator, so results do not depend on the thread count.

The rules these kernels implement are written out in docs/arena.md; arena/reference.py
is a slow, obvious implementation of the same document that the tests compare with.
"""
import math

import os

import numba
import numpy as np
from numba import njit, prange

from arena.rules import (
    LEARNER, P_ACCEL, P_COOLDOWN, P_COS_CONE, P_CREDIT_WINDOW, P_EDGE_WIDTH,
    P_FRICTION_DECAY, P_HIT_DAMAGE, P_KNOCKBACK, P_KNOCKBACK_SCALE, P_RADIUS, P_REACH,
    P_RESTITUTION, P_SPAWN_JITTER, P_SPEED_NORM, R_DAMAGE_TAKEN, R_DEATH, R_EDGE, R_HIT,
    R_KNOCKOUT, R_SURVIVE, R_WIN,
)

# GNU OpenMP aborts a process that forks after using it (pufferlib's Multiprocessing
# forks); the fork-safe layers (tbb if installed, else numba's workqueue) do not.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"

DT = 1.0 / 60.0          # seconds per frame
OBS_SIZE = 30            # floats per observation
NUM_ACTIONS = 10
OBS_ENEMIES = 5          # nearest enemies in an observation
ENEMY_FEATURES = 5       # relative x, y, relative vx, vy, health
ACTION_IDLE = 8
ACTION_ATTACK = 9
NO_FIGHTER = -1

# Fates: how a fighter's match went.
FATE_ALIVE = 0
FATE_KNOCKED_OUT = 1
FATE_RING_OUT = 2

# Match status returned per arena.
ONGOING = 0
TERMINATED = 1
TRUNCATED = 2

# Scripted bot ids (arena.rules.BOT_NAMES order).
BOT_RANDOM, BOT_IDLE, BOT_CHASER, BOT_KITER, BOT_EDGE_PUSHER = 0, 1, 2, 3, 4
KITE_DISTANCE = 1.2       # kiter's retreat distance while cooling down, in units of reach
EDGE_SAFE_FRACTION = 0.6  # kiter starts bending its retreat towards the centre past this fraction of R
PUSH_STANDOFF = 0.8       # edge_pusher's standoff from the enemy on the centre side, in units of reach
PUSH_ARRIVED = 0.3        # edge_pusher considers itself in position within this distance, m

# Compass: action k moves towards angle pi/2 - k*pi/4 (0 = north = +y, 2 = east = +x, clockwise).
SQRT_HALF = math.sqrt(0.5)
DIR_X = np.array([0.0, SQRT_HALF, 1.0, SQRT_HALF, 0.0, -SQRT_HALF, -1.0, -SQRT_HALF])
DIR_Y = np.array([1.0, SQRT_HALF, 0.0, -SQRT_HALF, -1.0, -SQRT_HALF, 0.0, SQRT_HALF])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_POW_M53 = 1.0 / 9007199254740992.0


# ---------------------------------------------------------------- randomness
@njit(cache=True)
def rng_next(rng, a):
    """splitmix64: advance arena a's generator and return 64 random bits."""
    z = rng[a] + _GOLDEN
    rng[a] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def rng_uniform(rng, a):
    """A float in [0, 1) from the top 53 bits."""
    return float(rng_next(rng, a) >> _S11) * _TWO_POW_M53


@njit(cache=True)
def rng_below(rng, a, n):
    """An integer in [0, n)."""
    return min(int(rng_uniform(rng, a) * n), n - 1)


# ---------------------------------------------------------------- geometry helpers
@njit(cache=True)
def compass(dx, dy):
    """The move action (0-7) whose direction is closest to (dx, dy)."""
    angle = math.atan2(dy, dx)
    k = int(math.floor((math.pi / 2.0 - angle) / (math.pi / 4.0) + 0.5))
    return k % 8


@njit(cache=True)
def nearest_enemy(pos, alive, a, f):
    """Index of the nearest alive enemy of fighter f (ties: lower index), or NO_FIGHTER."""
    best = NO_FIGHTER
    best_d2 = 0.0
    for j in range(pos.shape[1]):
        if j == f or not alive[a, j]:
            continue
        dx = pos[a, j, 0] - pos[a, f, 0]
        dy = pos[a, j, 1] - pos[a, f, 1]
        d2 = dx * dx + dy * dy
        if best == NO_FIGHTER or d2 < best_d2:
            best = j
            best_d2 = d2
    return best


@njit(cache=True)
def in_cone(facing, dx, dy, cos_cone):
    """Whether direction (dx, dy) lies within the attack cone around the facing angle."""
    d = math.sqrt(dx * dx + dy * dy)
    if d == 0.0:
        return True
    return (math.cos(facing) * dx + math.sin(facing) * dy) >= cos_cone * d


# ---------------------------------------------------------------- scripted bots
@njit(cache=True)
def bot_action(kind, a, f, pos, facing, cooldown, alive, rng, params):
    """The action scripted bot `kind` takes for fighter f of arena a this decision."""
    if kind == BOT_RANDOM:
        return rng_below(rng, a, 10)
    if kind == BOT_IDLE:
        return ACTION_IDLE
    j = nearest_enemy(pos, alive, a, f)
    if j == NO_FIGHTER:
        return ACTION_IDLE
    reach = params[P_REACH]
    dx = pos[a, j, 0] - pos[a, f, 0]
    dy = pos[a, j, 1] - pos[a, f, 1]
    dist = math.sqrt(dx * dx + dy * dy)
    ready = cooldown[a, f] == 0
    facing_enemy = in_cone(facing[a, f], dx, dy, params[P_COS_CONE])
    if kind == BOT_CHASER:
        if dist <= reach and ready and facing_enemy:
            return ACTION_ATTACK
        return compass(dx, dy)
    if kind == BOT_KITER:
        if ready:
            if dist <= reach and facing_enemy:
                return ACTION_ATTACK
            return compass(dx, dy)
        if dist < KITE_DISTANCE * reach:
            # Retreat from the enemy, bending towards the centre near the rim.
            radius = params[P_RADIUS]
            ux = -dx / max(dist, 1e-9)
            uy = -dy / max(dist, 1e-9)
            r = math.sqrt(pos[a, f, 0] ** 2 + pos[a, f, 1] ** 2)
            pull = max(0.0, r / radius - EDGE_SAFE_FRACTION) * 3.0
            if r > 0.0:
                ux -= pull * pos[a, f, 0] / r
                uy -= pull * pos[a, f, 1] / r
            return compass(ux, uy)
        return ACTION_IDLE
    if kind == BOT_EDGE_PUSHER:
        # Stand between the enemy and the centre, then strike outwards.
        er = math.sqrt(pos[a, j, 0] ** 2 + pos[a, j, 1] ** 2)
        if er > 1e-9:
            ox = pos[a, j, 0] / er
            oy = pos[a, j, 1] / er
        else:
            ox = dx / max(dist, 1e-9)
            oy = dy / max(dist, 1e-9)
        my_r = math.sqrt(pos[a, f, 0] ** 2 + pos[a, f, 1] ** 2)
        if dist <= reach and ready and facing_enemy and my_r < er:
            return ACTION_ATTACK
        tx = pos[a, j, 0] - ox * PUSH_STANDOFF * reach - pos[a, f, 0]
        ty = pos[a, j, 1] - oy * PUSH_STANDOFF * reach - pos[a, f, 1]
        if math.sqrt(tx * tx + ty * ty) > PUSH_ARRIVED:
            return compass(tx, ty)
        return compass(dx, dy)
    return ACTION_IDLE


# ---------------------------------------------------------------- one arena
@njit(cache=True)
def reset_arena(a, pos, vel, facing, health, cooldown, alive, last_hitter, last_hit_frame,
                elim_order, fate, bot, bot_pool, pool_len, action, frame, elim_count, rng,
                ep_return, ep_hits, ep_kos, ep_ringouts, params):
    """Start a new match in arena a: fighters evenly on a circle of radius R/2 facing
    the centre, rotated by a random angle, each with radial and arc jitter."""
    n = pos.shape[1]
    radius = params[P_RADIUS]
    jitter = params[P_SPAWN_JITTER]
    rotation = rng_uniform(rng, a) * 2.0 * math.pi
    for f in range(n):
        r = 0.5 * radius + (2.0 * rng_uniform(rng, a) - 1.0) * jitter
        angle = rotation + 2.0 * math.pi * f / n + (2.0 * rng_uniform(rng, a) - 1.0) * jitter / (0.5 * radius)
        pos[a, f, 0] = r * math.cos(angle)
        pos[a, f, 1] = r * math.sin(angle)
        vel[a, f, 0] = 0.0
        vel[a, f, 1] = 0.0
        facing[a, f] = angle + math.pi
        health[a, f] = 1.0
        cooldown[a, f] = 0
        alive[a, f] = True
        last_hitter[a, f] = NO_FIGHTER
        last_hit_frame[a, f] = 0
        elim_order[a, f] = 0
        fate[a, f] = FATE_ALIVE
        action[a, f] = ACTION_IDLE
        ep_return[a, f] = 0.0
        ep_hits[a, f] = 0
        ep_kos[a, f] = 0
        ep_ringouts[a, f] = 0
        if pool_len[f] > 0:
            bot[a, f] = bot_pool[f, rng_below(rng, a, pool_len[f])]
    frame[a] = 0
    elim_count[a] = 0


@njit(cache=True)
def physics_frame(a, pos, vel, facing, health, cooldown, alive, last_hitter, last_hit_frame,
                  elim_order, fate, size, speed, mass, action, frame, elim_count,
                  ep_hits, ep_kos, ep_ringouts, hit_target, frame_rew, params, weights):
    """Advance arena a by one 60 Hz frame, adding this frame's rewards to frame_rew[a]."""
    n = pos.shape[1]
    reach = params[P_REACH]
    cos_cone = params[P_COS_CONE]
    radius = params[P_RADIUS]
    now = frame[a]

    # 1. Actions: moves accelerate and turn the fighter; ready attacks pick a target.
    for f in range(n):
        hit_target[a, f] = NO_FIGHTER
        if not alive[a, f]:
            continue
        act = action[a, f]
        if act < 8:
            vx0 = vel[a, f, 0]
            vy0 = vel[a, f, 1]
            s0 = math.sqrt(vx0 * vx0 + vy0 * vy0)
            vx = vx0 + DIR_X[act] * params[P_ACCEL] * DT
            vy = vy0 + DIR_Y[act] * params[P_ACCEL] * DT
            s1 = math.sqrt(vx * vx + vy * vy)
            cap = max(speed[a, f], s0)  # moving never adds speed past the cap; knockback may exceed it
            if s1 > cap:
                vx *= cap / s1
                vy *= cap / s1
            vel[a, f, 0] = vx
            vel[a, f, 1] = vy
            facing[a, f] = math.atan2(DIR_Y[act], DIR_X[act])
        elif act == ACTION_ATTACK and cooldown[a, f] == 0:
            cooldown[a, f] = int(params[P_COOLDOWN])
            best_d2 = reach * reach
            for j in range(n):
                if j == f or not alive[a, j]:
                    continue
                dx = pos[a, j, 0] - pos[a, f, 0]
                dy = pos[a, j, 1] - pos[a, f, 1]
                d2 = dx * dx + dy * dy
                if d2 <= best_d2 and in_cone(facing[a, f], dx, dy, cos_cone):
                    if hit_target[a, f] == NO_FIGHTER or d2 < best_d2:
                        hit_target[a, f] = j
                        best_d2 = d2

    # 2. Hits land together, in attacker order: damage, knockback, credit.
    for f in range(n):
        j = hit_target[a, f]
        if j == NO_FIGHTER:
            continue
        damage = params[P_HIT_DAMAGE]
        health[a, j] = max(0.0, health[a, j] - damage)
        impulse = params[P_KNOCKBACK] * (1.0 + params[P_KNOCKBACK_SCALE] * (1.0 - health[a, j]))
        dx = pos[a, j, 0] - pos[a, f, 0]
        dy = pos[a, j, 1] - pos[a, f, 1]
        d = math.sqrt(dx * dx + dy * dy)
        if d > 0.0:
            ux = dx / d
            uy = dy / d
        else:
            ux = math.cos(facing[a, f])
            uy = math.sin(facing[a, f])
        vel[a, j, 0] += ux * impulse / mass[a, j]
        vel[a, j, 1] += uy * impulse / mass[a, j]
        last_hitter[a, j] = f
        last_hit_frame[a, j] = now
        ep_hits[a, f] += 1
        frame_rew[a, f] += weights[R_HIT]
        frame_rew[a, j] += weights[R_DAMAGE_TAKEN] * damage * 10.0

    # 3. Friction, then motion.
    decay = params[P_FRICTION_DECAY]
    for f in range(n):
        if not alive[a, f]:
            continue
        vel[a, f, 0] *= decay
        vel[a, f, 1] *= decay
        pos[a, f, 0] += vel[a, f, 0] * DT
        pos[a, f, 1] += vel[a, f, 1] * DT

    # 4. Bodies collide: push overlapping pairs apart by inverse mass, exchange momentum.
    e = params[P_RESTITUTION]
    for i in range(n):
        if not alive[a, i]:
            continue
        for j in range(i + 1, n):
            if not alive[a, j]:
                continue
            dx = pos[a, j, 0] - pos[a, i, 0]
            dy = pos[a, j, 1] - pos[a, i, 1]
            d = math.sqrt(dx * dx + dy * dy)
            overlap = size[a, i] + size[a, j] - d
            if overlap <= 0.0:
                continue
            if d > 0.0:
                nx = dx / d
                ny = dy / d
            else:
                nx = 1.0
                ny = 0.0
            inv_i = 1.0 / mass[a, i]
            inv_j = 1.0 / mass[a, j]
            share_i = inv_i / (inv_i + inv_j)
            share_j = inv_j / (inv_i + inv_j)
            pos[a, i, 0] -= nx * overlap * share_i
            pos[a, i, 1] -= ny * overlap * share_i
            pos[a, j, 0] += nx * overlap * share_j
            pos[a, j, 1] += ny * overlap * share_j
            closing = (vel[a, j, 0] - vel[a, i, 0]) * nx + (vel[a, j, 1] - vel[a, i, 1]) * ny
            if closing < 0.0:
                impulse = -(1.0 + e) * closing / (inv_i + inv_j)
                vel[a, i, 0] -= impulse * inv_i * nx
                vel[a, i, 1] -= impulse * inv_i * ny
                vel[a, j, 0] += impulse * inv_j * nx
                vel[a, j, 1] += impulse * inv_j * ny

    # 5. Cooldowns tick.
    for f in range(n):
        if alive[a, f] and cooldown[a, f] > 0:
            cooldown[a, f] -= 1

    # 6. Eliminations: knockouts (credited to the hitter) and ring-outs (credited to a
    #    recent hitter). Everyone eliminated in the same frame shares one elimination order.
    eliminated_any = False
    for f in range(n):
        if not alive[a, f]:
            continue
        if health[a, f] <= 0.0:
            fate[a, f] = FATE_KNOCKED_OUT
        elif pos[a, f, 0] ** 2 + pos[a, f, 1] ** 2 > radius * radius:
            fate[a, f] = FATE_RING_OUT
        else:
            continue
        if not eliminated_any:
            elim_count[a] += 1
            eliminated_any = True
        alive[a, f] = False
        elim_order[a, f] = elim_count[a]
        vel[a, f, 0] = 0.0
        vel[a, f, 1] = 0.0
        frame_rew[a, f] += weights[R_DEATH]
        c = last_hitter[a, f]
        if fate[a, f] == FATE_KNOCKED_OUT and c != NO_FIGHTER:
            ep_kos[a, c] += 1
            frame_rew[a, c] += weights[R_KNOCKOUT]
        elif c != NO_FIGHTER and now - last_hit_frame[a, f] <= params[P_CREDIT_WINDOW]:
            ep_ringouts[a, c] += 1
            frame_rew[a, c] += weights[R_KNOCKOUT]

    # 7. Per-frame terms for the fighters still standing.
    edge_r = radius - params[P_EDGE_WIDTH]
    for f in range(n):
        if not alive[a, f]:
            continue
        frame_rew[a, f] += weights[R_SURVIVE]
        if pos[a, f, 0] ** 2 + pos[a, f, 1] ** 2 > edge_r * edge_r:
            frame_rew[a, f] += weights[R_EDGE]

    frame[a] = now + 1


@njit(cache=True)
def match_status(a, alive, frame, max_frames):
    """TERMINATED when at most one fighter stands, TRUNCATED at the frame limit, else ONGOING."""
    standing = 0
    for f in range(alive.shape[1]):
        if alive[a, f]:
            standing += 1
    if standing <= 1:
        return TERMINATED
    if frame[a] >= max_frames:
        return TRUNCATED
    return ONGOING


@njit(cache=True)
def rank_fighters(a, alive, health, elim_order, rank):
    """Competition ranking (1, 1, 3, ...): standing fighters before eliminated ones,
    standing fighters by health, eliminated ones by how late they fell."""
    n = alive.shape[1]
    for i in range(n):
        better = 0
        for j in range(n):
            if j == i:
                continue
            if alive[a, j] and not alive[a, i]:
                better += 1
            elif alive[a, j] and alive[a, i] and health[a, j] > health[a, i]:
                better += 1
            elif not alive[a, j] and not alive[a, i] and elim_order[a, j] > elim_order[a, i]:
                better += 1
        rank[a, i] = 1 + better


@njit(cache=True)
def write_observation(a, f, pos, vel, health, alive, params, out, row):
    """The 30-number observation of fighter f (zeros once eliminated); see docs/arena.md."""
    for k in range(OBS_SIZE):
        out[row, k] = 0.0
    if not alive[a, f]:
        return
    inv_r = 1.0 / params[P_RADIUS]
    inv_v = 1.0 / params[P_SPEED_NORM]
    x = pos[a, f, 0]
    y = pos[a, f, 1]
    vx = vel[a, f, 0]
    vy = vel[a, f, 1]
    out[row, 0] = x * inv_r
    out[row, 1] = y * inv_r
    out[row, 2] = health[a, f]
    out[row, 3] = vx * inv_v
    out[row, 4] = vy * inv_v
    # Nearest alive enemies by selection: each pass takes the smallest (distance, index)
    # pair strictly after the previous one, so nothing is allocated.
    prev_d2 = -1.0
    prev_j = -1
    for slot in range(OBS_ENEMIES):
        best = NO_FIGHTER
        best_d2 = 0.0
        for j in range(pos.shape[1]):
            if j == f or not alive[a, j]:
                continue
            dx = pos[a, j, 0] - x
            dy = pos[a, j, 1] - y
            d2 = dx * dx + dy * dy
            after_prev = d2 > prev_d2 or (d2 == prev_d2 and j > prev_j)
            if after_prev and (best == NO_FIGHTER or d2 < best_d2 or (d2 == best_d2 and j < best)):
                best = j
                best_d2 = d2
        if best == NO_FIGHTER:
            break
        base = 5 + ENEMY_FEATURES * slot
        out[row, base + 0] = (pos[a, best, 0] - x) * inv_r
        out[row, base + 1] = (pos[a, best, 1] - y) * inv_r
        out[row, base + 2] = (vel[a, best, 0] - vx) * inv_v
        out[row, base + 3] = (vel[a, best, 1] - vy) * inv_v
        out[row, base + 4] = health[a, best]
        prev_d2 = best_d2
        prev_j = best


# ---------------------------------------------------------------- all arenas
@njit(cache=True)
def decide_and_step(a, pos, vel, facing, health, cooldown, alive, last_hitter, last_hit_frame,
                    elim_order, fate, size, speed, mass, bot, bot_pool, pool_len, action, frame,
                    elim_count, rng, ep_return, ep_hits, ep_kos, ep_ringouts, hit_target,
                    frame_rew, agent_row, actions_in, obs_out, rew_out, term_out, trunc_out,
                    mask_out, match_end, final_rank, final_return, final_hits, final_kos,
                    final_ringouts, final_fate, final_length, params, weights, frame_skip,
                    max_frames, autoreset):
    """One decision for arena a: choose bot actions, run frame_skip frames (stopping early
    when the match ends), rank and reset an ended match, and write each agent row's
    observation, summed reward, terminal, truncation and mask. Returns 1 if the match ended.

    agent_row[a, f] is the row of fighter f's agent in the flat agent buffers, or -1 for
    scripted slots. match_end[a] is set to ONGOING/TERMINATED/TRUNCATED; for an ended
    match the final_* arrays hold its ranks, returns, hits, credited knockouts and
    ring-outs, fates and length, copied before the arena resets.
    """
    n = alive.shape[1]
    standing_before = 0  # bitmask of who stood at the start of the decision
    for f in range(n):
        frame_rew[a, f] = 0.0
        if alive[a, f]:
            standing_before |= 1 << f
            if bot[a, f] == LEARNER:
                action[a, f] = actions_in[agent_row[a, f]]
            else:
                action[a, f] = bot_action(bot[a, f], a, f, pos, facing, cooldown, alive, rng, params)
    status = ONGOING
    for _ in range(frame_skip):
        physics_frame(a, pos, vel, facing, health, cooldown, alive, last_hitter,
                      last_hit_frame, elim_order, fate, size, speed, mass, action, frame,
                      elim_count, ep_hits, ep_kos, ep_ringouts, hit_target, frame_rew,
                      params, weights)
        status = match_status(a, alive, frame, max_frames)
        if status != ONGOING:
            break
    match_end[a] = status
    if status != ONGOING:
        rank_fighters(a, alive, health, elim_order, final_rank)
        winners = 0
        for f in range(n):
            if final_rank[a, f] == 1:
                winners += 1
        if winners == 1:
            for f in range(n):
                if final_rank[a, f] == 1:
                    frame_rew[a, f] += weights[R_WIN]
    for f in range(n):
        ep_return[a, f] += frame_rew[a, f]
    if status != ONGOING:
        final_length[a] = frame[a]
        for f in range(n):
            final_return[a, f] = ep_return[a, f]
            final_hits[a, f] = ep_hits[a, f]
            final_kos[a, f] = ep_kos[a, f]
            final_ringouts[a, f] = ep_ringouts[a, f]
            final_fate[a, f] = fate[a, f]
    # Agent outputs: terminal when eliminated this decision or the match terminated;
    # truncated when the match hit the frame limit with the fighter standing.
    for f in range(n):
        row = agent_row[a, f]
        if row < 0:
            continue
        was_standing = (standing_before >> f) & 1 == 1
        rew_out[row] = frame_rew[a, f]
        died_now = was_standing and not alive[a, f]
        term_out[row] = died_now or status == TERMINATED
        trunc_out[row] = status == TRUNCATED and alive[a, f]
    if status != ONGOING and autoreset:
        reset_arena(a, pos, vel, facing, health, cooldown, alive, last_hitter,
                    last_hit_frame, elim_order, fate, bot, bot_pool, pool_len, action,
                    frame, elim_count, rng, ep_return, ep_hits, ep_kos, ep_ringouts, params)
    for f in range(n):
        row = agent_row[a, f]
        if row < 0:
            continue
        mask_out[row] = alive[a, f]
        write_observation(a, f, pos, vel, health, alive, params, obs_out, row)
    return 0 if status == ONGOING else 1


@njit(cache=True, parallel=True)
def step_arenas_parallel(*args):
    """decide_and_step for every arena, arenas spread over numba's threads with prange.
    Takes decide_and_step's arguments without `a`; returns how many matches ended."""
    num_arenas = args[5].shape[0]
    ended = 0
    for a in prange(num_arenas):
        ended += decide_and_step(a, *args)
    return ended


@njit(cache=True)
def step_arenas_serial(*args):
    """decide_and_step for every arena on the calling thread (for one-thread runs and
    for processes that fork, such as pufferlib's Multiprocessing workers)."""
    num_arenas = args[5].shape[0]
    ended = 0
    for a in range(num_arenas):
        ended += decide_and_step(a, *args)
    return ended


@njit(cache=True)
def reset_arenas(pos, vel, facing, health, cooldown, alive, last_hitter, last_hit_frame,
                 elim_order, fate, bot, bot_pool, pool_len, action, frame, elim_count, rng,
                 ep_return, ep_hits, ep_kos, ep_ringouts, agent_row, obs_out, rew_out,
                 term_out, trunc_out, mask_out, params):
    """Start a new match in every arena and write the first observations."""
    num_arenas, n = alive.shape
    for a in range(num_arenas):
        reset_arena(a, pos, vel, facing, health, cooldown, alive, last_hitter, last_hit_frame,
                    elim_order, fate, bot, bot_pool, pool_len, action, frame, elim_count, rng,
                    ep_return, ep_hits, ep_kos, ep_ringouts, params)
        for f in range(n):
            row = agent_row[a, f]
            if row < 0:
                continue
            rew_out[row] = 0.0
            term_out[row] = False
            trunc_out[row] = False
            mask_out[row] = True
            write_observation(a, f, pos, vel, health, alive, params, obs_out, row)
