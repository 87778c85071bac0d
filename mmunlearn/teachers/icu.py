"""In-context unlearning: the frozen base told, in its prompt, to forget the entity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.teachers.targets import TEACHERS, TeacherContext, TokenTargets

FORGET_PROMPT = "Forget {entity} ."


def check_prompt(prompt: str) -> None:
    if prompt and "{entity}" not in prompt:
        raise ValueError(f"forget prompt {prompt!r} must contain the placeholder '{{entity}}'")


def reencoded(
    ctx: TeacherContext,
    batch: dict[str, Any],
    prompt: str = "",
    question_of: Callable[[Example], str] | None = None,
) -> dict[str, Any]:
    """The batch rendered again with an in-context prefix and/or rewritten questions."""
    examples: list[Example] = batch["examples"]
    encoded = [
        ctx.encoder.encode(
            ex,
            question=question_of(ex) if question_of else None,
            prefix=prompt.format(entity=ex.entity) if prompt else "",
        )
        for ex in examples
    ]
    return ctx.encoder.collate(examples, encoded)


@TEACHERS.register("icu")
@dataclass(frozen=True)
class IcuTeacher:
    """Frozen base with the in-context forget prompt only (in-context unlearning, distilled)."""

    prompt: str = FORGET_PROMPT

    def __post_init__(self) -> None:
        check_prompt(self.prompt)

    @property
    def rewrites_text(self) -> bool:
        return bool(self.prompt)

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        logprobs = ctx.logprobs(reencoded(ctx, batch, self.prompt), labels)
        return TokenTargets(mask=labels != -100, logprobs=logprobs)
