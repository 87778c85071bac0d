"""Teachers that need no intervention: the data's own tokens and the frozen base model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets


@TEACHERS.register("labels")
@dataclass(frozen=True)
class LabelsTeacher(Teacher):
    """The data's own answer tokens as hard targets (NLL; negated, gradient ascent)."""

    needs_model: ClassVar[bool] = False

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        return TokenTargets(mask=labels != -100, token_ids=labels)


@TEACHERS.register("base")
@dataclass(frozen=True)
class BaseTeacher(Teacher):
    """The frozen base model on the clean inputs (KL retain terms, preference references)."""

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        return TokenTargets(mask=labels != -100, logprobs=ctx.logprobs(batch, labels))
