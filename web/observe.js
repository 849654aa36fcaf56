/**
 * Wrestling Arena observations: what a trained fighter sees, computed from the game's state
 * exactly as the training arena computes it. No dependencies.
 *
 *   import { observe, observeFull } from './observe.js';
 *   const obs = observe(me, others, R, S);                     // Float32Array(30): env.observation basic
 *   const full = observeFull(me, others, R, S, cooldown);      // Float32Array(48): env.observation full
 *   const action = policy.actOne(obs);                         // policy.js, a fighter trained on basic
 *
 * me is the observing fighter, others every other fighter of the ring in slot order
 * (eliminated ones may stay in the list: they are skipped). Each is an object with
 *   x, y          position, m (top-down: x east, y north; the ring is centred at the origin)
 *   vx, vy        velocity, m/s
 *   health        0..1
 *   alive         false once knocked out or rung out
 * and, for observeFull only,
 *   cooldownLeft  frames before it can attack again: 0 when it can attack in the next frame;
 *                 the rules' cooldown minus the frames run since its last attack, the attack's
 *                 own frame included (so at most cooldown - 1), never below 0
 *   facing        facing angle, radians, 0 = +x (east), counter-clockwise (north = pi/2)
 * R is the ring radius (rules.radius, 6 m), S the rules' speed (rules.speed, 4 m/s; the same
 * for every fighter, whatever its own top speed) and cooldown the rules' attack cooldown in
 * frames, round(rules.cooldown * 60) (30). docs/arena.md ("Observation") gives each number's
 * formula; the code below is the code shown there, and tests/test_observe_js.py checks it in
 * chromium against the observations the arena writes.
 */

function nearestEnemies(me, others) {
  return others.filter((e) => e.alive)
    .map((e, i) => ({ e, i, d: (e.x - me.x) * (e.x - me.x) + (e.y - me.y) * (e.y - me.y) }))
    .sort((a, b) => a.d - b.d || a.i - b.i).slice(0, 5).map(({ e }) => e);
}

export function observe(me, others, R = 6, S = 4) {
  const obs = new Float32Array(30);
  if (!me.alive) return obs;
  obs.set([me.x / R, me.y / R, me.health, me.vx / S, me.vy / S]);
  nearestEnemies(me, others).forEach((e, k) => obs.set([(e.x - me.x) / R, (e.y - me.y) / R,
    (e.vx - me.vx) / S, (e.vy - me.vy) / S, e.health], 5 + 5 * k));
  return obs;
}

export function observeFull(me, others, R = 6, S = 4, cooldown = 30) {
  const obs = new Float32Array(48);
  if (!me.alive) return obs;
  obs.set(observe(me, others, R, S));
  const C = Math.max(cooldown, 1);
  [me, ...nearestEnemies(me, others)].forEach((g, k) => obs.set([g.cooldownLeft / C,
    Math.cos(g.facing), Math.sin(g.facing)], 30 + 3 * k));
  return obs;
}
