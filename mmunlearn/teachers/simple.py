"""Teachers that need no intervention: the data's own tokens and the frozen base model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.teachers.targets import TEACHERS, TeacherContext, TokenTargets


@TEACHERS.register("labels")
@dataclass(frozen=True)
class LabelsTeacher:
    """The data's own answer tokens as hard targets (NLL; negated, gradient ascent)."""

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        return TokenTargets(mask=labels != -100, token_ids=labels)


@TEACHERS.register("base")
@dataclass(frozen=True)
class BaseTeacher:
    """The frozen base model on the clean inputs (KL retain terms, preference references)."""

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        return TokenTargets(mask=labels != -100, logprobs=ctx.logprobs(batch, labels))
