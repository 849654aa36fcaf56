"""A recurrent policy's memory of the matches in progress, carried from decision to decision.

The learner's rows each hold an LSTM state (h, c). Before a decision, a row's memory starts
afresh where its fighter begins a match (the previous decision ended the last one, or the envs
just started) or is eliminated (a masked row: nothing it remembers matters). The rollout keeps
the state it started from and where memory was reset, so the update replays the same sequences
(training/ppo.py's ppo_sequence_update).
"""

from __future__ import annotations

import torch


class Memory:
    def __init__(self, policy, num_agents: int, device):
        self.state = policy.initial_state(num_agents, device)
        self.starts = torch.ones(num_agents, dtype=torch.bool, device=device)
        """the row's next decision is the first of a match"""

    def resets(self, masks: torch.Tensor) -> torch.Tensor:
        """Where memory starts afresh before the next decision: a new match or an eliminated fighter."""
        return self.starts | ~masks

    @torch.no_grad()
    def decide(self, policy, obs: torch.Tensor, masks: torch.Tensor, resets_out: torch.Tensor):
        """One decision of every row: (logits, values); the state moves on and ``resets_out`` gets
        where it was reset."""
        torch.bitwise_or(self.starts, ~masks, out=resets_out)
        logits, values, self.state = policy(obs, self.state, resets_out)
        return logits, values

    def ended(self, dones: torch.Tensor) -> None:
        """The decision just taken ended these rows' matches."""
        self.starts.copy_(dones)

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.state[0].clone(), self.state[1].clone()

    def state_dict(self) -> dict:
        return {"h": self.state[0].cpu().clone(), "c": self.state[1].cpu().clone(), "starts": self.starts.cpu().clone()}

    def load_state_dict(self, saved: dict) -> None:
        h, c = self.state
        if saved["h"].shape != h.shape:  # another number of agents: the envs start fresh matches anyway
            return
        h.copy_(torch.as_tensor(saved["h"])), c.copy_(torch.as_tensor(saved["c"]))
        self.starts.copy_(torch.as_tensor(saved["starts"]))
