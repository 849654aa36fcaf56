"""The fighter network: obs -> 128 -> 128 (ReLU) -> 10 action logits and a scalar value.

The trunk is shared by both heads (the seed's design); orthogonal init as in CleanRL, with
std 0.01 on the policy head (near-uniform first actions) and 1.0 on the value head.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

OBS_SIZE = 30
"""own position (2), health (1), velocity (2), 5 closest enemies x 5 values (25)"""
NUM_ACTIONS = 10
"""0-7 move in 8 directions, 8 idle, 9 attack"""


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Policy(nn.Module):
    """Actor-critic MLP with a shared trunk.

    ``get_action_and_value(x, action=None)`` follows CleanRL: it samples an action when none is
    given and returns (action, logprob, entropy, value). The categorical distribution is written
    out with ``log_softmax`` instead of ``torch.distributions.Categorical``: same numbers, a
    fraction of the overhead on the rollout's hot path.
    """

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
        logits, value = self(x)
        logprobs = torch.log_softmax(logits, dim=-1)
        if action is None:
            action = sample_actions(logprobs)
        logprob = logprobs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logprobs.exp() * logprobs).sum(-1)
        return action, logprob, entropy, value

    @torch.no_grad()
    def act(self, x: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions (argmax when greedy, else sampled) and values, without gradients."""
        logits, value = self(x)
        if greedy:
            return logits.argmax(-1), value
        return sample_actions(torch.log_softmax(logits, dim=-1)), value


def sample_actions(logprobs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One categorical sample per row by the Gumbel-max trick (torch's global RNG unless a generator is given)."""
    noise = torch.rand(logprobs.shape, generator=generator, device=logprobs.device).clamp_(min=1e-20)
    return (logprobs - torch.log(-torch.log(noise))).argmax(-1)
