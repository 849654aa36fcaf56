"""The fighter networks, chosen by the config's ``policy.kind``:

- ``mlp`` (Policy): obs -> 128 -> 128 (ReLU) -> 10 action logits and a scalar value, the
  product description's design;
- ``lstm`` (RecurrentPolicy): obs -> 128 (ReLU) -> an LSTM cell of 128 -> the same two heads, as
  in CleanRL's ppo_atari_lstm: the fighter remembers what it saw earlier in the match.

The trunk is shared by both heads; orthogonal init as in CleanRL, with std 0.01 on the policy
head (near-uniform first actions) and 1.0 on the value head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from arena.spec import NUM_ACTIONS, OBS_SIZE


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


POLICY_KINDS = ("mlp", "lstm")
"""policy.kind: a feed-forward network, or one with an LSTM core (memory)"""


class Policy(nn.Module):
    """Actor-critic MLP with a shared trunk.

    ``get_action_and_value(x, action=None)`` follows CleanRL: it samples an action when none is
    given and returns (action, logprob, entropy, value). The categorical distribution is written
    out with ``log_softmax`` instead of ``torch.distributions.Categorical``: same numbers, a
    fraction of the overhead on the rollout's hot path.
    """

    kind = "mlp"
    recurrent = False

    def __init__(self, obs_size: int = OBS_SIZE, num_actions: int = NUM_ACTIONS, hidden_size: int = 128):
        super().__init__()
        self.obs_size, self.num_actions, self.hidden_size = obs_size, num_actions, hidden_size
        self.network = nn.Sequential(
            layer_init(nn.Linear(obs_size, hidden_size)),
            nn.ReLU(),
            layer_init(nn.Linear(hidden_size, hidden_size)),
            nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(hidden_size, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits (n, num_actions) and values (n,)."""
        hidden = self.network(x)
        return self.actor(hidden), self.critic(hidden).squeeze(-1)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.network(x)).squeeze(-1)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        return action_and_value(*self(x), action)

    @torch.no_grad()
    def act(self, x: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions (argmax when greedy, else sampled) and values, without gradients."""
        logits, value = self(x)
        if greedy:
            return logits.argmax(-1), value
        return sample_actions(torch.log_softmax(logits, dim=-1)), value


State = tuple[torch.Tensor, torch.Tensor]
"""a recurrent policy's memory: the LSTM cell's (h, c), each (n, hidden_size), one row per fighter"""


class RecurrentPolicy(nn.Module):
    """Actor-critic with memory: obs -> hidden (ReLU) -> LSTM cell -> policy and value heads.

    Every call takes the fighters' state (``initial_state(n)`` at the start) and a ``reset`` mask,
    True where a fighter's memory must start afresh before it reads this observation: the first
    decision of a match, and the rows of an eliminated fighter (whose memory is of no use).
    ``forward`` is one decision; ``forward_sequence`` is many in a row, as the PPO update replays
    a rollout, and gives the same numbers as the step-by-step calls (tests/test_recurrent.py).
    The LSTM's gates are torch's (input, forget, cell, output), weights orthogonal and biases
    zero as in CleanRL's ppo_atari_lstm.
    """

    kind = "lstm"
    recurrent = True

    def __init__(self, obs_size: int = OBS_SIZE, num_actions: int = NUM_ACTIONS, hidden_size: int = 128):
        super().__init__()
        self.obs_size, self.num_actions, self.hidden_size = obs_size, num_actions, hidden_size
        self.encoder = nn.Sequential(layer_init(nn.Linear(obs_size, hidden_size)), nn.ReLU())
        self.lstm = nn.LSTMCell(hidden_size, hidden_size)
        for name, param in self.lstm.named_parameters():
            if "bias" in name:
                nn.init.constant_(param, 0)
            else:
                nn.init.orthogonal_(param, 1.0)
        self.actor = layer_init(nn.Linear(hidden_size, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def initial_state(self, n: int, device=None) -> State:
        """Zero memory for n fighters."""
        device = device if device is not None else self.actor.weight.device
        zeros = torch.zeros((n, self.hidden_size), device=device)
        return zeros, zeros.clone()

    def _cell(self, encoded: torch.Tensor, state: State, reset: torch.Tensor | None) -> State:
        h, c = state
        if reset is not None:
            keep = (~reset.bool()).to(h.dtype).unsqueeze(-1)
            h, c = h * keep, c * keep
        return self.lstm(encoded, (h, c))

    def forward(self, x: torch.Tensor, state: State, reset: torch.Tensor | None = None):
        """One decision: action logits (n, num_actions), values (n,) and the new state."""
        h, c = self._cell(self.encoder(x), state, reset)
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)

    def forward_sequence(self, x: torch.Tensor, state: State, resets: torch.Tensor | None = None):
        """Decisions t = 0..T-1 of n fighters: x (T, n, obs), resets (T, n); logits (T, n, actions),
        values (T, n) and the state after the last one."""
        encoded = self.encoder(x)
        hidden = []
        for t in range(x.shape[0]):
            state = self._cell(encoded[t], state, None if resets is None else resets[t])
            hidden.append(state[0])
        h = torch.stack(hidden)
        return self.actor(h), self.critic(h).squeeze(-1), state

    def get_value(self, x: torch.Tensor, state: State, reset: torch.Tensor | None = None) -> torch.Tensor:
        return self(x, state, reset)[1]

    def get_action_and_value(self, x, state: State, reset=None, action=None):
        """CleanRL's (action, logprob, entropy, value), then the new state."""
        logits, value, state = self(x, state, reset)
        return (*action_and_value(logits, value, action), state)

    @torch.no_grad()
    def act(self, x: torch.Tensor, state: State, reset=None, greedy: bool = False):
        """Actions (argmax when greedy, else sampled), values and the new state, without gradients."""
        logits, value, state = self(x, state, reset)
        action = logits.argmax(-1) if greedy else sample_actions(torch.log_softmax(logits, dim=-1))
        return action, value, state


def build_policy(kind: str, obs_size: int, num_actions: int, hidden_size: int) -> Policy | RecurrentPolicy:
    """The network of a policy.kind (``mlp`` or ``lstm``)."""
    if kind == "mlp":
        return Policy(obs_size, num_actions, hidden_size)
    if kind == "lstm":
        return RecurrentPolicy(obs_size, num_actions, hidden_size)
    raise ValueError(f"unknown policy kind {kind!r}; policy.kind is one of {', '.join(POLICY_KINDS)}")


class PolicyStack:
    """Many frozen Policies of one shape, evaluated together: each row of a batch by the policy
    its index names, without gradients (the self-play league runs up to a hundred frozen
    snapshots each step).

    The rows are grouped by policy (one gather). A policy with many rows gets a plain pass of
    its own on its group (in a league: the latest snapshot and the fixed fighters). The rows of
    all other policies are padded into a (policies, m, obs) tensor, m the most rows any of them
    has, and every layer is one batched matmul against the stacked weights: that replaces a
    small forward pass per policy, whose per-call cost dominates at these sizes, and never
    copies a weight matrix, but it reads every policy's weights and computes m rows of each.
    Which policies go alone is chosen per call by that cost (``PASS_COST``), or, with
    ``dense_above``, every policy with more rows than that.
    """

    PASS_COST = 128
    """A pass of its own costs about as much as this many (policy, row) cells of the padded
    batch (2-core EPYC, 48 inputs, 128 wide: 60-70 us a pass, 0.3-0.7 us a cell; docs/benchmarks.md)"""

    def __init__(self, policies: list[Policy], dense_above: int | None = None):
        if not policies:
            raise ValueError("PolicyStack needs at least one policy")
        shapes = {(p.obs_size, p.num_actions, p.hidden_size) for p in policies}
        if len(shapes) > 1:
            raise ValueError(f"PolicyStack needs policies of one shape (obs, actions, hidden), got {sorted(shapes)}")
        self.num_actions = policies[0].num_actions
        self.dense_above = None if dense_above is None else int(dense_above)
        with torch.no_grad():

            def stack(get):
                return torch.stack([get(p).detach() for p in policies])

            # (K, in, out) weights and (K, 1, out) biases, for baddbmm (and addmm on one k).
            self.layers = [
                (stack(lambda p: p.network[0].weight.T), stack(lambda p: p.network[0].bias[None])),
                (stack(lambda p: p.network[2].weight.T), stack(lambda p: p.network[2].bias[None])),
                (stack(lambda p: p.actor.weight.T), stack(lambda p: p.actor.bias[None])),
            ]

    def __len__(self) -> int:
        return self.layers[0][0].shape[0]

    def _forward(self, h: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """The MLP on h: (rows, obs) under policy k, or (K, m, obs) under every policy at once."""
        last = len(self.layers) - 1
        for j, (weight, bias) in enumerate(self.layers):
            h = torch.addmm(bias[k], h, weight[k]) if k is not None else torch.baddbmm(bias, h, weight)
            if j < last:
                h = torch.relu(h)
        return h

    def alone(self, counts: np.ndarray) -> np.ndarray:
        """Which policies get a pass of their own, given each one's rows."""
        if self.dense_above is not None:
            return counts > self.dense_above
        # Sending the j largest groups alone costs j passes plus a padded batch of the next group's size.
        by_size = np.sort(counts)[::-1]
        padded_rows = np.append(by_size, 0)
        cost = self.PASS_COST * np.arange(len(padded_rows)) + len(counts) * padded_rows
        j = int(np.argmin(cost))
        return counts > padded_rows[j]

    @torch.no_grad()
    def logits(self, x: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """Action logits (n, num_actions) of row i under policy index[i]; x is (n, obs)."""
        index = np.asarray(index, dtype=np.int64)
        n = len(index)
        counts = np.bincount(index, minlength=len(self))
        order = np.argsort(index, kind="stable")  # rows grouped by policy
        start = np.cumsum(counts) - counts  # each policy's first position in `order`
        grouped = x[torch.from_numpy(order).to(x.device)]
        out = x.new_empty((n, self.num_actions))  # in grouped order until the last line
        alone = self.alone(counts)
        for k in np.flatnonzero(alone):
            first, last = int(start[k]), int(start[k] + counts[k])
            out[first:last] = self._forward(grouped[first:last], int(k))
        policy = index[order]
        padded = ~alone[policy]
        if padded.any():
            at = np.flatnonzero(padded)
            rows = torch.from_numpy(at).to(x.device)
            pol = torch.from_numpy(policy[at]).to(x.device)
            slot = torch.from_numpy(at - start[policy[at]]).to(x.device)
            h = x.new_zeros((len(self), int(counts[~alone].max()), x.shape[1]))
            h[pol, slot] = grouped[rows]
            out[rows] = self._forward(h)[pol, slot]
        return out[torch.from_numpy(np.argsort(order)).to(x.device)]


class FrozenNetworks:
    """Frozen networks of either kind, evaluated together: row i of a batch by network index[i].

    The feed-forward ones go through one PolicyStack; each recurrent one gets its rows in one
    pass, reading and updating their memory. ``memory`` is (h, c), one row per batch row (rows of
    feed-forward networks are left as they are); ``reset`` marks the rows whose memory starts
    afresh before this decision (a new match, an eliminated fighter).
    """

    def __init__(self, policies: list, dense_above: int | None = None):
        if not policies:
            raise ValueError("FrozenNetworks needs at least one policy")
        self.recurrent = np.array([p.recurrent for p in policies], dtype=bool)
        self.num_actions = policies[0].num_actions
        self.feedforward = np.flatnonzero(~self.recurrent)
        feedforward = [policies[k] for k in self.feedforward]
        self.stack = PolicyStack(feedforward, dense_above) if feedforward else None
        self.stack_index = np.full(len(policies), -1, dtype=np.int64)
        self.stack_index[self.feedforward] = np.arange(len(self.feedforward))
        self.policies = policies

    @property
    def has_recurrent(self) -> bool:
        return bool(self.recurrent.any())

    @torch.no_grad()
    def logits(self, x: torch.Tensor, index: np.ndarray, memory=None, reset=None) -> torch.Tensor:
        index = np.asarray(index, dtype=np.int64)
        ff = ~self.recurrent[index]
        if ff.all():
            return self.stack.logits(x, self.stack_index[index])
        out = x.new_empty((len(index), self.num_actions))
        if ff.any():
            rows = torch.from_numpy(np.flatnonzero(ff)).to(x.device)
            out[rows] = self.stack.logits(x[rows], self.stack_index[index[ff]])
        if memory is None:
            raise ValueError("recurrent networks need memory: (h, c) with one row per observation")
        h, c = memory
        for k in np.unique(index[~ff]):
            rows = torch.from_numpy(np.flatnonzero(index == k)).to(x.device)
            logits, _, (h[rows], c[rows]) = self.policies[k](
                x[rows], (h[rows], c[rows]), None if reset is None else reset[rows]
            )
            out[rows] = logits
        return out


def widen_inputs(policy, obs_size: int):
    """A copy of ``policy`` (either kind) that reads observations of ``obs_size`` numbers and ignores
    those past its own (zero weights): what it computes on the wider observation's first numbers."""
    first = "network.0.weight" if policy.kind == "mlp" else "encoder.0.weight"
    with torch.random.fork_rng(devices=[]):  # its discarded initial weights leave torch's generator as it was
        wider = build_policy(policy.kind, obs_size, policy.num_actions, policy.hidden_size)
        wider = wider.to(next(policy.parameters()).device)
    with torch.no_grad():
        for (name, mine), theirs in zip(wider.state_dict().items(), policy.state_dict().values(), strict=True):
            if name == first:
                mine.zero_()
                mine[:, : theirs.shape[1]] = theirs
            else:
                mine.copy_(theirs)
    return wider


def action_and_value(logits: torch.Tensor, value: torch.Tensor, action: torch.Tensor | None = None):
    """(action, logprob, entropy, value) from a forward pass's logits and values: samples an
    action when none is given (CleanRL's get_action_and_value, for a Policy or a wrapper of one
    such as DistributedDataParallel, whose forward must be the call that builds the graph)."""
    # Under a bfloat16 autocast (train.update_precision) only the matmuls run in bfloat16:
    # the log-probabilities, entropy and value come out in float32.
    logits, value = logits.float(), value.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    if action is None:
        action = sample_actions(logprobs)
    logprob = logprobs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    return action, logprob, entropy, value


def sample_actions(logprobs: torch.Tensor, generator: torch.Generator | None = None, rows=None) -> torch.Tensor:
    """One categorical sample per row by the Gumbel-max trick (torch's global RNG unless a generator is given).

    rows: (first, total) when ``logprobs`` are rows first.. of a batch of ``total`` split across
    processes: the noise is drawn for the whole batch and this part's rows taken from it, so every
    process's generator moves alike and each row gets the noise one process would have drawn."""
    first, total = (0, len(logprobs)) if rows is None else rows
    shape = (total, *logprobs.shape[1:])
    noise = torch.rand(shape, generator=generator, device=logprobs.device)[first : first + len(logprobs)]
    noise = noise.clamp_(min=1e-20)
    return (logprobs - torch.log(-torch.log(noise))).argmax(-1)
