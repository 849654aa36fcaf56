"""The symmetry loss: a policy that plays the ring the same way whichever way it is turned.

The ring's 16 symmetries (arena.symmetry: turns by multiples of 45 degrees, with and without
a mirror) map every match onto another, equally likely one. PPO alone learns each of them
from its own data, so a situation that training rarely meets can be played well seen from
one side of the ring and badly from another: a fighter trained against the league walked out
of the ring in 6% of its matches against `idle`, every time from the same spawn angle
(docs/benchmarks.md). The symmetry loss asks, on a share of each minibatch's rows (the
``symmetry_rows`` of the config), that the policy's action probabilities for the row turned
by a random symmetry be the row's, each move permuted to the turned move, and its value the
row's value:

    symmetry_loss = mean over those rows of  KL(pi(.|s) || P_g pi(.|g s)) + vf_coef * 0.5 (V(g s) - V(s))^2

(gradients flow through both sides), added to PPO's loss with weight ``symmetry_coef``. It is
a regulariser in the spirit of the mirror loss of Yu, Turk and Liu (2018, "Learning symmetric
and low-energy locomotion"); PPO's clipped objective is unchanged.

Which rows are turned, and by what, is drawn once per epoch over the whole batch with torch's
generator (so a seed gives the same update, and every rank of a distributed run draws the same).
"""

from __future__ import annotations

import numpy as np
import torch

from arena.symmetry import ELEMENTS, MOVES, action_permutations, vector_map, vector_pairs
from evaluation.symmetry import turned_kl


class SymmetryLoss:
    """The ring's symmetries as tensors on the update's device, and the loss terms they give."""

    def __init__(self, obs_size: int, rows: float, device, mirrors: bool = True):
        if not 0 < rows <= 1:
            raise ValueError(f"rows must be a share in (0, 1], got {rows!r}")
        self.rows = rows
        self.elements = ELEMENTS if mirrors else MOVES  # elements 8..15 are the mirrored ones
        # arena.symmetry.observation_matrix, applied pair by pair: each (x, y) pair of the
        # observation turns by the element's 2x2 map, the other numbers stay
        self.maps = torch.as_tensor(
            np.stack([vector_map(g) for g in range(ELEMENTS)]), dtype=torch.float32, device=device
        )
        pairs = torch.as_tensor(vector_pairs(obs_size), device=device)
        self.x, self.y = pairs[:, 0], pairs[:, 1]
        self.permutations = torch.as_tensor(action_permutations(), device=device)  # (16, A)

    def draw(self, size: int, device) -> torch.Tensor:
        """(size,) int64 per row of a batch: 0 for a row the loss leaves out, else the symmetry
        (1..15, or 1..7 without mirrors; never the identity) that turns it."""
        picked = torch.rand(size, device=device) < self.rows
        elements = torch.randint(1, self.elements, (size,), device=device)
        return torch.where(picked, elements, torch.zeros_like(elements))

    def turned(self, obs: torch.Tensor, elements: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the picked rows' indices, their observations turned by their elements)."""
        rows = elements.nonzero().squeeze(-1)
        m = self.maps[elements[rows]]  # (n, 2, 2)
        picked = obs[rows]
        x, y = picked[:, self.x], picked[:, self.y]
        turned = picked.clone()
        turned[:, self.x] = m[:, 0, 0, None] * x + m[:, 0, 1, None] * y
        turned[:, self.y] = m[:, 1, 0, None] * x + m[:, 1, 1, None] * y
        return rows, turned

    def terms(self, logits, values, turned_logits, turned_values, rows, elements, vf_coef: float) -> torch.Tensor:
        """Per picked row: the KL of the turned row's permuted policy from the row's, plus
        vf_coef times half the squared difference of the two values (sum them, then divide by the
        minibatch's expected count of picked rows: ``rows`` share x its row count)."""
        logp = torch.log_softmax(logits[rows].float(), dim=-1)
        turned_logp = torch.log_softmax(turned_logits.float(), dim=-1)
        kl = turned_kl(logp, turned_logp, self.permutations[elements[rows]])
        return kl + vf_coef * 0.5 * (turned_values.float() - values[rows].float()) ** 2
