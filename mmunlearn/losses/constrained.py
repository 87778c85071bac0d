"""A retain constraint with a dual variable (PDU's primal-dual scheme), the one stateful loss.

PDU (Entesari et al., "Constrained Entropic Unlearning: A Primal-Dual Framework for Large
Language Models", arXiv 2506.05314) solves min_θ L_forget(θ) s.t. L_retain(θ) ≤ ε through the
Lagrangian L_forget + λ·(L_retain − ε), descending θ and ascending λ ≥ 0:

    λ ← max(0, λ + η·(L_retain − ε))    after each batch (open-unlearning's `dual_update_upon=step`)

The engine's term weights are constants, so λ lives in this loss: each call returns
λ·(L_retain − ε) with the current λ (constant for the gradient), then applies the update with
that batch's retain NLL (only under autograd: a call for evaluation leaves λ as it is). Called
once per micro-batch by the trainer, as open-unlearning's
`compute_loss` is. Sequence-level, so the fused head (which calls token losses once per chunk)
never splits a call; each row's value is scaled so that their mean is the batch's token-mean
NLL, the plain path's retain NLL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import LOSSES, Loss
from mmunlearn.values import TokenTargets


@dataclass
class DualVariable:
    """λ, and how many updates it has had (mutable: the one piece of training state a loss
    holds)."""

    value: float
    updates: int = 0


@LOSSES.register("constrained_nll")
@dataclass(frozen=True)
class ConstrainedNLL(Loss):
    """λ·(NLL − ε) on the retain answers with λ updated by dual ascent (see the module).

    `retain_bound`: ε, the retain NLL the constraint allows (open-unlearning's
    `retain_loss_eps`, 0.0); `dual_step`: η (`dual_step_size`, 1.0); `initial_multiplier`: λ₀
    (open-unlearning starts λ at its retain weight α, 1.0)."""

    retain_bound: float = 0.0
    dual_step: float = 1.0
    initial_multiplier: float = 1.0
    multiplier: DualVariable = field(init=False, compare=False, repr=False)
    level: ClassVar[str] = "sequence"

    def __post_init__(self) -> None:
        for name in ("retain_bound", "dual_step", "initial_multiplier"):
            if getattr(self, name) < 0:
                raise ValueError(f"constrained_nll {name}={getattr(self, name)} must be >= 0")
        object.__setattr__(self, "multiplier", DualVariable(self.initial_multiplier))

    def __call__(
        self, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
    ) -> torch.Tensor:
        mask = labels != -100  # (B, K)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        nll = F.nll_loss(logprobs.transpose(1, 2), labels.clamp(min=0), reduction="none")
        rows = mask.any(-1)
        # each row's share of the batch's token mean, times the rows it is averaged over
        row_nll = (nll * mask).sum(-1) * rows.sum() / mask.sum().clamp(min=1)  # (B,)
        batch_nll = float((nll.detach() * mask).sum() / mask.sum().clamp(min=1))
        slack = row_nll - self.retain_bound
        value = self.multiplier.value * slack
        if torch.is_grad_enabled():  # a training step; an evaluation leaves λ as it is
            self.update(batch_nll)
        return value

    def update(self, retain_nll: float) -> None:
        """The dual ascent step: λ ← max(0, λ + η·(L_retain − ε))."""
        step = self.dual_step * (retain_nll - self.retain_bound)
        self.multiplier.value = max(0.0, self.multiplier.value + step)
        self.multiplier.updates += 1
