"""A slow, obvious implementation of docs/arena.md, for testing the kernels.

Plain Python: one object per fighter, floats, and the rules written out step by
step as the document states them. `reference_step` takes an Arena's state (as
`Arena.copy_state()` returns it), applies one decision to every arena, and returns
the new state with the per-agent outputs, so that tests can compare it with
`Arena.step` on the same input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena.core import state_views
from arena.rules import (
    BOT_IDS,
    LEARNER,
    V_APPROACH,
    V_HESITATE,
    V_KIND,
    V_LAG,
    V_LEASH,
    V_NOISE,
    V_RANGE,
    V_RETREAT,
    V_STANDOFF,
    RewardWeights,
    Rules,
)
from arena.variants import variant_table

MASK64 = (1 << 64) - 1
DT = 1.0 / 60.0
ACTION_IDLE, ACTION_ATTACK = 8, 9
COMPASS = [
    (0.0, 1.0),
    (math.sqrt(0.5), math.sqrt(0.5)),
    (1.0, 0.0),
    (math.sqrt(0.5), -math.sqrt(0.5)),
    (0.0, -1.0),
    (-math.sqrt(0.5), -math.sqrt(0.5)),
    (-1.0, 0.0),
    (-math.sqrt(0.5), math.sqrt(0.5)),
]


class SplitMix64:
    def __init__(self, state: int):
        self.state = state & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next() >> 11) / 2.0**53

    def below(self, n: int) -> int:
        return min(int(self.uniform() * n), n - 1)


@dataclass
class Fighter:
    x: float
    y: float
    vx: float
    vy: float
    facing: float
    health: float
    cooldown: int
    alive: bool
    last_hitter: int
    last_hit_frame: int
    elim_order: int
    fate: int
    size: float
    speed: float
    mass: float
    bot: int
    action: int
    ret: float = 0.0
    hits: int = 0
    kos: int = 0
    ringouts: int = 0
    reward: float = 0.0


def compass(dx, dy):
    """Closest of the 8 compass directions; ties resolved as the kernel's rounding does."""
    angle = math.atan2(dy, dx)
    return int(math.floor((math.pi / 2 - angle) / (math.pi / 4) + 0.5)) % 8


def in_cone(facing, dx, dy, half_angle_deg):
    d = math.hypot(dx, dy)
    if d == 0:
        return True
    return math.cos(facing) * dx + math.sin(facing) * dy >= math.cos(math.radians(half_angle_deg)) * d


def nearest_enemy(fighters, me):
    best, best_d2 = None, None
    for j, other in enumerate(fighters):
        if j == me or not other.alive:
            continue
        d2 = (other.x - fighters[me].x) ** 2 + (other.y - fighters[me].y) ** 2
        if best is None or d2 < best_d2:
            best, best_d2 = j, d2
    return best


def ring_position(fighters, me, rules: Rules) -> float:
    """The nearest standing enemy's distance from the centre minus mine, in ring radii (0 if none)."""
    j = nearest_enemy(fighters, me)
    if j is None:
        return 0.0
    f, e = fighters[me], fighters[j]
    return (math.hypot(e.x, e.y) - math.hypot(f.x, f.y)) / rules.radius


def add_ring_positions(fighters, weight: float, rules: Rules) -> None:
    """Add weight x its ring position to the decision's reward of each standing fighter."""
    for i, f in enumerate(fighters):
        if f.alive:
            f.reward += weight * ring_position(fighters, i, rules)


def bot_decision(fighters, me, rules: Rules, rng: SplitMix64, variants=None) -> int:
    """Fighter ``me``'s bot decision: its row of the variant table (``variants``, the built-in
    bots by default) gives its base bot and parameters; docs/arena.md, "Bot parameters"."""
    row = (variant_table() if variants is None else variants)[fighters[me].bot]
    noise, lag, approach, hesitate = row[V_NOISE], row[V_LAG], row[V_APPROACH], row[V_HESITATE]
    if noise > 0 and rng.uniform() < noise:
        return rng.below(10)
    if lag > 0 and rng.uniform() < lag:
        return fighters[me].action  # its previous decision's action
    action = base_decision(fighters, me, rules, rng, row)
    leash = row[V_LEASH]
    if leash < 1 and action != ACTION_ATTACK and int(row[V_KIND]) not in (BOT_IDS["random"], BOT_IDS["idle"]):
        f = fighters[me]
        if f.x * f.x + f.y * f.y > (leash * rules.radius) ** 2:
            action = compass(-f.x, -f.y)  # back towards the centre instead of moving on
    if hesitate > 0 and action == ACTION_ATTACK and fighters[me].cooldown == 0 and rng.uniform() < hesitate:
        return ACTION_IDLE
    if approach < 1 and action < 8:
        j = nearest_enemy(fighters, me)
        if j is not None:
            dx, dy = COMPASS[action]
            towards = dx * (fighters[j].x - fighters[me].x) + dy * (fighters[j].y - fighters[me].y)
            if towards > 0 and rng.uniform() >= approach:
                return ACTION_IDLE
    return action


def retreat_from(f, dx, dy, dist, rules: Rules) -> int:
    """Away from the enemy, bending towards the centre past 0.6 of the radius."""
    ux, uy = -dx / max(dist, 1e-9), -dy / max(dist, 1e-9)
    r = math.hypot(f.x, f.y)
    pull = max(0.0, r / rules.radius - 0.6) * 3.0
    if r > 0:
        ux -= pull * f.x / r
        uy -= pull * f.y / r
    return compass(ux, uy)


def hold_off(f, dx, dy, dist) -> int:
    """Inside the standoff distance: a move away while closing in faster than 0.5 m/s, else idle."""
    closing = (f.vx * dx + f.vy * dy) / max(dist, 1e-9)
    return compass(-dx, -dy) if closing > 0.5 else ACTION_IDLE


def base_decision(fighters, me, rules: Rules, rng: SplitMix64, row) -> int:
    f = fighters[me]
    kind = int(row[V_KIND])
    if kind == BOT_IDS["random"]:
        return rng.below(10)
    if kind == BOT_IDS["idle"]:
        return ACTION_IDLE
    j = nearest_enemy(fighters, me)
    if j is None:
        return ACTION_IDLE
    enemy = fighters[j]
    dx, dy = enemy.x - f.x, enemy.y - f.y
    dist = math.hypot(dx, dy)
    ready = f.cooldown == 0
    facing_enemy = in_cone(f.facing, dx, dy, rules.attack_cone_deg)
    strike = row[V_RANGE] * rules.reach  # the range it strikes from
    keep = row[V_STANDOFF] * rules.reach  # it does not step closer than this, unless to strike
    if not ready and dist < row[V_RETREAT] * rules.reach:
        return retreat_from(f, dx, dy, dist, rules)
    if kind == BOT_IDS["chaser"]:
        if dist <= strike and ready and facing_enemy:
            return ACTION_ATTACK
        return hold_off(f, dx, dy, dist) if strike < dist < keep else compass(dx, dy)
    if kind == BOT_IDS["kiter"]:
        if ready:
            if dist <= strike and facing_enemy:
                return ACTION_ATTACK
            return hold_off(f, dx, dy, dist) if strike < dist < keep else compass(dx, dy)
        return ACTION_IDLE
    if kind == BOT_IDS["edge_pusher"]:
        er = math.hypot(enemy.x, enemy.y)
        if er > 1e-9:
            ox, oy = enemy.x / er, enemy.y / er
        else:
            ox, oy = dx / max(dist, 1e-9), dy / max(dist, 1e-9)
        if dist <= strike and ready and facing_enemy and math.hypot(f.x, f.y) < er:
            return ACTION_ATTACK
        tx = enemy.x - ox * row[V_STANDOFF] * rules.reach - f.x
        ty = enemy.y - oy * row[V_STANDOFF] * rules.reach - f.y
        return compass(tx, ty) if math.hypot(tx, ty) > 0.3 else compass(dx, dy)
    if kind == BOT_IDS["counter"]:
        if ready and dist < 2.0 * rules.reach:
            if dist <= strike and facing_enemy:
                return ACTION_ATTACK
            return ACTION_IDLE if facing_enemy else compass(dx, dy)
        return compass(-f.x, -f.y) if math.hypot(f.x, f.y) > 1.0 else ACTION_IDLE
    if kind == BOT_IDS["striker"]:
        if dist <= strike and facing_enemy:
            return ACTION_ATTACK
        return hold_off(f, dx, dy, dist) if strike < dist < keep else compass(dx, dy)
    raise ValueError(f"unknown bot kind {kind}")


def simulate_frame(fighters, frame: int, elim_count: int, rules: Rules, w: RewardWeights):
    """One 60 Hz frame as docs/arena.md orders it; returns the new elimination count and
    the attack targets of the frame ({attacker: victim})."""
    # Actions.
    targets = {}
    for i, f in enumerate(fighters):
        if not f.alive:
            continue
        if f.action < 8:
            speed_before = math.hypot(f.vx, f.vy)
            dx, dy = COMPASS[f.action]
            vx, vy = f.vx + dx * rules.accel * DT, f.vy + dy * rules.accel * DT
            cap = max(f.speed, speed_before)
            if math.hypot(vx, vy) > cap:
                scale = cap / math.hypot(vx, vy)
                vx, vy = vx * scale, vy * scale
            f.vx, f.vy = vx, vy
            f.facing = math.pi / 2 - f.action * math.pi / 4
        elif f.action == ACTION_ATTACK and f.cooldown == 0:
            f.cooldown = rules.cooldown_frames
            candidates = []
            for j, other in enumerate(fighters):
                if j == i or not other.alive:
                    continue
                ex, ey = other.x - f.x, other.y - f.y
                if ex * ex + ey * ey <= rules.reach**2 and in_cone(f.facing, ex, ey, rules.attack_cone_deg):
                    candidates.append((ex * ex + ey * ey, j))
            if candidates:
                targets[i] = min(candidates)[1]
    # Hits.
    for i in sorted(targets):
        attacker, victim = fighters[i], fighters[targets[i]]
        victim.health = victim.health - rules.hit_damage
        if victim.health < 1e-9:  # ten hits of 0.1 knock out a fresh fighter, rounding aside
            victim.health = 0.0
        impulse = rules.knockback * (1 + rules.knockback_scale * (1 - victim.health))
        dx, dy = victim.x - attacker.x, victim.y - attacker.y
        d = math.hypot(dx, dy)
        ux, uy = (dx / d, dy / d) if d > 0 else (math.cos(attacker.facing), math.sin(attacker.facing))
        victim.vx += ux * impulse / victim.mass
        victim.vy += uy * impulse / victim.mass
        victim.last_hitter, victim.last_hit_frame = i, frame
        attacker.hits += 1
        attacker.reward += w.hit
        victim.reward += w.damage_taken * rules.hit_damage * 10
    # Friction and motion.
    decay = math.exp(-rules.friction / 60)
    for f in fighters:
        if f.alive:
            f.vx *= decay
            f.vy *= decay
            f.x += f.vx * DT
            f.y += f.vy * DT
    # Collisions.
    for i, a in enumerate(fighters):
        for j in range(i + 1, len(fighters)):
            b = fighters[j]
            if not (a.alive and b.alive):
                continue
            dx, dy = b.x - a.x, b.y - a.y
            d = math.hypot(dx, dy)
            overlap = a.size + b.size - d
            if overlap <= 0:
                continue
            nx, ny = (dx / d, dy / d) if d > 0 else (1.0, 0.0)
            ia, ib = 1 / a.mass, 1 / b.mass
            a.x -= nx * overlap * ia / (ia + ib)
            a.y -= ny * overlap * ia / (ia + ib)
            b.x += nx * overlap * ib / (ia + ib)
            b.y += ny * overlap * ib / (ia + ib)
            closing = (b.vx - a.vx) * nx + (b.vy - a.vy) * ny
            if closing < 0:
                j_imp = -(1 + rules.restitution) * closing / (ia + ib)
                a.vx -= j_imp * ia * nx
                a.vy -= j_imp * ia * ny
                b.vx += j_imp * ib * nx
                b.vy += j_imp * ib * ny
    # Cooldowns.
    for f in fighters:
        if f.alive and f.cooldown > 0:
            f.cooldown -= 1
    # Eliminations.
    falling = []
    for f in fighters:
        if not f.alive:
            continue
        if f.health <= 0:
            falling.append((f, 1))
        elif f.x**2 + f.y**2 > rules.radius**2:
            falling.append((f, 2))
    if falling:
        elim_count += 1
    for f, fate in falling:
        f.alive, f.fate, f.elim_order = False, fate, elim_count
        f.vx = f.vy = 0.0
        f.reward += w.death
        if f.last_hitter >= 0:
            credited = fighters[f.last_hitter]
            if fate == 1:
                credited.kos += 1
                credited.reward += w.knockout
            elif frame - f.last_hit_frame <= rules.credit_frames:
                credited.ringouts += 1
                credited.reward += w.knockout
    # Survival and edge.
    for f in fighters:
        if f.alive:
            f.reward += w.survive
            if f.x**2 + f.y**2 > (rules.radius - rules.edge_width) ** 2:
                f.reward += w.edge
    return elim_count, targets


def ranks(fighters):
    out = []
    for i, f in enumerate(fighters):
        better = 0
        for j, g in enumerate(fighters):
            if j == i:
                continue
            if g.alive and not f.alive:
                better += 1
            elif g.alive and f.alive and g.health > f.health:
                better += 1
            elif not g.alive and not f.alive and g.elim_order > f.elim_order:
                better += 1
        out.append(better + 1)
    return out


def observation(fighters, me, rules: Rules, full: bool = False):
    """docs/arena.md's observation, written out: 30 numbers, 48 with ``full``."""
    f = fighters[me]
    obs = [0.0] * (48 if full else 30)
    if not f.alive:
        return obs
    obs[:5] = [f.x / rules.radius, f.y / rules.radius, f.health, f.vx / rules.speed, f.vy / rules.speed]
    enemies = sorted(((e.x - f.x) ** 2 + (e.y - f.y) ** 2, j) for j, e in enumerate(fighters) if j != me and e.alive)
    for k, (_, j) in enumerate(enemies[:5]):
        e = fighters[j]
        obs[5 + 5 * k : 10 + 5 * k] = [
            (e.x - f.x) / rules.radius,
            (e.y - f.y) / rules.radius,
            (e.vx - f.vx) / rules.speed,
            (e.vy - f.vy) / rules.speed,
            e.health,
        ]
    if full:  # cooldown left / cooldown, cos and sin of the facing: the fighter's, then the enemies'
        cooldown = max(rules.cooldown_frames, 1)
        for slot, j in enumerate([me] + [j for _, j in enemies[:5]]):
            g = fighters[j]
            obs[30 + 3 * slot : 33 + 3 * slot] = [g.cooldown / cooldown, math.cos(g.facing), math.sin(g.facing)]
    return obs


def reference_step(
    state: dict,
    actions: np.ndarray,
    rules: Rules,
    weights: RewardWeights,
    num_agents: int,
    full: bool = False,
    variants=None,
):
    """One decision for every arena, without auto-reset. Returns (new_state, outputs)
    where outputs holds obs (the full observation with ``full``), rewards, terminals,
    truncations, masks, match_end, final_rank. ``variants``: the Arena's variant table (the
    built-in bots only by default)."""
    new_state = {k: v.copy() for k, v in state.items()}
    s = state_views(new_state)
    agent_row = s["agent_row"]
    num_arenas, n = s["alive"].shape
    out = dict(
        obs=np.zeros((num_agents, 48 if full else 30), np.float32),
        rewards=np.zeros(num_agents, np.float32),
        terminals=np.zeros(num_agents, bool),
        truncations=np.zeros(num_agents, bool),
        masks=np.zeros(num_agents, bool),
        match_end=np.zeros(num_arenas, np.int8),
        final_rank=np.zeros((num_arenas, n), np.int32),
    )
    for a in range(num_arenas):
        rng = SplitMix64(int(s["rng"][a]))
        fighters = [
            Fighter(
                x=float(s["pos"][a, f, 0]),
                y=float(s["pos"][a, f, 1]),
                vx=float(s["vel"][a, f, 0]),
                vy=float(s["vel"][a, f, 1]),
                facing=float(s["facing"][a, f]),
                health=float(s["health"][a, f]),
                cooldown=int(s["cooldown"][a, f]),
                alive=bool(s["alive"][a, f]),
                last_hitter=int(s["last_hitter"][a, f]),
                last_hit_frame=int(s["last_hit_frame"][a, f]),
                elim_order=int(s["elim_order"][a, f]),
                fate=int(s["fate"][a, f]),
                size=float(s["size"][a, f]),
                speed=float(s["speed"][a, f]),
                mass=float(s["mass"][a, f]),
                bot=int(s["bot"][a, f]),
                action=int(s["action"][a, f]),
                ret=float(s["ep_return"][a, f]),
                hits=int(s["ep_hits"][a, f]),
                kos=int(s["ep_kos"][a, f]),
                ringouts=int(s["ep_ringouts"][a, f]),
            )
            for f in range(n)
        ]
        standing_before = [f.alive for f in fighters]
        if weights.inside != 0.0:  # the inside term: minus the ring position before the decision...
            add_ring_positions(fighters, -weights.inside, rules)
        for i, f in enumerate(fighters):
            if f.alive and f.bot == LEARNER:
                f.action = int(actions[agent_row[a, i]])
            elif f.alive:
                f.action = bot_decision(fighters, i, rules, rng, variants)
        frame, elim_count = int(s["frame"][a]), int(s["elim_count"][a])
        status = 0
        for _ in range(rules.frame_skip):
            elim_count, targets = simulate_frame(fighters, frame, elim_count, rules, weights)
            frame += 1
            if sum(f.alive for f in fighters) <= 1:
                status = 1
            elif frame >= rules.max_frames:
                status = 2
            if status:
                break
        if weights.inside != 0.0 and not status:  # ...plus the one after it, while the match goes on
            add_ring_positions(fighters, weights.inside, rules)
        if status:
            r = ranks(fighters)
            out["final_rank"][a] = r
            if r.count(1) == 1:
                left = max(rules.max_frames - frame, 0)  # frames the win saves, paid a positive survive
                fighters[r.index(1)].reward += weights.win + max(weights.survive, 0.0) * left
            else:
                for i in range(len(fighters)):
                    if r[i] == 1:
                        fighters[i].reward += weights.draw
        out["match_end"][a] = status
        for i, f in enumerate(fighters):
            f.ret += f.reward
            row = agent_row[a, i]
            if row >= 0:
                died = standing_before[i] and not f.alive
                out["rewards"][row] = f.reward
                out["terminals"][row] = died or status == 1
                out["truncations"][row] = status == 2 and f.alive
                out["masks"][row] = f.alive
                out["obs"][row] = observation(fighters, i, rules, full)
            s["pos"][a, i] = (f.x, f.y)
            s["vel"][a, i] = (f.vx, f.vy)
            s["facing"][a, i] = f.facing
            s["health"][a, i] = f.health
            s["cooldown"][a, i] = f.cooldown
            s["alive"][a, i] = f.alive
            s["last_hitter"][a, i] = f.last_hitter
            s["last_hit_frame"][a, i] = f.last_hit_frame
            s["elim_order"][a, i] = f.elim_order
            s["fate"][a, i] = f.fate
            s["action"][a, i] = f.action
            s["ep_return"][a, i] = f.ret
            s["ep_hits"][a, i] = f.hits
            s["ep_kos"][a, i] = f.kos
            s["ep_ringouts"][a, i] = f.ringouts
            s["step_reward"][a, i] = f.reward
            s["hit_target"][a, i] = targets.get(i, -1)
            if status:
                s["final_return"][a, i] = f.ret
                s["final_hits"][a, i] = f.hits
                s["final_kos"][a, i] = f.kos
                s["final_ringouts"][a, i] = f.ringouts
                s["final_fate"][a, i] = f.fate
                s["final_rank"][a, i] = out["final_rank"][a, i]
        s["frame"][a] = frame
        s["match_end"][a] = status
        if status:
            s["final_length"][a] = frame
        s["elim_count"][a] = elim_count
        s["rng"][a] = np.uint64(rng.state)
    return new_state, out
