"""Teachers that need no intervention: the data's own tokens and the frozen base model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets


@TEACHERS.register("labels")
@dataclass(frozen=True)
class LabelsTeacher(Teacher):
    """The data's own answer tokens as hard targets (NLL; negated, gradient ascent).

    `skip_first_tokens`: the first n answer tokens of each row get no target (CE-U's setting,
    arXiv 2503.01224: an answer's first token is often generic)."""

    skip_first_tokens: int = 0
    needs_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.skip_first_tokens < 0:
            raise ValueError(f"labels skip_first_tokens={self.skip_first_tokens} must be >= 0")

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        mask = labels != -100  # (B, K); answers are a suffix of each left-padded row
        if self.skip_first_tokens:
            mask = mask & (mask.cumsum(-1) > self.skip_first_tokens)
        return TokenTargets(mask=mask, token_ids=labels.masked_fill(~mask, -100))


@TEACHERS.register("base")
@dataclass(frozen=True)
class BaseTeacher(Teacher):
    """The frozen base model on the clean inputs (KL retain terms, preference references)."""

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        return TokenTargets(mask=labels != -100, logprobs=ctx.logprobs(batch, labels))
