"""PPO's pieces, as in CleanRL's ppo.py: rollout storage, generalized advantage estimation, the
clipped-surrogate loss and the update. train.py's loop puts them together."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch


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

    @classmethod
    def allocate(cls, num_steps: int, num_agents: int, obs_shape, device) -> Rollout:
        shape = (num_steps, num_agents)
        return cls(
            obs=torch.zeros((*shape, *obs_shape), device=device),
            actions=torch.zeros(shape, dtype=torch.long, device=device),
            logprobs=torch.zeros(shape, device=device),
            rewards=torch.zeros(shape, device=device),
            dones=torch.zeros(shape, dtype=torch.bool, device=device),
            masks=torch.zeros(shape, dtype=torch.bool, device=device),
            values=torch.zeros(shape, device=device),
        )

    def live_batch(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict:
        """The flat batch of live rows: obs, actions, logprobs, advantages, returns, values (CleanRL's b_*)."""
        live = self.masks.reshape(-1).nonzero().squeeze(-1)
        return dict(
            obs=self.obs.reshape(-1, *self.obs.shape[2:])[live],
            actions=self.actions.reshape(-1)[live],
            logprobs=self.logprobs.reshape(-1)[live],
            advantages=advantages.reshape(-1)[live],
            returns=returns.reshape(-1)[live],
            values=self.values.reshape(-1)[live],
        )


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


def ppo_loss(policy, mb, args, precision=torch.float32):
    """Clipped-surrogate PPO loss on one minibatch dict; returns (loss, detached stats).

    precision bfloat16 runs the network's matmuls (forward, and so backward) in bfloat16; the
    weights, the optimizer and everything below stay float32 (train.update_precision).
    """
    with torch.autocast(mb["obs"].device.type, dtype=precision, enabled=precision != torch.float32):
        _, newlogprob, entropy, newvalue = policy.get_action_and_value(mb["obs"], mb["actions"])
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


def ppo_update(policy, optimizer, batch, args, precision=torch.float32) -> dict:
    """update_epochs passes of num_minibatches minibatches over a flat batch dict of b_* tensors."""
    batch_size = len(batch["obs"])
    minibatch_size = math.ceil(batch_size / args.num_minibatches)
    totals, count = defaultdict(float), 0
    for epoch in range(args.update_epochs):  # noqa: B007 (read after the loop: the epochs run)
        b_inds = torch.randperm(batch_size, device=batch["obs"].device)
        for start in range(0, batch_size, minibatch_size):
            mb_inds = b_inds[start : start + minibatch_size]
            loss, stats = ppo_loss(policy, {k: v[mb_inds] for k, v in batch.items()}, args, precision)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            optimizer.step()
            for k, v in stats.items():
                totals[k] += float(v)
            count += 1
        if args.target_kl is not None and float(stats["approx_kl"]) > args.target_kl:
            break
    means = {k: v / count for k, v in totals.items()}
    var_y = torch.var(batch["returns"]).item() if batch_size > 1 else 0.0
    means["explained_variance"] = (
        float("nan") if var_y == 0 else 1 - torch.var(batch["returns"] - batch["values"]).item() / var_y
    )
    means["epochs"] = epoch + 1
    return means
