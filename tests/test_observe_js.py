"""The observation as docs/arena.md writes it, in Python and in web/observe.js, against the one the
arena writes.

Random matches (2 to 6 fighters, several rule sets, random actions with a drift so that fighters
leave the ring) and a hand-placed state with distance ties give arena states and the
observations the kernel wrote for them, basic and full. From the state arrays the test builds
the game-side records web/observe.js takes (x, y, vx, vy, health, alive, cooldownLeft, facing);
a Python transcription of the documented formula and observe.js in headless chromium (one
launch) must both give the kernel's numbers. docs/arena.md's code block must be observe.js's
code. Chromium is Debian's package (.ci/run installs it); without it this test fails rather
than skips.
"""

import base64
import json
import math
import re
import time
from pathlib import Path

import numpy as np
from test_ingest_browser import find_chromium

from arena import ACTION_IDLE, FULL_OBS_SIZE, NUM_ACTIONS, OBS_SIZE
from arena.spec import ACTION_ATTACK
from demos.browser import page_report
from envs import ArenaEnv

ROOT = Path(__file__).resolve().parent.parent
NUM_ARENAS = 6
STEPS = 150
PLAYS = [  # (fighters, rules); None: the rules' defaults, which the page leaves to observe.js's defaults
    (2, None),
    (3, {"frame_skip": 1, "cooldown": 0.51}),  # C = 31 frames, and every counter value is observed
    (4, {"radius": 5.0, "speed": 3.5, "fighter_stats": [{"speed": 5.0}, {"speed": 2.5}]}),  # S is the rules' speed
    (5, {"cooldown": 0.0, "frame_skip": 3}),  # C = 0: the cooldown numbers stay 0
    (6, {"radius": 7.0, "cooldown": 0.3, "frame_skip": 2}),
]
DRIFT = 0.4
"""How often a fighter takes its own favourite move instead of a uniform action: enough that some leave the ring."""
ROW = OBS_SIZE + FULL_OBS_SIZE
"""Numbers the page returns per observation: observe's 30, then observeFull's 48."""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>observe.js test</title></head><body>
<script type="module">
import { observe, observeFull } from './observe.js';

const report = (data) => fetch('/report', { method: 'POST', body: JSON.stringify(data) });
try {
  const cases = await (await fetch('/states.json')).json();
  const rows = cases.reduce((n, c) => n + c.fighters.length, 0);
  const ROW = 30 + 48;  // observe's numbers, then observeFull's
  const out = new Float32Array(rows * ROW);
  let row = 0;
  for (const { fighters, rules } of cases) {
    fighters.forEach((me, f) => {
      const others = fighters.filter((_, g) => g !== f);
      const args = rules ? [rules.R, rules.S, rules.C] : [];
      out.set(observe(me, others, ...args.slice(0, 2)), row * ROW);
      out.set(observeFull(me, others, ...args), row * ROW + 30);
      row += 1;
    });
  }
  const bytes = new Uint8Array(out.buffer);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  await report({ ok: true, rows, observations: btoa(binary) });
} catch (err) {
  await report({ ok: false, error: String((err && err.stack) || err) });
}
</script></body></html>
"""


# ---------------------------------------------------------------- the documented formula
def documented_observation(me: dict, others: list, R: float, S: float, C: int, full: bool) -> np.ndarray:
    """docs/arena.md's tables, written out: `others` in slot order without `me`."""
    obs = np.zeros(FULL_OBS_SIZE if full else OBS_SIZE, np.float32)
    if not me["alive"]:
        return obs
    obs[:5] = [me["x"] / R, me["y"] / R, me["health"], me["vx"] / S, me["vy"] / S]
    standing = [((e["x"] - me["x"]) ** 2 + (e["y"] - me["y"]) ** 2, slot, e) for slot, e in enumerate(others)]
    nearest = [e for _, _, e in sorted((t for t in standing if t[2]["alive"]), key=lambda t: t[:2])[:5]]
    for k, e in enumerate(nearest):
        obs[5 + 5 * k : 10 + 5 * k] = [
            (e["x"] - me["x"]) / R,
            (e["y"] - me["y"]) / R,
            (e["vx"] - me["vx"]) / S,
            (e["vy"] - me["vy"]) / S,
            e["health"],
        ]
    if full:
        for k, g in enumerate([me, *nearest]):
            obs[30 + 3 * k : 33 + 3 * k] = [g["cooldownLeft"] / max(C, 1), math.cos(g["facing"]), math.sin(g["facing"])]
    return obs


def fighter_records(env: ArenaEnv, a: int) -> list:
    """What the game knows of arena a's fighters, in slot order, as observe.js takes them."""
    arena = env.arena
    return [
        {
            "x": float(arena.pos[a, f, 0]),
            "y": float(arena.pos[a, f, 1]),
            "vx": float(arena.vel[a, f, 0]),
            "vy": float(arena.vel[a, f, 1]),
            "health": float(arena.health[a, f]),
            "alive": bool(arena.alive[a, f]),
            "cooldownLeft": int(arena.cooldown[a, f]),
            "facing": float(arena.facing[a, f]),
        }
        for f in range(arena.fighters)
    ]


# ---------------------------------------------------------------- arena states
class Observed:
    """Arena snapshots (the page's cases) and the observations the kernel wrote for each fighter."""

    def __init__(self):
        self.cases = []
        self.basic = []
        self.full = []

    def add(self, basic: ArenaEnv, full: ArenaEnv, rules: dict | None) -> None:
        r = full.rules
        for a in range(full.num_arenas):
            self.cases.append(
                {
                    "fighters": fighter_records(full, a),
                    "rules": None if rules is None else {"R": r.radius, "S": r.speed, "C": r.cooldown_frames},
                    "R": r.radius,
                    "S": r.speed,
                    "C": r.cooldown_frames,
                }
            )
            rows = full.arena.agent_row[a]
            self.basic.append(basic.observations[rows])
            self.full.append(full.observations[rows])


def random_play(fighters: int, rules: dict | None, seed: int, observed: Observed, coverage: dict) -> None:
    """A basic and a full-observation env in lockstep (same seed, same actions, so the same states)."""
    basic = ArenaEnv(NUM_ARENAS, fighters, seed=seed, **(rules or {}))
    full = ArenaEnv(NUM_ARENAS, fighters, seed=seed, observation="full", **(rules or {}))
    rng = np.random.default_rng(seed)
    favourite = rng.integers(0, 8, full.num_agents)
    C = full.rules.cooldown_frames
    basic.reset()
    full.reset()
    for _ in range(STEPS):
        observed.add(basic, full, rules)
        uniform = rng.integers(0, NUM_ACTIONS, full.num_agents)
        actions = np.where(rng.random(full.num_agents) < DRIFT, favourite, uniform).astype(np.int32)
        before = full.arena.cooldown.copy()
        basic.step(actions)
        full.step(actions)
        if full.rules.frame_skip == 1:  # the counter as documented: an attack sets C and the frame ticks it
            attacked = (actions.reshape(before.shape) == ACTION_ATTACK) & (full.arena.alive == 1)
            attacked &= full.arena.frame[:, None] > 0  # not a match that just reset
            ready = attacked & (before == 0)
            np.testing.assert_array_equal(full.arena.cooldown[ready], C - 1)
            np.testing.assert_array_equal(full.arena.cooldown[attacked & ~ready], before[attacked & ~ready] - 1)
            coverage["attacks when ready"] += int(ready.sum())
    observed.add(basic, full, rules)


def tied_state(observed: Observed) -> None:
    """Enemies at exactly equal distances (ties go to the lower slot), held still for one frame."""
    env_basic = ArenaEnv(1, 6, frame_skip=1, friction=0.0)
    env_full = ArenaEnv(1, 6, frame_skip=1, friction=0.0, observation="full")
    for env in (env_basic, env_full):
        env.reset()
        arena = env.arena
        arena.pos[0] = [(0.5, 0.5), (2.0, 0.5), (-1.0, 0.5), (0.5, 2.0), (0.5, -1.0), (-1.0, -1.0)]
        arena.vel[0] = 0.0
        arena.health[0] = [1.0, 0.4, 0.6, 0.8, 0.3, 0.9]
        arena.cooldown[0] = [7, 0, 20, 1, 29, 12]
        arena.facing[0] = [0.3, -2.0, 4.0, 1.5, 7.5, -0.1]
        env.step(np.full(6, ACTION_IDLE, np.int32))
    observed.add(env_basic, env_full, None)


# ---------------------------------------------------------------- tests
def docs_code() -> str:
    """docs/arena.md's JavaScript block under "### In JavaScript"."""
    text = (ROOT / "docs" / "arena.md").read_text()
    section = text.split("### In JavaScript\n", 1)[1]
    return section.split("```js\n", 1)[1].split("```", 1)[0]


def module_code() -> str:
    """web/observe.js without its opening comment and with its exports written as plain functions."""
    text = (ROOT / "web" / "observe.js").read_text()
    assert text.startswith("/**"), "web/observe.js should open with its comment block"
    return re.sub(r"^export ", "", text.split("*/\n", 1)[1].lstrip("\n"), flags=re.M)


def test_the_docs_show_observe_js_code():
    assert "function observeFull(" in docs_code()
    assert docs_code() == module_code(), "docs/arena.md's observe code and web/observe.js differ: make them equal"


def test_the_documented_observation_in_python_and_javascript_is_the_arenas(tmp_path):
    chromium = find_chromium()
    start = time.perf_counter()
    observed = Observed()
    coverage = {"attacks when ready": 0}
    for seed, (fighters, rules) in enumerate(PLAYS):
        random_play(fighters, rules, seed, observed, coverage)
    tied_state(observed)
    kernel_basic = np.concatenate(observed.basic)
    kernel_full = np.concatenate(observed.full)
    np.testing.assert_array_equal(kernel_full[:, :OBS_SIZE], kernel_basic)
    played = time.perf_counter() - start

    # What the states hold: eliminated fighters observing and being skipped, 1 to 5 enemies, cooldowns.
    records = [(case, f) for case in observed.cases for f in range(len(case["fighters"]))]
    standing = np.array([case["fighters"][f]["alive"] for case, f in records])
    enemies = np.array([sum(e["alive"] for g, e in enumerate(case["fighters"]) if g != f) for case, f in records])
    fallen_enemy = np.array([not all(e["alive"] for e in case["fighters"]) for case, _ in records]) & standing
    assert (~standing).sum() > 100 and fallen_enemy.sum() > 100, ((~standing).sum(), fallen_enemy.sum())
    assert set(enemies[standing]) == {1, 2, 3, 4, 5}
    assert coverage["attacks when ready"] > 20
    cooling = kernel_full[:, 33::3] > 0
    assert cooling.sum() > 500 and (kernel_full[:, 30] > 0).sum() > 500
    c31 = np.array([case["C"] == 31 for case, _ in records])
    assert np.isclose(kernel_full[c31, 30].max(), 30 / 31) and kernel_full[:, 30::3].max() < 1.0
    assert not kernel_full[np.array([case["C"] == 0 for case, _ in records])][:, 30::3].any()
    # The hand-placed state: ties go to the lower slot (fighter 0 sees 1, 2, 3, 4, then 5; fighter 5
    # sees 2 and 4, then 0, then 1 and 3), and one idle frame ticked every cooldown down by one.
    tied = observed.full[-1]
    np.testing.assert_allclose(tied[0, 9:30:5], [0.4, 0.6, 0.8, 0.3, 0.9], rtol=0, atol=1e-7)
    np.testing.assert_allclose(tied[5, 9:30:5], [0.6, 0.3, 1.0, 0.4, 0.8], rtol=0, atol=1e-7)
    np.testing.assert_allclose(tied[0, 30::3], np.array([6, 0, 19, 0, 28, 11]) / 30, rtol=0, atol=1e-7)

    # (a) the documented formula in Python.
    start = time.perf_counter()
    python_basic, python_full = [], []
    for case, f in records:
        me, others = case["fighters"][f], case["fighters"][:f] + case["fighters"][f + 1 :]
        python_basic.append(documented_observation(me, others, case["R"], case["S"], case["C"], False))
        python_full.append(documented_observation(me, others, case["R"], case["S"], case["C"], True))
    np.testing.assert_allclose(np.array(python_basic), kernel_basic, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(python_full), kernel_full, rtol=0, atol=1e-6)
    transcribed = time.perf_counter() - start

    # (b) web/observe.js in chromium, one launch for every state.
    start = time.perf_counter()
    site = tmp_path / "site"
    site.mkdir()
    (site / "observe.js").symlink_to(ROOT / "web" / "observe.js")  # the shipped file itself
    (site / "observe-test.html").write_text(PAGE)
    cases = [{"fighters": case["fighters"], "rules": case["rules"]} for case in observed.cases]
    (site / "states.json").write_text(json.dumps(cases))
    report = page_report(chromium, site, "observe-test.html", 60)
    assert report["ok"], report.get("error")
    assert report["rows"] == len(records)
    js = np.frombuffer(base64.b64decode(report["observations"]), "<f4").reshape(len(records), ROW)
    np.testing.assert_allclose(js[:, :OBS_SIZE], kernel_basic, rtol=0, atol=1e-6)
    np.testing.assert_allclose(js[:, OBS_SIZE:], kernel_full, rtol=0, atol=1e-6)
    browser = time.perf_counter() - start
    print(
        f"{len(records)} observations: play {played:.1f} s, Python formula {transcribed:.1f} s,"
        f" chromium {browser:.1f} s;"
        f" largest difference from the kernel: Python {np.abs(np.array(python_full) - kernel_full).max():.1e},"
        f" observe.js {np.abs(js[:, OBS_SIZE:] - kernel_full).max():.1e}"
    )
