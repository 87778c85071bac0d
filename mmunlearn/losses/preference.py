"""Sequence-level losses (NPO, SimNPO): one value per sequence, averaged over sequences.

They compare whole-answer log-likelihoods log π(y|x) = Σ_t log π(y_t | x, y_<t), summed over the
answer tokens as in the papers and in open-unlearning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import LOSSES
from mmunlearn.teachers.targets import TokenTargets


def sequence_logprob(logprobs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ over valid answer tokens of log p(label): (B, K, V), (B, K) → (B,)."""
    mask = labels != -100
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, K)
    return (picked * mask).sum(-1)


@LOSSES.register("npo")
@dataclass(frozen=True)
class NPO:
    """NPO (arXiv 2404.05868): −(2/β)·log σ(−β·[log π(y|x) − log π_ref(y|x)]), per sequence.

    π_ref is the teacher (the frozen base). As β → 0 the loss is (2/β)·log 2 + log π − log π_ref,
    whose gradient is gradient ascent on the summed NLL. open-unlearning uses the same 2/β scale.
    """

    beta: float = 0.1
    level = "sequence"

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"npo beta={self.beta} must be > 0")

    def __call__(
        self, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
    ) -> torch.Tensor:
        if targets.logprobs is None:
            raise ValueError("npo needs the reference model's log-probs: use the `base` teacher")
        policy = sequence_logprob(torch.log_softmax(logits.float(), -1), labels)
        reference = sequence_logprob(targets.logprobs, labels)
        return -(2 / self.beta) * F.logsigmoid(-self.beta * (policy - reference))


@LOSSES.register("simnpo")
@dataclass(frozen=True)
class SimNPO:
    """SimNPO (arXiv 2410.07163): −(2/β)·log σ(−(β/|y|)·log π(y|x) − γ), reference-free."""

    beta: float = 2.5
    gamma: float = 0.0
    level = "sequence"

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"simnpo beta={self.beta} must be > 0")

    def __call__(
        self, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
    ) -> torch.Tensor:
        policy = sequence_logprob(torch.log_softmax(logits.float(), -1), labels)
        length = (labels != -100).sum(-1).clamp(min=1)
        return -(2 / self.beta) * F.logsigmoid(-(self.beta / length) * policy - self.gamma)
