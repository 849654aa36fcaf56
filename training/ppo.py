"""PPO's pieces, as in CleanRL's ppo.py: rollout storage, generalized advantage estimation, the
clipped-surrogate loss and the update. train.py's loop puts them together.

A distributed run (training/distributed.py) updates on the whole run's batch: every rank
holds its own rows of it, draws the same permutation of all rows (torch's generator moves
alike on every rank) and takes its rows of each minibatch; the advantages are normalised, the
losses averaged and the KL for the early stop measured over the whole minibatch; each rank's
loss is scaled so that DistributedDataParallel's average of the gradients is the gradient of
the whole minibatch's loss. A recurrent policy's update does the same with whole agent
sequences instead of rows, and averages the gradients itself in one all-reduce. The same
seeds give the parameters one process would reach, to within float rounding
(tests/test_distributed.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from policies.network import action_and_value


@dataclass
class Rollout:
    """The rollout's tensors, (num_steps, num_agents) each (obs adds the observation shape),
    allocated once: row t of agent i is obs[t, i] and what followed it."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    """the episode ended with this step (terminal or truncated)"""
    masks: torch.Tensor
    """the row was a live decision (False for an eliminated fighter's rows)"""
    values: torch.Tensor
    resets: torch.Tensor | None = None
    """a recurrent policy's memory started afresh before row t: a new match, or an eliminated
    fighter (recurrent policies only)"""
    initial_state: tuple | None = None
    """a recurrent policy's state before the rollout's first row, kept for the update"""

    @classmethod
    def allocate(cls, num_steps: int, num_agents: int, obs_shape, device, recurrent: bool = False) -> Rollout:
        shape = (num_steps, num_agents)
        return cls(
            resets=torch.zeros(shape, dtype=torch.bool, device=device) if recurrent else None,
            obs=torch.zeros((*shape, *obs_shape), device=device),
            actions=torch.zeros(shape, dtype=torch.long, device=device),
            logprobs=torch.zeros(shape, device=device),
            rewards=torch.zeros(shape, device=device),
            dones=torch.zeros(shape, dtype=torch.bool, device=device),
            masks=torch.zeros(shape, dtype=torch.bool, device=device),
            values=torch.zeros(shape, device=device),
        )

    def live_batch(self, advantages: torch.Tensor, returns: torch.Tensor, dist=None) -> dict:
        """The flat batch of live rows: obs, actions, logprobs, advantages, returns, values (CleanRL's b_*).

        In a distributed run (dist) the batch is this rank's rows of the run's, and it also holds
        each row's place among the global batch's rows, in the order one process would hold them
        (global_index), and the global batch's row count (global_size)."""
        live = self.masks.reshape(-1).nonzero().squeeze(-1)
        batch = dict(
            obs=self.obs.reshape(-1, *self.obs.shape[2:])[live],
            actions=self.actions.reshape(-1)[live],
            logprobs=self.logprobs.reshape(-1)[live],
            advantages=advantages.reshape(-1)[live],
            returns=returns.reshape(-1)[live],
            values=self.values.reshape(-1)[live],
        )
        if dist is not None and dist.enabled:
            steps, agents = self.masks.shape  # the ranks hold equal shares of the agents, in rank order
            everyone = dist.gather_tensor(self.masks.to(torch.uint8)).bool()  # (ranks, steps, agents)
            global_masks = everyone.permute(1, 0, 2).reshape(steps, -1)  # one process's (steps, all agents)
            order = global_masks.reshape(-1).cumsum(0) - 1  # a live row's place in the global batch
            mine = order.reshape(steps, -1)[:, dist.rank * agents : (dist.rank + 1) * agents]
            batch["global_index"] = mine.reshape(-1)[live]
            batch["global_size"] = int(global_masks.sum())
        return batch

    def sequence_batch(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict:
        """The batch of a recurrent policy: every row in (num_steps, num_agents) order, so that the
        update replays each agent's sequence from the rollout's initial state."""
        return dict(
            obs=self.obs, actions=self.actions, logprobs=self.logprobs, advantages=advantages, returns=returns,
            values=self.values, masks=self.masks, resets=self.resets, initial_state=self.initial_state,
        )  # fmt: skip


def compute_gae(rewards, values, dones, masks, next_value, next_mask, gamma, gae_lambda):
    """Generalized advantage estimates and returns for a (num_steps, num_agents) rollout.

    dones[t] is True when an episode ended with step t (terminal or truncated); masks[t] is
    True when row t was a live decision. A row bootstraps from the next row only if neither
    holds the episode's end nor a masked (eliminated) agent.
    """
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(next_value)
    num_steps = rewards.shape[0]
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextvalues, nextlive = next_value, next_mask
        else:
            nextvalues, nextlive = values[t + 1], masks[t + 1]
        nextnonterminal = (1.0 - dones[t].float()) * nextlive.float()
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages, advantages + values


def ppo_loss(policy, mb, args, precision=torch.float32, symmetry=None):
    """Clipped-surrogate PPO loss on one minibatch dict; returns (loss, detached stats).

    precision bfloat16 runs the network's matmuls (forward, and so backward) in bfloat16; the
    weights, the optimizer and everything below stay float32 (train.update_precision).
    symmetry (training.symmetry.SymmetryLoss): also the symmetry loss of the rows that
    mb["symmetry"] turns, weighted by args.symmetry_coef.
    """
    if symmetry is None:
        with torch.autocast(mb["obs"].device.type, dtype=precision, enabled=precision != torch.float32):
            _, newlogprob, entropy, newvalue = policy.get_action_and_value(mb["obs"], mb["actions"])
        return clipped_loss(newlogprob, entropy, newvalue, mb, args)
    newlogprob, entropy, newvalue, symmetry_terms = _forward_with_symmetry(policy, mb, precision, symmetry, args)
    loss, stats = clipped_loss(newlogprob, entropy, newvalue, mb, args)
    symmetry_loss = symmetry_terms.sum() / (symmetry.rows * len(mb["obs"]))
    stats["symmetry_loss"] = symmetry_loss.detach()
    return loss + args.symmetry_coef * symmetry_loss, stats


def _forward_with_symmetry(model, mb, precision, symmetry, args):
    """One forward pass over the minibatch's rows and their turned copies: the rows' new
    log-probabilities, entropies and values, and the turned rows' symmetry loss terms."""
    n = len(mb["obs"])
    rows, turned = symmetry.turned(mb["obs"], mb["symmetry"])
    with torch.autocast(mb["obs"].device.type, dtype=precision, enabled=precision != torch.float32):
        logits, values = model(torch.cat([mb["obs"], turned]))
    _, newlogprob, entropy, newvalue = action_and_value(logits[:n], values[:n], mb["actions"])
    terms = symmetry.terms(logits[:n], values[:n], logits[n:], values[n:], rows, mb["symmetry"], args.vf_coef)
    return newlogprob, entropy, newvalue, terms


def clipped_loss(newlogprob, entropy, newvalue, mb, args):
    """The loss of ppo_loss from the policy's new log-probabilities, entropies and values of the
    minibatch's rows (the recurrent update computes them by replaying sequences)."""
    logratio = newlogprob - mb["logprobs"]
    ratio = logratio.exp()
    mb_advantages = mb["advantages"]
    if args.norm_adv and len(mb_advantages) > 1:
        mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
    pg_loss1 = -mb_advantages * ratio
    pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    if args.clip_vloss:
        v_loss_unclipped = (newvalue - mb["returns"]) ** 2
        v_clipped = mb["values"] + torch.clamp(newvalue - mb["values"], -args.clip_coef, args.clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - mb["returns"]) ** 2).mean()
    else:
        v_loss = 0.5 * ((newvalue - mb["returns"]) ** 2).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
    with torch.no_grad():
        stats = dict(
            policy_loss=pg_loss,
            value_loss=v_loss,
            entropy=entropy_loss,
            loss=loss,
            old_approx_kl=(-logratio).mean(),
            approx_kl=((ratio - 1) - logratio).mean(),
            clipfrac=((ratio - 1.0).abs() > args.clip_coef).float().mean(),
        )
    return loss, {k: v.detach() for k, v in stats.items()}


def ppo_update(policy, optimizer, batch, args, precision=torch.float32, dist=None, symmetry=None) -> dict:
    """update_epochs passes of num_minibatches minibatches over a flat batch dict of b_* tensors.
    In a distributed run (dist), the whole run's batch, of which ``batch`` holds this rank's rows
    (Rollout.live_batch), and ``policy`` is the DistributedDataParallel module. symmetry: the
    SymmetryLoss to add (training.symmetry), which rows it turns drawn each epoch."""
    if dist is not None and dist.enabled:
        return _global_update(policy, optimizer, batch, args, precision, dist, symmetry)
    batch_size = len(batch["obs"])
    minibatch_size = math.ceil(batch_size / args.num_minibatches)
    totals, count = defaultdict(float), 0
    for epoch in range(args.update_epochs):  # noqa: B007 (read after the loop: the epochs run)
        b_inds = torch.randperm(batch_size, device=batch["obs"].device)
        if symmetry is not None:
            batch = dict(batch, symmetry=symmetry.draw(batch_size, batch["obs"].device))
        for start in range(0, batch_size, minibatch_size):
            mb_inds = b_inds[start : start + minibatch_size]
            mb = {k: v.index_select(0, mb_inds) for k, v in batch.items()}  # 8x faster than v[mb_inds] for obs
            loss, stats = ppo_loss(policy, mb, args, precision, symmetry)
            gradient_step(policy, optimizer, loss, args.max_grad_norm)
            for k, v in stats.items():
                totals[k] += float(v)
            count += 1
        if args.target_kl is not None and float(stats["approx_kl"]) > args.target_kl:
            break
    means = {k: v / count for k, v in totals.items()}
    means["explained_variance"] = explained_variance(batch["returns"], batch["values"])
    means["epochs"] = epoch + 1
    return means


def gradient_step(model, optimizer, loss, max_grad_norm: float) -> None:
    """Back-propagate ``loss``, clip the gradients' global norm and take the optimizer's step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()


def explained_variance(returns: torch.Tensor, values: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns): how much of the returns the value head explains."""
    var_y = torch.var(returns).item() if len(returns) > 1 else 0.0
    return float("nan") if var_y == 0 else 1 - torch.var(returns - values).item() / var_y


SEQUENCE_ROWS = ("actions", "logprobs", "advantages", "returns", "values")


def ppo_sequence_update(policy, optimizer, batch, args, precision=torch.float32, dist=None) -> dict:
    """ppo_update for a recurrent policy, as CleanRL's ppo_atari_lstm does it: each minibatch is a
    share of the agents, whose whole sequences the policy replays from the rollout's initial state
    (resetting its memory where the rollout did); the loss is over their live rows. In a
    distributed run (dist), the whole run's agents, of which ``batch`` holds this rank's."""
    if dist is not None and dist.enabled:
        return _global_sequence_update(policy, optimizer, batch, args, precision, dist)
    steps, agents = batch["masks"].shape
    device = batch["obs"].device
    live_rows = batch["masks"].reshape(-1)
    totals, count = defaultdict(float), 0
    for epoch in range(args.update_epochs):  # noqa: B007 (read after the loop: the epochs run)
        agent_perm = torch.randperm(agents, device=device)
        for cols in torch.tensor_split(agent_perm, min(args.num_minibatches, agents)):
            live = batch["masks"][:, cols].reshape(-1)
            if not live.any():
                continue
            mb, newlogprob, entropy, newvalue = replay_sequences(policy, batch, cols, live, precision)
            loss, stats = clipped_loss(newlogprob, entropy, newvalue, mb, args)
            gradient_step(policy, optimizer, loss, args.max_grad_norm)
            for k, v in stats.items():
                totals[k] += float(v)
            count += 1
        if args.target_kl is not None and count and float(stats["approx_kl"]) > args.target_kl:
            break
    means = {k: v / max(count, 1) for k, v in totals.items()}
    live_returns, live_values = batch["returns"].reshape(-1)[live_rows], batch["values"].reshape(-1)[live_rows]
    means["explained_variance"] = explained_variance(live_returns, live_values)
    means["epochs"] = epoch + 1
    return means


def replay_sequences(policy, batch, cols, live, precision):
    """The minibatch of agents ``cols``: their live rows (``live``, flat) of the SEQUENCE_ROWS,
    and the policy's new log-probabilities, entropies and values there, from replaying the
    agents' whole sequences from the rollout's initial state."""
    h0, c0 = batch["initial_state"]
    device = batch["obs"].device
    with torch.autocast(device.type, dtype=precision, enabled=precision != torch.float32):
        logits, newvalue, _ = policy.forward_sequence(
            batch["obs"][:, cols], (h0[cols], c0[cols]), batch["resets"][:, cols]
        )
    logits, newvalue = logits.reshape(-1, logits.shape[-1])[live], newvalue.reshape(-1)[live]
    mb = {k: batch[k][:, cols].reshape(-1)[live] for k in SEQUENCE_ROWS}
    _, newlogprob, entropy, newvalue = action_and_value(logits, newvalue, mb["actions"])
    return mb, newlogprob, entropy, newvalue


# =============================================================================================
# The update of a distributed run: one process's update, computed on every rank's rows
# =============================================================================================
ROWS = ("obs", "actions", "logprobs", "advantages", "returns", "values", "symmetry")


def _global_update(model, optimizer, batch, args, precision, dist, symmetry=None) -> dict:
    """ppo_update's passes over the run's batch, of which ``batch`` holds this rank's rows.

    Each minibatch step synchronises the ranks once, in DistributedDataParallel's all-reduce of
    the gradients: the advantage normalisation's sums for every minibatch of an epoch are summed
    over the ranks in one collective before the epoch's first step, and the logged means once at
    the end."""
    size, device = batch["global_size"], batch["obs"].device
    local_of_global = torch.full((size,), -1, dtype=torch.long, device=device)
    local_of_global[batch["global_index"]] = torch.arange(len(batch["global_index"]), device=device)
    minibatch_size = math.ceil(size / args.num_minibatches)
    totals, count = torch.zeros(len(STATS), dtype=torch.float64, device=device), 0
    for epoch in range(args.update_epochs):  # noqa: B007 (read after the loop: the epochs run)
        b_inds = torch.randperm(size, device=device)  # the same on every rank: one process's permutation
        if symmetry is not None:  # drawn over the run's batch, as one process draws it; this rank's rows
            batch = dict(batch, symmetry=symmetry.draw(size, device)[batch["global_index"]])
        minibatches = []  # (this rank's rows of the minibatch, the minibatch's row count)
        for start in range(0, size, minibatch_size):
            picked = local_of_global[b_inds[start : start + minibatch_size]]
            minibatches.append((picked[picked >= 0], min(minibatch_size, size - start)))
        norms = advantage_norms(batch["advantages"], minibatches, dist) if args.norm_adv else None
        for k, (mb_inds, mb_count) in enumerate(minibatches):
            mb = {key: batch[key].index_select(0, mb_inds) for key in ROWS if key in batch}
            norm = norms[k] if norms is not None else None
            loss, sums = global_ppo_loss(model, mb, args, precision, dist, mb_count, norm, symmetry)
            gradient_step(model, optimizer, loss, args.max_grad_norm)  # DDP averages the gradients over the ranks
            totals += sums  # this rank's share of the minibatch's means; summed over the ranks at the end
            count += 1
        # the early stop reads the epoch's last minibatch's KL, over the whole minibatch
        if (
            args.target_kl is not None
            and float(dist.all_sum(sums[STATS.index("approx_kl")].reshape(1))) > args.target_kl
        ):
            break
    return global_means(totals, count, batch["returns"], batch["values"], args, dist, epoch + 1, symmetry is not None)


def global_means(totals, count: int, returns, values, args, dist, epochs: int, symmetry: bool = False) -> dict:
    """The update's logged means over the ranks, from one collective: STATS' means from
    ``totals`` (this rank's share of each of the ``count`` minibatch steps' means), the loss from
    them, the explained variance of the run's live rows (``returns`` and ``values``: this rank's)
    and ``epochs``; symmetry_loss only with a symmetry loss (``symmetry``)."""
    returns, diff = returns.double(), (returns - values).double()
    moments = torch.stack([returns.sum(), (returns * returns).sum(), diff.sum(), (diff * diff).sum(),
                           torch.tensor(len(returns), dtype=torch.float64, device=returns.device)])  # fmt: skip
    summed = dist.all_sum(torch.cat([totals, moments]))
    totals, moments = summed[: len(STATS)] / max(count, 1), summed[len(STATS) :]
    size = int(moments[4])  # the run's live rows
    means = {name: float(totals[k]) for k, name in enumerate(STATS) if name != "symmetry_loss" or symmetry}
    means["loss"] = means["policy_loss"] - args.ent_coef * means["entropy"] + means["value_loss"] * args.vf_coef
    var_y, var_diff = unbiased_variance(moments[0], moments[1], size), unbiased_variance(moments[2], moments[3], size)
    means["explained_variance"] = float("nan") if var_y == 0 else 1 - var_diff / var_y
    means["epochs"] = epochs
    return means


STATS = ("policy_loss", "value_loss", "entropy", "old_approx_kl", "approx_kl", "clipfrac", "symmetry_loss")
"""the update's logged means, besides loss (from them), explained_variance and epochs (symmetry_loss:
only with a symmetry loss)"""


def unbiased_variance(total: torch.Tensor, squares: torch.Tensor, size: int) -> float:
    """The unbiased variance of ``size`` numbers from their sum and their sum of squares."""
    if size < 2:
        return 0.0
    return float((squares - total * total / size) / (size - 1))


def advantage_norms(advantages: torch.Tensor, minibatches: list, dist) -> list:
    """(mean, std) of the advantages of each minibatch, over the whole minibatch as one process
    normalises it (None for a minibatch of one row): this rank's sums, then one collective for
    them all. ``minibatches``: (this rank's rows, the minibatch's row count) each."""
    adv = advantages.detach().double()
    local = torch.stack([torch.stack([adv[rows].sum(), (adv[rows] * adv[rows]).sum()]) for rows, _ in minibatches])
    sums = dist.all_sum(local)
    counts = [count for _, count in minibatches]
    return [norm_from_sums(total, squares, count) for (total, squares), count in zip(sums, counts, strict=True)]


def norm_from_sums(total: torch.Tensor, squares: torch.Tensor, count: int):
    """(mean, unbiased std) of ``count`` advantages from their sum and sum of squares, as
    clipped_loss normalises a minibatch (None for fewer than 2: left as they are)."""
    if count < 2:
        return None
    mean = total / count
    std = ((squares - total * mean) / (count - 1)).clamp(min=0.0).sqrt()
    return mean.float(), std.float()


def global_ppo_loss(model, mb, args, precision, dist, count: int, norm=None, symmetry=None):
    """ppo_loss over a minibatch of ``count`` rows split across the ranks, ``mb`` this rank's,
    its advantages normalised by ``norm`` (the whole minibatch's (mean, std), advantage_norms;
    None: as they are): the loss to back-propagate (scaled for DistributedDataParallel's
    averaging), and this rank's share of the minibatch's means of STATS (summed over the
    ranks, the minibatch's)."""
    if symmetry is None:
        with torch.autocast(mb["obs"].device.type, dtype=precision, enabled=precision != torch.float32):
            _, newlogprob, entropy, newvalue = action_and_value(*model(mb["obs"]), mb["actions"])
        return global_clipped_loss(newlogprob, entropy, newvalue, mb, args, dist, count, norm)
    newlogprob, entropy, newvalue, terms = _forward_with_symmetry(model, mb, precision, symmetry, args)
    return global_clipped_loss(newlogprob, entropy, newvalue, mb, args, dist, count, norm, terms.sum() / symmetry.rows)


def global_clipped_loss(newlogprob, entropy, newvalue, mb, args, dist, count: int, norm=None, symmetry_sum=None):
    """global_ppo_loss from this rank's rows' new log-probabilities, entropies and values (the
    recurrent update computes them by replaying sequences); symmetry_sum: the rows' summed
    symmetry loss terms, if any."""
    logratio = newlogprob - mb["logprobs"]
    ratio = logratio.exp()
    mb_advantages = mb["advantages"]
    if norm is not None:
        mean, std = norm
        mb_advantages = (mb_advantages - mean) / (std + 1e-8)
    clipped_ratio = torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
    pg_loss = torch.max(-mb_advantages * ratio, -mb_advantages * clipped_ratio)
    if args.clip_vloss:
        v_loss_unclipped = (newvalue - mb["returns"]) ** 2
        v_clipped = mb["values"] + torch.clamp(newvalue - mb["values"], -args.clip_coef, args.clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - mb["returns"]) ** 2)
    else:
        v_loss = 0.5 * (newvalue - mb["returns"]) ** 2
    local = pg_loss.sum() - args.ent_coef * entropy.sum() + args.vf_coef * v_loss.sum()
    if symmetry_sum is not None:
        local = local + args.symmetry_coef * symmetry_sum
    else:
        symmetry_sum = torch.zeros((), device=newvalue.device)
    loss = local * (dist.world_size / count)  # the ranks' gradients are averaged, not summed
    with torch.no_grad():
        clipfrac = ((ratio - 1.0).abs() > args.clip_coef).float()
        kl = (ratio - 1) - logratio
        sums = torch.stack([pg_loss.sum(), v_loss.sum(), entropy.sum(), (-logratio).sum(), kl.sum(), clipfrac.sum(),
                            symmetry_sum.detach()])  # fmt: skip
    return loss, sums.double() / count


# =============================================================================================
# The recurrent update of a distributed run
# =============================================================================================
def _global_sequence_update(policy, optimizer, batch, args, precision, dist) -> dict:
    """ppo_sequence_update over the run's agents, of which ``batch`` holds this rank's (equal
    shares, in rank order): every rank draws one process's permutation of all the agents and
    replays its own agents of each minibatch; the minibatch's live rows, advantage
    normalisation, losses and KL are the whole minibatch's, and each step averages the
    gradients over the ranks in one all-reduce (``policy`` is the bare module: the replay is not
    its forward, which DistributedDataParallel would hook)."""
    steps, agents = batch["masks"].shape
    device = batch["obs"].device
    total, first = agents * dist.world_size, agents * dist.rank
    kl_index = STATS.index("approx_kl")
    totals, count = torch.zeros(len(STATS), dtype=torch.float64, device=device), 0
    for epoch in range(args.update_epochs):  # noqa: B007 (read after the loop: the epochs run)
        agent_perm = torch.randperm(total, device=device)  # the same on every rank: one process's permutation
        groups = torch.tensor_split(agent_perm, min(args.num_minibatches, total))
        minibatches = [group[(group >= first) & (group < first + agents)] - first for group in groups]
        sizes = dist.all_sum(torch.stack([_live_sums(batch, cols) for cols in minibatches]))  # one collective
        last = None
        for cols, (rows, adv_sum, adv_squares) in zip(minibatches, sizes, strict=True):
            n = int(rows)
            if n == 0:  # no live row in the whole minibatch: one process skips it too
                continue
            norm = norm_from_sums(adv_sum, adv_squares, n) if args.norm_adv else None
            live = batch["masks"][:, cols].reshape(-1)
            if live.any():
                mb, newlogprob, entropy, newvalue = replay_sequences(policy, batch, cols, live, precision)
                loss, sums = global_clipped_loss(newlogprob, entropy, newvalue, mb, args, dist, n, norm)
            else:  # none of this rank's agents is live in it: its gradients are zero
                loss, sums = None, torch.zeros(len(STATS), dtype=torch.float64, device=device)
            averaged_gradient_step(policy, optimizer, loss, args.max_grad_norm, dist)
            totals += sums
            count += 1
            last = sums
        if (
            args.target_kl is not None
            and last is not None
            and float(dist.all_sum(last[kl_index].reshape(1))) > args.target_kl
        ):
            break
    live_rows = batch["masks"].reshape(-1)
    returns, values = batch["returns"].reshape(-1)[live_rows], batch["values"].reshape(-1)[live_rows]
    return global_means(totals, count, returns, values, args, dist, epoch + 1)


def _live_sums(batch: dict, cols: torch.Tensor) -> torch.Tensor:
    """(live rows, sum of their advantages, sum of their squares) of these agents' sequences."""
    live = batch["masks"][:, cols].reshape(-1)
    adv = batch["advantages"][:, cols].reshape(-1)[live].detach().double()
    return torch.stack([live.sum().double(), adv.sum(), (adv * adv).sum()])


def averaged_gradient_step(policy, optimizer, loss, max_grad_norm: float, dist) -> None:
    """gradient_step with this rank's gradients of ``loss`` (None: zeros) averaged over the ranks
    in one all-reduce of the flattened gradients before the clip and the optimizer's step."""
    optimizer.zero_grad(set_to_none=True)
    if loss is not None:
        loss.backward()
    params = [p for p in policy.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.average_gradients_(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
