"""Replays: record one match decision by decision, draw it top-down, or write its frames.

A recording holds the state at the start of the match and after every decision, so it has
``decisions + 1`` states; a decision lasts ``frame_skip`` physics frames (4 by default, 1/15
s), so a replay shows one picture per decision, not one per 60 Hz frame. The match is the
one evaluation plays as match ``match`` of its seed against that opponent (same spawn, same
bot draws; the same actions for greedy policies), run in an arena with autoreset off so
the final state stays visible.

- ``save_animation``: an animated GIF (or WebP / APNG) of the ring: the edge zone shaded,
  fighters coloured with a line showing where they face, health bars, a yellow arc at
  reach when a strike lands and a flash on the fighter it hits, a cross where a fighter was
  eliminated (KO or OUT), the clock and the result.
- ``write_frames``: newline-delimited JSON in the ingest server's frame format
  (docs/ingest.md), one line per state, for the game to replay the match.
- ``replay_clip``: a short animated GIF of a policy's match, which a trainer logs to
  TensorBoard's Images tab.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena import FATE_KNOCKED_OUT, FATE_RING_OUT, NUM_ACTIONS, OBS_SIZE, OBSERVATIONS, Arena, Rules, sole_first
from arena.rules import FRAME_RATE
from common.files import atomic_write_bytes, atomic_write_text
from evaluation.matches import ActionRouter, observation_for
from evaluation.players import resolve_player

ANIMATION_FORMATS = (".gif", ".webp", ".png")
"""formats Pillow writes as animations (.png is APNG)"""
END_HOLD_MS = 2000
"""how long an animation shows the final state before looping"""


@dataclass
class Recording:
    """One match, state by state (first axis: the start and then each decision)."""

    names: list
    """a name per fighter slot"""
    learner: int
    """the slot of the player evaluated"""
    rules: Rules
    frame: np.ndarray
    """physics frame (60 Hz) of each state: 0, frame_skip, 2 * frame_skip, ..."""
    pos: np.ndarray
    """(states, fighters, 2) position, m"""
    vel: np.ndarray
    """(states, fighters, 2) velocity, m/s"""
    facing: np.ndarray
    """(states, fighters) facing angle, radians (0 = east, counter-clockwise)"""
    health: np.ndarray
    alive: np.ndarray
    fate: np.ndarray
    """(states, fighters) FATE_* of each fighter so far"""
    action: np.ndarray
    """(decisions, fighters) action held during each decision"""
    reward: np.ndarray
    """(decisions, fighters) reward of each decision"""
    hits: np.ndarray
    """(decisions, fighters) hits landed during each decision"""
    obs: np.ndarray
    """(states, 30) the learner's observation at each state"""
    rank: np.ndarray
    """(fighters,) final competition rank (all 1 if the recording stopped early)"""
    ended: bool
    """whether the match ended (False when cut at max_decisions)"""

    @property
    def decisions(self) -> int:
        return len(self.action)

    @property
    def states(self) -> int:
        return len(self.frame)


def record_match(
    learner,
    opponent,
    seed: int = 0,
    fighters: int = 2,
    match: int = 0,
    greedy: bool = True,
    rewards="standard",
    max_decisions: int | None = None,
    **rules,
) -> Recording:
    """Record match ``match`` of ``seed`` between the learner and ``fighters - 1`` copies of
    the opponent, seated as evaluate() seats them (specs or Players; see evaluation.players)."""
    learner, opponent = resolve_player(learner, greedy), resolve_player(opponent, greedy)
    if isinstance(match, bool) or not isinstance(match, int) or match < 0:
        raise ValueError(f"match must be an integer >= 0, got {match!r}")
    arenas = match + 1
    if opponent.kind == "bot":
        slots = [None] + [[opponent.bot]] * (fighters - 1)
        players, seats = [learner], np.zeros((arenas, 1), dtype=np.int64)
    else:
        slots = [None] * fighters
        players = [learner, opponent]
        seats = np.ones((arenas, fighters), dtype=np.int64)
        seats[np.arange(arenas), np.arange(arenas) % fighters] = 0
    rules = Rules.from_kwargs(**rules)
    arena = Arena(arenas, fighters, slots, rules, rewards, seed, autoreset=False, threads=1)
    n = arena.num_agents
    obs = np.zeros((n, OBSERVATIONS[observation_for(players)]), dtype=np.float32)
    rew, term, trunc, masks = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool)
    arena.reset(obs, rew, term, trunc, masks, seed=seed)
    router = ActionRouter(players, seats, arena, seed)
    a = match
    learner_slot = int(np.flatnonzero(seats[a] == 0)[0])
    learner_row = arena.agent_row[a, learner_slot]
    names = [learner.name if s == learner_slot else opponent.name for s in range(fighters)]

    limit = max_decisions if max_decisions is not None else math.ceil(rules.max_frames / rules.frame_skip) + 1
    states = {k: [] for k in ("frame", "pos", "vel", "facing", "health", "alive", "fate", "obs")}
    steps = {k: [] for k in ("action", "reward", "hits")}

    def snapshot():
        for key, value in (
            ("frame", arena.frame[a]),
            ("pos", arena.pos[a]),
            ("vel", arena.vel[a]),
            ("facing", arena.facing[a]),
            ("health", arena.health[a]),
            ("alive", arena.alive[a] != 0),
            ("fate", arena.fate[a]),
            ("obs", obs[learner_row]),
        ):
            states[key].append(np.array(value, copy=True))

    snapshot()
    while arena.match_end[a] == 0 and len(steps["action"]) < limit:
        hits_before = arena.ep_hits[a].copy()
        arena.step(router(obs), obs, rew, term, trunc, masks)
        router.ended(term | trunc)
        steps["action"].append(arena.action[a].copy())
        steps["reward"].append(arena.step_reward[a].copy())
        steps["hits"].append(arena.ep_hits[a] - hits_before)
        snapshot()
    ended = bool(arena.match_end[a] != 0)
    rank = arena.final_rank[a].copy() if ended else np.ones(fighters, dtype=np.int32)
    stack = {k: np.stack(v) for k, v in states.items()}
    empty = np.zeros((0, fighters))
    step = {k: np.stack(v) if v else empty for k, v in steps.items()}
    return Recording(
        names=names,
        learner=learner_slot,
        rules=rules,
        rank=rank,
        ended=ended,
        action=step["action"].astype(np.int64),
        reward=step["reward"].astype(float),
        hits=step["hits"].astype(np.int64),
        **stack,
    )


def display_names(names: list) -> list:
    """Player names shortened to their last path parts that still tell them apart."""
    from evaluation.compare import unique_names

    distinct = list(dict.fromkeys(names))
    short = dict(zip(distinct, unique_names(distinct), strict=True))
    return [short[n] for n in names]


def result_line(rec: Recording, names: list | None = None) -> str:
    """'best.pt (slot 0) wins', 'draw' or 'cut at 20.0 s', for captions and logs."""
    names = display_names(rec.names) if names is None else names
    if not rec.ended:
        return f"cut at {rec.frame[-1] / FRAME_RATE:.1f} s"
    winners = np.flatnonzero(rec.rank == 1)
    if sole_first(rec.rank):
        w = int(winners[0])
        return f"{names[w]} (slot {w}{', evaluated' if w == rec.learner else ''}) wins"
    return f"draw between slots {', '.join(str(int(w)) for w in winners)}"


# ------------------------------------------------------------------------------ drawing
BACKGROUND, FLOOR, EDGE, RIM, WHITE, DARK, BAR_BACK, GREEN, YELLOW, RED, FLASH, GREY, CROSS, TEXT = range(14)
BASE_COLOURS = [
    (24, 26, 31),
    (222, 208, 178),
    (196, 160, 118),
    (96, 66, 44),
    (255, 255, 255),
    (20, 20, 20),
    (55, 55, 55),
    (70, 200, 80),
    (235, 200, 50),
    (225, 60, 50),
    (255, 236, 90),
    (128, 128, 128),
    (205, 25, 25),
    (232, 232, 232),
]
FIGHTER_COLOURS = [
    (50, 110, 235),
    (230, 60, 60),
    (40, 170, 90),
    (245, 150, 30),
    (150, 80, 205),
    (30, 180, 200),
    (235, 100, 175),
    (150, 150, 40),
]
FIGHTER0 = len(BASE_COLOURS)
PALETTE = [c for rgb in BASE_COLOURS + FIGHTER_COLOURS for c in rgb]


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def layout(size: int) -> tuple[int, int, int]:
    """Text line height, the ring's top offset and the picture height for a width of ``size``:
    the clock above the ring, the legend below it."""
    line = max(14, size // 24)
    return line, line + 4, size + 2 * line + 8


def render_frames(rec: Recording, size: int = 480) -> list:
    """One palette image ("P" mode) per state of the recording."""
    from PIL import Image, ImageDraw

    r = rec.rules
    legend_h, top, height = layout(size)
    scale = (size / 2 - 6) / (r.radius * 1.12)
    cx, cy = size / 2, top + size / 2
    font = _font(max(9, size // 36))

    def px(x, y):
        return cx + x * scale, cy - y * scale

    def disc(draw, x, y, radius_px, **kw):
        draw.ellipse([x - radius_px, y - radius_px, x + radius_px, y + radius_px], **kw)

    # The ring and the legend never change: draw them once.
    base = Image.new("P", (size, height), BACKGROUND)
    base.putpalette(PALETTE)
    draw = ImageDraw.Draw(base)
    disc(draw, cx, cy, r.radius * scale, fill=EDGE)
    disc(draw, cx, cy, (r.radius - r.edge_width) * scale, fill=FLOOR)
    disc(draw, cx, cy, r.radius * scale, outline=RIM, width=max(1, size // 160))
    x = 4
    names = display_names(rec.names)
    for slot, name in enumerate(names):
        label = f"{name}{' *' if slot == rec.learner else ''}"
        draw.rectangle([x, height - legend_h - 1, x + legend_h - 4, height - 5], fill=FIGHTER0 + slot % 8)
        draw.text((x + legend_h, height - legend_h - 2), label, fill=TEXT, font=font)
        x += legend_h + int(draw.textlength(label, font=font)) + 10
        if x > size - 40:
            break

    reach = r.reach * scale
    bar_h = max(2, size // 120)
    frames = []
    for k in range(rec.states):
        img = base.copy()
        draw = ImageDraw.Draw(img)
        seconds = rec.frame[k] / FRAME_RATE
        draw.text((4, 2), f"t {seconds:5.2f} s   frame {rec.frame[k]}", fill=TEXT, font=font)
        if k == rec.states - 1:  # the result, on a banner across the lower ring
            caption = result_line(rec, names)
            half = draw.textlength(caption, font=font) / 2 + 8
            y = cy + r.radius * scale * 0.55
            draw.rectangle([cx - half, y - legend_h / 2 - 2, cx + half, y + legend_h / 2 + 2], fill=DARK)
            draw.text((cx, y), caption, fill=FLASH, font=font, anchor="mm")
        for f in range(len(rec.names)):
            x, y = px(*rec.pos[k, f])
            body = rec.rules.stats_for(f).size * scale
            if not rec.alive[k, f]:
                disc(draw, x, y, body, fill=GREY)
                arm, w = body * 0.8, max(2, size // 160)
                draw.line([x - arm, y - arm, x + arm, y + arm], fill=CROSS, width=w)
                draw.line([x - arm, y + arm, x + arm, y - arm], fill=CROSS, width=w)
                tag = "KO" if rec.fate[k, f] == FATE_KNOCKED_OUT else "OUT" if rec.fate[k, f] == FATE_RING_OUT else ""
                draw.text((x + body + 2, y - body), tag, fill=CROSS, font=font)
                continue
            hurt = k > 0 and rec.health[k, f] < rec.health[k - 1, f]
            struck = k > 0 and rec.hits[k - 1, f] > 0
            angle = rec.facing[k, f]
            if struck:  # the attack cone (attack_cone_deg either side of the facing) at reach
                deg = math.degrees(angle)
                box = [x - reach, y - reach, x + reach, y + reach]
                draw.pieslice(
                    box, -deg - r.attack_cone_deg, -deg + r.attack_cone_deg, outline=FLASH, width=max(2, size // 160)
                )
            if hurt:
                disc(draw, x, y, body * 1.45, fill=FLASH)
            disc(draw, x, y, body, fill=FIGHTER0 + f % 8, outline=WHITE if hurt else DARK, width=max(1, size // 240))
            draw.line(
                [x, y, x + math.cos(angle) * body * 1.35, y - math.sin(angle) * body * 1.35],
                fill=WHITE,
                width=max(2, size // 160),
            )
            w = body * 2.2
            bar_y = y - body - bar_h - 4
            draw.rectangle([x - w / 2, bar_y, x + w / 2, bar_y + bar_h], fill=BAR_BACK)
            h = float(rec.health[k, f])
            if h > 0:
                draw.rectangle(
                    [x - w / 2, bar_y, x - w / 2 + w * h, bar_y + bar_h],
                    fill=GREEN if h > 0.6 else YELLOW if h > 0.3 else RED,
                )
        frames.append(img)
    return frames


def frame_durations(rec: Recording, speed: float = 1.0) -> list[int]:
    """Milliseconds per picture, multiples of 10 (GIF's unit) whose running sum tracks the
    match clock, so a 66.7 ms decision shows as 70, 70, 60, ...; the last picture is held."""
    clock_ms = rec.frame * 1000.0 / FRAME_RATE / speed
    ticks = np.round(clock_ms / 10.0).astype(np.int64) * 10
    durations = np.diff(ticks).tolist() + [END_HOLD_MS]
    return [max(10, int(d)) for d in durations]


def save_animation(rec: Recording, path, size: int = 480, speed: float = 1.0) -> int:
    """Write an animated GIF (.gif), WebP (.webp) or APNG (.png); returns the picture count."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        hint = (
            (
                f"; for MP4, convert the GIF: ffmpeg -i {path.with_suffix('.gif').name} -movflags faststart "
                f"-pix_fmt yuv420p {path.name}"
            )
            if suffix == ".mp4"
            else ""
        )
        raise ValueError(f"replay file {str(path)!r} must end in {', '.join(ANIMATION_FORMATS)}{hint}")
    frames = render_frames(rec, size)
    durations = frame_durations(rec, speed)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = dict(save_all=True, append_images=frames[1:], duration=durations, loop=0, format=suffix[1:].upper())
    if suffix == ".gif":
        options.update(optimize=False, disposal=1)
    elif suffix == ".webp":
        frames = [f.convert("RGB") for f in frames]
        options.update(append_images=frames[1:], lossless=True, method=2)
    buffer = io.BytesIO()
    frames[0].save(buffer, **options)
    atomic_write_bytes(path, buffer.getvalue())
    return len(frames)


def animation_bytes(rec: Recording, size: int = 192, speed: float = 1.0) -> bytes:
    """The recording as GIF bytes (for TensorBoard)."""
    frames = render_frames(rec, size)
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=frame_durations(rec, speed),
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buf.getvalue()


# ------------------------------------------------------------------------------ frames for the game
def frame_records(rec: Recording, slot: int | None = None) -> list[dict]:
    """The recording as the ingest server's frames of one fighter (default: the learner).

    One frame per state: the observation the fighter saw there, the action it then chose (as
    a one-hot of the 10 actions) and the reward that decision earned. The last frame is the
    final state: no decision follows it, so its action_vector is all zeros and its
    reward_delta 0. enemies_state lists every other fighter (eliminated ones too, with
    alive false) as {id (slot), position, velocity, health, facing (radians in [-pi, pi],
    0 = east, counter-clockwise), alive}.
    """
    slot = rec.learner if slot is None else slot
    total = 0.0
    records = []
    rnd = lambda v: [round(float(x), 5) for x in v]  # noqa: E731 - 10 um, ample for replays
    for k in range(rec.states):
        last = k == rec.decisions
        delta = 0.0 if last else float(rec.reward[k, slot])
        total += delta
        action = [0.0] * NUM_ACTIONS
        if not last:
            action[int(rec.action[k, slot])] = 1.0
        enemies = [
            {
                "id": j,
                "position": rnd(rec.pos[k, j]),
                "velocity": rnd(rec.vel[k, j]),
                "health": round(float(rec.health[k, j]), 5),
                "facing": round(math.atan2(math.sin(rec.facing[k, j]), math.cos(rec.facing[k, j])), 5),
                "alive": bool(rec.alive[k, j]),
            }
            for j in range(len(rec.names))
            if j != slot
        ]
        # a stored frame's observation_vector is the basic observation (storage holds 30 numbers)
        obs = rec.obs[k][:OBS_SIZE] if slot == rec.learner else np.zeros(OBS_SIZE)
        records.append(
            {
                "frame_number": int(rec.frame[k]),
                "fighter_position": rnd(rec.pos[k, slot]),
                "fighter_health": round(float(rec.health[k, slot]), 5),
                "fighter_velocity": rnd(rec.vel[k, slot]),
                "enemies_state": enemies,
                "action_vector": action,
                "reward_delta": round(delta, 6),
                "cumulative_reward": round(total, 6),
                "observation_vector": [float(x) for x in np.asarray(obs, dtype=np.float32)],
            }
        )
    return records


def write_frames(rec: Recording, path) -> int:
    """Write the learner's frames as newline-delimited JSON; returns the line count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = frame_records(rec)
    atomic_write_text(path, "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records))
    return len(records)


# ------------------------------------------------------------------------------ clips for TensorBoard
@dataclass
class Clip:
    """A short animated replay: GIF bytes and their size in pixels."""

    gif: bytes
    width: int
    height: int
    recording: Recording


def replay_clip(
    policy,
    opponent: str,
    seed: int = 0,
    fighters: int = 2,
    greedy: bool = True,
    rewards="standard",
    rules=None,
    max_seconds: float = 20.0,
    size: int = 192,
) -> Clip:
    """Record match 0 of ``seed`` (at most ``max_seconds``) of ``policy`` against ``opponent``
    and draw it as an animated GIF ``size`` pixels wide (TensorBoard's Images tab plays it)."""
    rules = dict(rules or {})
    frame_skip = rules.get("frame_skip", Rules().frame_skip)
    rec = record_match(
        resolve_player(policy, greedy, name="policy"),
        opponent,
        seed=seed,
        fighters=fighters,
        greedy=greedy,
        rewards=rewards,
        max_decisions=int(max_seconds * FRAME_RATE / frame_skip),
        **rules,
    )
    return Clip(gif=animation_bytes(rec, size), width=size, height=layout(size)[2], recording=rec)
