"""`ArenaEnv`: many rings in one native PufferLib multi-agent environment.

Action Space
    Discrete(10) per agent: 0-7 accelerate towards a compass direction (0 north = +y,
    1 north-east, 2 east = +x, 3 south-east, 4 south, 5 south-west, 6 west, 7 north-west),
    8 idle, 9 attack.

Observation Space
    Box(-inf, inf, (30,), float32) per agent, the game's vector:

    | index        | meaning                                           | scale      |
    |--------------|---------------------------------------------------|------------|
    | 0, 1         | own position x, y                                 | / radius   |
    | 2            | own health                                        | [0, 1]     |
    | 3, 4         | own velocity vx, vy                               | / speed    |
    | 5 + 5k ..    | k-th nearest alive enemy (k = 0..4): relative     | / radius,  |
    |   .. 9 + 5k  | x, y, relative vx, vy, health; zeros if missing   | / speed    |

    An eliminated fighter observes zeros. docs/arena.md has the exact formula.
    observation="full" gives 48 numbers: these 30, then the fighter's attack cooldown left
    (0..1) and the cos and sin of its facing, then the same three for each of the 5 nearest
    enemies in the same order (zeros if missing).

Rewards
    A weighted sum of the terms in arena.RewardWeights (survive, hit, knockout,
    damage_taken, edge, death, win, draw), summed over the frame_skip frames of a decision,
    and the change of the ring position over it (inside).

Starting State
    Fighters evenly spaced on a circle of radius R/2 facing the centre, rotated by a
    random angle, with seeded jitter; full health, no velocity.

Episode End
    A fighter's trajectory terminates when it is eliminated (knocked out or out of the
    ring); its row is then masked (masks False, zero observation and reward) until the
    arena's match ends. A match terminates when at most one fighter stands and is
    truncated at max_frames. Arenas reset automatically: the step that ends a match
    returns the next match's first observation.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pufferlib

from arena import (
    FATE_KNOCKED_OUT,
    FATE_RING_OUT,
    NUM_ACTIONS,
    OBSERVATIONS,
    Arena,
    ArenaConfigError,
    Rules,
    parse_slots,
)

INFO_KEYS = (
    "episode_return",
    "episode_length",
    "win",
    "draw",
    "rank",
    "knockouts",
    "ring_outs",
    "hits",
    "knocked_out",
    "rung_out",
)


def observation_space(kind: str = "basic"):
    """The Box of one agent's observation: "basic" (30 numbers) or "full" (48; arena.spec)."""
    if kind not in OBSERVATIONS:
        raise ArenaConfigError(f"observation must be {' or '.join(OBSERVATIONS)}, got {kind!r}")
    return gymnasium.spaces.Box(low=-np.inf, high=np.inf, shape=(OBSERVATIONS[kind],), dtype=np.float32)


def action_space():
    return gymnasium.spaces.Discrete(NUM_ACTIONS)


def check_actions(actions, num_agents: int) -> np.ndarray:
    """Actions as the int32 vector the kernel reads, or a clear error."""
    actions = np.asarray(actions)
    if actions.size != num_agents:
        raise ValueError(f"expected {num_agents} actions, got an array of shape {actions.shape}")
    actions = actions.reshape(num_agents)
    if actions.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers in [0, {NUM_ACTIONS}), got dtype {actions.dtype}")
    # Range first, then the cast: a cast could wrap an out-of-range value into range.
    if num_agents and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
        bad = actions[(actions < 0) | (actions >= NUM_ACTIONS)][0]
        raise ValueError(f"action {bad!r} is outside [0, {NUM_ACTIONS})")
    return actions if actions.dtype == np.int32 else actions.astype(np.int32)


class MatchStats:
    """Running sums over the learner fighters' finished matches, for info reports.

    slots: the fighter slots whose matches count (None: every agent slot of the arena)."""

    def __init__(self, slots=None):
        self.slots = slots
        self.clear()

    def clear(self) -> None:
        self.sums = dict.fromkeys(INFO_KEYS, 0.0)
        self.count = 0

    def add(self, arena: Arena) -> None:
        ended = arena.ended()
        slots = arena.agent_slots if self.slots is None else self.slots
        result = arena.results(ended)
        fate = result.fate[:, slots]
        s = self.sums
        s["episode_return"] += result.ret[:, slots].sum()
        s["episode_length"] += result.length.sum() * len(slots)
        s["win"] += result.win[:, slots].sum()
        s["draw"] += result.draw[:, slots].sum()
        s["rank"] += result.rank[:, slots].sum()
        s["knockouts"] += result.knockouts[:, slots].sum()
        s["ring_outs"] += result.ring_outs[:, slots].sum()
        s["hits"] += result.hits[:, slots].sum()
        s["knocked_out"] += (fate == FATE_KNOCKED_OUT).sum()
        s["rung_out"] += (fate == FATE_RING_OUT).sum()
        self.count += len(ended) * len(slots)

    def report(self) -> dict:
        """Means since the last report (episode_length in frames), then start over."""
        info = {key: float(value) / self.count for key, value in self.sums.items()}
        info["matches"] = self.count
        self.clear()
        return info

    def state_dict(self) -> dict:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": int(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {k: np.float64(state["sums"][k]) for k in INFO_KEYS}
        self.count = int(state["count"])


class ArenaEnv(pufferlib.PufferEnv):
    """`num_arenas` rings of `fighters_per_arena` fighters; the agents are the fighter
    slots not given to scripted `opponents` (by default every slot is an agent).

    opponents: bots (random, idle, chaser, kiter, edge_pusher, counter, striker, a named variant such as
    far_kiter, or kiter[retreat=2.0;noise=0.1]: arena/variants.py) for the last slots; an entry may be a
    list of them, sampled per match. rewards: a preset name ("standard"), a
    mapping of term weights, or None for the standard preset. report_interval: steps between
    info reports. threads: 1 to step on the calling thread (use it in forked workers),
    None for numba's thread pool. stats_slots: the slots whose matches the info reports
    count (None: every agent slot; self-play reports only the learner's). observation:
    "basic" (the 30 numbers) or "full" (48). first_arena: the index of this env's first arena
    in a larger set, for their seeds (a distributed run's shard). rules: any field of
    arena.Rules (radius, frame_skip, ...).
    """

    def __init__(
        self,
        num_arenas: int = 64,
        fighters_per_arena: int = 2,
        seed: int = 0,
        buf=None,
        opponents=None,
        rewards=None,
        report_interval: int = 32,
        threads: int | None = None,
        stats_slots=None,
        first_arena: int = 0,
        observation: str = "basic",
        **rules,
    ):
        self.rules = Rules.from_kwargs(**rules)
        self.observation = observation
        self.single_observation_space = observation_space(observation)
        slots = parse_slots(fighters_per_arena, opponents)
        if all(s is not None for s in slots):
            raise ArenaConfigError(
                f"all {fighters_per_arena} fighter slots are scripted opponents; leave at least one for the agents"
            )
        if isinstance(report_interval, bool) or not isinstance(report_interval, int) or report_interval < 1:
            raise ArenaConfigError(f"report_interval must be an integer >= 1, got {report_interval!r}")
        self.seed = 0 if seed is None else seed
        self.arena = Arena(
            num_arenas,
            fighters_per_arena,
            slots,
            self.rules,
            rewards,
            self.seed,
            threads=threads,
            first_arena=first_arena,
        )
        self.num_agents = self.arena.num_agents
        self.num_arenas = self.arena.num_arenas
        self.fighters_per_arena = self.arena.fighters
        self.report_interval = report_interval
        self.single_action_space = action_space()
        super().__init__(buf)
        if stats_slots is not None:
            stats_slots = [int(f) for f in stats_slots]
            if not stats_slots or any(f not in self.arena.agent_slots for f in stats_slots):
                raise ArenaConfigError(
                    f"stats_slots must be agent slots of {self.arena.agent_slots}, got {stats_slots!r}"
                )
        self.stats = MatchStats(stats_slots)
        self.tick = 0

    def reset(self, seed=None):
        self.arena.reset(
            self.observations,
            self.rewards,
            self.terminals,
            self.truncations,
            self.masks,
            seed=self.seed if seed is None else seed,
        )
        self.stats.clear()
        self.tick = 0
        return self.observations, []

    def step(self, actions):
        actions = check_actions(actions, self.num_agents)
        if self.arena.step(actions, self.observations, self.rewards, self.terminals, self.truncations, self.masks):
            self.stats.add(self.arena)
        self.tick += 1
        infos = []
        if self.tick % self.report_interval == 0 and self.stats.count:
            infos.append(self.stats.report())
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    # ------------------------------------------------------------ saving and restoring
    BUFFERS = ("observations", "rewards", "terminals", "truncations", "masks")

    def state_dict(self) -> dict:
        """Everything that decides what the env does next: the arenas' state arrays (their
        random generators included), the buffers the last step wrote, the report counter and
        the unreported match sums. ``load_state_dict`` of it into an env built with the same
        arguments continues exactly as this one would (train.py saves it for --resume)."""
        return {
            "arena": self.arena.copy_state(),
            "buffers": {k: getattr(self, k).copy() for k in self.BUFFERS},
            "tick": self.tick,
            "stats": self.stats.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        arena, buffers = state["arena"], state["buffers"]
        for name, value in {**arena, **buffers}.items():
            mine = getattr(self.arena, name) if name in arena else getattr(self, name)
            if mine.shape != np.shape(value):
                raise ValueError(
                    f"saved env state has {name} of shape {np.shape(value)}, this env "
                    f"{mine.shape}: it was saved by an env of another size"
                )
        self.arena.load_state(arena)
        for name, value in buffers.items():
            getattr(self, name)[...] = value
        self.tick = int(state["tick"])
        self.stats.load_state_dict(state["stats"])

    def close(self):
        pass
