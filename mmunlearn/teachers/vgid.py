"""VGID: Visual-Noise Guided In-Context Distillation (arXiv 2606.00105)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.teachers.entity_swap import swap_batch
from mmunlearn.teachers.icu import FORGET_PROMPT, check_prompt, reencoded
from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets
from mmunlearn.teachers.undial import undial_targets
from mmunlearn.teachers.visual_noise import VisualNoise, noised_batch


@TEACHERS.register("vgid")
@dataclass(frozen=True)
class VgidTeacher(Teacher):
    """The frozen base on a noised image plus an in-context forget prompt.

    `noise=None` drops the visual half (prompt only), `prompt=""` the in-context half (noise
    only). `swap_names` also renames the entity in text questions (entity swap); off by default
    because the paper's teacher has no such term; the README's ablation measures it. Rows
    without an image (and every row of a text-only model) get the in-context half only.
    `prompt_as`: the instruction before the question (`prefix`) or as a system message.
    `demote_answer` (β, UNDIAL's adjustment): β is subtracted from the true answer's first-token
    logit in the teacher's target. Under noise the base still gives the forget people's own
    answers more weight than one that never saw them (`scripts/vgid_ranking.py`); 0 is off.
    """

    noise: VisualNoise | None = VisualNoise()
    prompt: str = FORGET_PROMPT
    swap_names: bool = False
    draws: int = 1
    prompt_as: str = "prefix"
    demote_answer: float = 0.0

    def __post_init__(self) -> None:
        check_prompt(self.prompt, self.prompt_as)
        if self.draws < 1:
            raise ValueError(f"draws={self.draws} must be >= 1")
        if self.demote_answer < 0:
            raise ValueError(f"demote_answer={self.demote_answer} must be >= 0")

    @property
    def rewrites_text(self) -> bool:
        return bool(self.prompt) or self.swap_names

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        draws = []
        for draw in range(self.draws):
            if self.swap_names:
                teacher_batch = swap_batch(ctx, batch, draw, self.prompt, self.prompt_as)
            elif self.prompt:
                teacher_batch = reencoded(ctx, batch, self.prompt, prompt_as=self.prompt_as)
            else:
                teacher_batch = batch
            if self.noise is not None:
                teacher_batch = noised_batch(ctx, teacher_batch, self.noise, draw)
            draws.append(teacher_batch)
        logprobs = ctx.mean_logprobs(draws, labels)
        if self.demote_answer:
            logprobs = demote_first_answer_token(logprobs, labels, self.demote_answer)
        return TokenTargets(mask=labels != -100, logprobs=logprobs)


def demote_first_answer_token(
    logprobs: torch.Tensor, labels: torch.Tensor, beta: float
) -> torch.Tensor:
    """(B, K, V) log-probs with β taken off the gold token's logit at each row's first answer
    position (renormalised there), unchanged at the other positions."""
    answer_mask = labels != -100  # (B, K)
    first_mask = answer_mask & (answer_mask.cumsum(-1) == 1)
    lowered = undial_targets(logprobs, labels, beta)
    return torch.where(first_mask.unsqueeze(-1), lowered, logprobs)
