"""UNDIAL (arXiv 2402.10052): the base's distribution with the gold token's logit lowered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets

CONVENTIONS = ("paper", "open_unlearning")


def undial_targets(
    logprobs: torch.Tensor, labels: torch.Tensor, beta: float, ignored: str = "paper"
) -> torch.Tensor:
    """log softmax(z − β·onehot(y)): (B, K, V) base log-probs, (B, K) gold ids → (B, K, V).

    Where y is the ignore index (−100), `paper` lowers token 0 (those positions are masked out);
    `open_unlearning` lowers token V − 100, as open-unlearning's `compute_undial_loss` does by
    indexing the vocabulary with the raw label (−100 counts from the end), on positions it
    averages over.
    """
    vocab = logprobs.shape[-1]
    if ignored == "open_unlearning" and vocab < 100:
        raise ValueError(
            f"open-unlearning's UNDIAL lowers token V − 100 off the answer; a vocabulary of "
            f"{vocab} tokens has none (use convention='paper')"
        )
    index = labels.remainder(vocab) if ignored == "open_unlearning" else labels.clamp(min=0)
    penalty = torch.zeros_like(logprobs).scatter_(-1, index.unsqueeze(-1), beta)
    return torch.log_softmax(logprobs - penalty, dim=-1)


@TEACHERS.register("undial")
@dataclass(frozen=True)
class UndialTeacher(Teacher):
    """Frozen base logits with β subtracted from the gold token's logit (self-distillation target).

    `convention`: `paper` (UNDIAL's form: answer tokens); `open_unlearning` — on a whole-sequence
    view (`positions="sequence_but_last"`) the gold token is the data's answer label
    (`answer_labels`), and non-answer positions lower token V − 100 as open-unlearning does.
    """

    beta: float = 10.0
    convention: str = "paper"

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"undial beta={self.beta} must be >= 0")
        if self.convention not in CONVENTIONS:
            raise ValueError(
                f"undial convention={self.convention!r}; expected one of {CONVENTIONS}"
            )

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        gold = labels
        if self.convention == "open_unlearning" and "answer_labels" in batch:
            gold = batch["answer_labels"][:, -labels.shape[1] :].to(labels.device)
        logprobs = undial_targets(ctx.logprobs(batch, labels), gold, self.beta, self.convention)
        return TokenTargets(mask=labels != -100, logprobs=logprobs)
