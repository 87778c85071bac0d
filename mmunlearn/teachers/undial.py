"""UNDIAL (arXiv 2402.10052): the base's distribution with the gold token's logit lowered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets


def undial_targets(logprobs: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """log softmax(z − β·onehot(y)): (B, K, V) base log-probs, (B, K) gold ids → (B, K, V)."""
    penalty = torch.zeros_like(logprobs).scatter_(-1, labels.clamp(min=0).unsqueeze(-1), beta)
    return torch.log_softmax(logprobs - penalty, dim=-1)


@TEACHERS.register("undial")
@dataclass(frozen=True)
class UndialTeacher(Teacher):
    """Frozen base logits with β subtracted from the gold token's logit (self-distillation target)."""

    beta: float = 10.0

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"undial beta={self.beta} must be >= 0")

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        logprobs = undial_targets(ctx.logprobs(batch, labels), labels, self.beta)
        return TokenTargets(mask=labels != -100, logprobs=logprobs)
