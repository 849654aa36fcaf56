"""`LeagueEnv`: the learner's side of rings whose other fighters come from the opponent pool.

It holds one ArenaEnv in which every slot is an agent row (``opponents=None``). The first
``learners`` slots of each arena are the learner's; each other slot gets a pool entry at
every match start:

- a scripted bot: its kernel bot id is written into the slot, so the kernel drives it and
  the row's action is ignored;
- a snapshot or fixed fighter: the slot stays policy-driven and its action comes from that
  frozen network, without gradients. All networks in play are evaluated together (`PolicyStack`: the rows of
  small groups padded into one batched matmul per layer), not one forward pass per snapshot. A recurrent
  network (policy.kind lstm) keeps its memory per slot, fresh at each match start and for an eliminated
  fighter.

To the trainer it looks like a pufferlib vecenv whose agents are the learner's rows only
(``send``/``recv`` with ``num_agents`` rows): the opponents' transitions never reach the
rollout buffers. When a match ends, the learner's score against each opponent goes to the
pool and its win and rank to the curriculum, and fresh opponents are drawn for the arena.
"""

from __future__ import annotations

import numpy as np
import torch

from arena.rules import BOT_NAMES, LEARNER
from envs import ArenaEnv
from league.curriculum import Stage
from league.pool import OpponentPool
from policies import sample_actions
from policies.network import FrozenNetworks


class LeagueEnv:
    def __init__(
        self,
        stage: Stage,
        pool: OpponentPool,
        seed: int,
        report_interval: int = 32,
        rules=None,
        rng: np.random.Generator | None = None,
        greedy_opponents: bool | float = False,
        on_match=None,
        on_results=None,
        arenas: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
        threads: int | None = None,
        observation: str = "basic",
    ):
        self.stage, self.pool = stage, pool
        # arenas: (first, count) of the stage's arenas this process plays (a distributed run's
        # shard); generator: the snapshot opponents' sampling noise (None: torch's global one).
        first_arena, num_arenas = arenas if arenas is not None else (0, stage.num_arenas)
        self.generator = generator
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.greedy_share = float(greedy_opponents)  # share of network opponents (snapshots, fixed) that play argmax
        self.on_match = on_match  # called with (wins, ranks) of the learner's finished matches
        # on_results(ids, scores, wins, ranks), if given, takes every finished match's results
        # instead of the pool and on_match (the League: it keeps them for the other processes too)
        self.on_results = on_results
        F, L = stage.fighters, stage.learners
        self.env = ArenaEnv(
            num_arenas=num_arenas,
            fighters_per_arena=F,
            seed=seed,
            opponents=None,
            rewards=stage.rewards,
            report_interval=report_interval,
            stats_slots=list(range(L)),
            first_arena=first_arena,
            threads=threads,
            observation=observation,
            **(rules or {}),
        )
        self.arena = self.env.arena
        # the pool's bot variants, in its order: one rule (VariantTable.row) gives the same rows
        for row, variant in enumerate(pool.variants, start=len(BOT_NAMES)):
            if self.arena.variant_row(variant) != row:
                raise RuntimeError(f"the arena plays bot {variant.name!r} from another row than the pool's {row}")
        A = self.arena.num_arenas
        rows = np.arange(A * F).reshape(A, F)  # agent row = arena * F + slot
        self.learner_rows = rows[:, :L].reshape(-1)
        self.opponent_rows = rows[:, L:].reshape(-1)
        self.opponent_slots = np.arange(L, F)
        self.assignment = np.zeros((A, F - L), dtype=np.int64)  # pool entry per opponent slot
        self.greedy = np.full((A, F - L), self.greedy_share >= 1.0)  # the slot's snapshot plays argmax this match
        self.num_agents = A * L
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self.observations = np.zeros((self.num_agents, *self.single_observation_space.shape), dtype=np.float32)
        self.rewards = np.zeros(self.num_agents, dtype=np.float32)
        self.terminals = np.zeros(self.num_agents, dtype=bool)
        self.truncations = np.zeros(self.num_agents, dtype=bool)
        self.masks = np.zeros(self.num_agents, dtype=bool)
        self.actions = np.full(A * F, 8, dtype=np.int32)  # 8 = idle for rows nobody drives
        self.infos: list = []
        self._stack: FrozenNetworks | None = None  # the frozen snapshots, stacked
        self._stack_index = np.zeros(0, dtype=np.int64)  # pool entry id -> index in the stack, -1 if absent
        # recurrent opponents' memory, (h, c) per opponent slot (row = arena * (F - L) + slot - L),
        # allocated when the first one plays; a slot's memory starts afresh with each match
        self.memory: tuple[torch.Tensor, torch.Tensor] | None = None
        self.match_start = np.ones(A * (F - L), dtype=bool)

    # ------------------------------------------------------------ opponents
    def assign(self, arenas: np.ndarray) -> None:
        """Draw opponents for the given arenas' next match and write bot ids into their slots."""
        s = self.stage
        ids = self.pool.sample(
            len(arenas) * len(self.opponent_slots), self.rng, s.latest, s.past, s.bots, s.bot_names, s.fixed
        ).reshape(len(arenas), -1)
        self.assignment[arenas] = ids
        self.match_start.reshape(self.assignment.shape)[arenas] = True
        if 0.0 < self.greedy_share < 1.0:  # drawn only for a mix, so true/false runs keep their random stream
            self.greedy[arenas] = self.rng.random(ids.shape) < self.greedy_share
        self.arena.bot[arenas[:, None], self.opponent_slots[None, :]] = self.pool.bot_ids[ids]

    def opponent_actions(self) -> None:
        """Frozen snapshots and fixed fighters choose the actions of their rows, all in one batched pass."""
        flat = self.assignment.reshape(-1)
        is_network = self.pool.bot_ids[flat] == LEARNER
        if not is_network.any():
            return
        ids = flat[is_network]
        rows = self.opponent_rows[is_network]
        x = torch.from_numpy(self.env.observations[rows]).to(self.pool.device)
        networks = self.stacked_snapshots(ids)
        if networks.has_recurrent:
            slots = np.flatnonzero(is_network)
            memory = self.opponent_memory(networks)
            mem = (memory[0][slots], memory[1][slots])
            reset = torch.from_numpy(self.match_start[slots] | ~self.env.masks[rows]).to(x.device)
            logits = networks.logits(x, self._stack_index[ids], mem, reset)
            memory[0][slots], memory[1][slots] = mem
        else:
            logits = networks.logits(x, self._stack_index[ids])
        self.match_start[:] = False
        if self.greedy_share >= 1.0:
            act = logits.argmax(-1)
        elif self.greedy_share <= 0.0:
            act = sample_actions(torch.log_softmax(logits, -1), self.generator)
        else:
            greedy = torch.from_numpy(self.greedy.reshape(-1)[is_network]).to(logits.device)
            act = torch.where(greedy, logits.argmax(-1), sample_actions(torch.log_softmax(logits, -1), self.generator))
        self.actions[rows] = act.to(torch.int32).cpu().numpy()

    def opponent_memory(self, networks: FrozenNetworks) -> tuple[torch.Tensor, torch.Tensor]:
        if self.memory is None:
            hidden = next(p.hidden_size for p, r in zip(networks.policies, networks.recurrent, strict=True) if r)
            zeros = torch.zeros((len(self.match_start), hidden), device=self.pool.device)
            self.memory = (zeros, zeros.clone())
        return self.memory

    def stacked_snapshots(self, ids: np.ndarray) -> FrozenNetworks:
        """The stack of frozen snapshots, rebuilt (with every active snapshot) when `ids` names
        one it lacks: once per new snapshot, not per step."""
        if len(self._stack_index) < len(self.pool.entries):
            grown = np.full(len(self.pool.entries), -1, dtype=np.int64)
            grown[: len(self._stack_index)] = self._stack_index
            self._stack_index = grown
        if self._stack is None or (self._stack_index[ids] < 0).any():
            members = sorted({e.id for e in self.pool.snapshots()} | {int(i) for i in np.unique(ids)})
            self._stack = FrozenNetworks([self.pool.policy(i) for i in members])
            self._stack_index[:] = -1
            self._stack_index[members] = np.arange(len(members))
        return self._stack

    def record_results(self, ended: np.ndarray) -> None:
        """Scores against each opponent (who finished better) and the learner's win and rank."""
        L = self.stage.learners
        result = self.arena.results(ended)
        rank = result.rank  # (E, F)
        mine, theirs = rank[:, :L, None], rank[:, None, L:]
        scores = (mine < theirs) + 0.5 * (mine == theirs)  # (E, L, F - L)
        ids = np.broadcast_to(self.assignment[ended][:, None, :], scores.shape)
        wins, ranks = result.win[:, :L].reshape(-1), rank[:, :L].reshape(-1)
        if self.on_results is not None:
            self.on_results(ids, scores, wins, ranks)
            return
        self.pool.record(ids, scores)
        if self.on_match is not None:
            self.on_match(wins, ranks)

    # ------------------------------------------------------------ the vecenv interface
    def _gather(self) -> None:
        e, rows = self.env, self.learner_rows
        np.take(e.observations, rows, axis=0, out=self.observations)
        np.take(e.rewards, rows, out=self.rewards)
        np.take(e.terminals, rows, out=self.terminals)
        np.take(e.truncations, rows, out=self.truncations)
        np.take(e.masks, rows, out=self.masks)

    def async_reset(self, seed=None) -> None:
        self.env.reset(seed)
        self.assign(np.arange(self.arena.num_arenas))
        self._gather()
        self.infos = []

    def send(self, actions) -> None:
        actions = np.asarray(actions)
        if actions.shape != (self.num_agents,):
            raise ValueError(f"expected {self.num_agents} learner actions, got an array of shape {actions.shape}")
        self.actions[self.learner_rows] = actions
        self.opponent_actions()
        _, _, _, _, self.infos = self.env.step(self.actions)
        ended = self.arena.ended()
        if len(ended):
            self.record_results(ended)
            self.assign(ended)  # the arena already holds its next match; opponents act from its first decision
        self._gather()

    def recv(self):
        return (self.observations, self.rewards, self.terminals, self.truncations, self.infos, None, self.masks)

    # ------------------------------------------------------------ saving and restoring
    def state_dict(self) -> dict:
        """The rings (ArenaEnv.state_dict), who plays each opponent slot this match and whether
        it plays greedy, and the learner's view of the last step. The draw generator and the
        pool belong to the League, which saves them."""
        memory = None if self.memory is None else [m.cpu().numpy().copy() for m in self.memory]
        return {
            "env": self.env.state_dict(),
            "assignment": self.assignment.copy(),
            "greedy": self.greedy.copy(),
            "match_start": self.match_start.copy(),
            "memory": memory,
        }

    def load_state_dict(self, state: dict) -> None:
        self.env.load_state_dict(state["env"])
        self.assignment[...] = state["assignment"]
        self.greedy[...] = state["greedy"]
        if "match_start" in state:
            self.match_start[...] = state["match_start"]
        if state.get("memory") is not None:
            self.memory = tuple(torch.as_tensor(np.asarray(m)).to(self.pool.device) for m in state["memory"])
        self._gather()
        self.infos = []

    def close(self) -> None:
        self.env.close()
