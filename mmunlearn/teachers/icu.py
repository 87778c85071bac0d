"""In-context unlearning: the frozen base told, in its prompt, to forget the entity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets

FORGET_PROMPT = "Forget {entity} ."


PROMPT_CHANNELS = ("prefix", "system")


def check_prompt(prompt: str, prompt_as: str = "prefix") -> None:
    if prompt is None:
        raise ValueError(
            "forget prompt is null (YAML reads `teacher.prompt=` as null); write "
            "teacher.prompt='' to switch the in-context instruction off"
        )
    if not isinstance(prompt, str):
        raise ValueError(
            f"forget prompt {prompt!r} is not text: YAML reads `key: value` as a mapping; "
            "quote the prompt, e.g. --set \"teacher.prompt='Forget {entity}: ...'\""
        )
    if prompt and "{entity}" not in prompt:
        raise ValueError(f"forget prompt {prompt!r} must contain the placeholder '{{entity}}'")
    if prompt_as not in PROMPT_CHANNELS:
        raise ValueError(f"prompt_as={prompt_as!r}; expected one of {PROMPT_CHANNELS}")


def in_context(prompt: str, prompt_as: str, example: Example) -> dict[str, str]:
    """`PromptEncoder.encode`'s keyword for the forget instruction about `example`'s entity:
    glued before the question (`prefix`), or a system message (`system`, the natural channel
    of a chat model)."""
    if not prompt:
        return {}
    return {prompt_as: prompt.format(entity=example.entity)}


def reencoded(
    ctx: TeacherContext,
    batch: dict[str, Any],
    prompt: str = "",
    question_of: Callable[[Example], str] | None = None,
    prompt_as: str = "prefix",
) -> dict[str, Any]:
    """The batch rendered again with an in-context instruction and/or rewritten questions."""
    examples: list[Example] = batch["examples"]
    encoded = [
        ctx.encoder.encode(
            ex,
            question=question_of(ex) if question_of else None,
            **in_context(prompt, prompt_as, ex),
        )
        for ex in examples
    ]
    return ctx.encoder.collate(examples, encoded)


@TEACHERS.register("icu")
@dataclass(frozen=True)
class IcuTeacher(Teacher):
    """Frozen base with the in-context forget prompt only (in-context unlearning, distilled).

    `prompt_as`: `prefix` (before the question) or `system` (a system message).
    """

    prompt: str = FORGET_PROMPT
    prompt_as: str = "prefix"

    def __post_init__(self) -> None:
        check_prompt(self.prompt, self.prompt_as)

    @property
    def rewrites_text(self) -> bool:
        return bool(self.prompt)

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        logprobs = ctx.logprobs(
            reencoded(ctx, batch, self.prompt, prompt_as=self.prompt_as), labels
        )
        return TokenTargets(mask=labels != -100, logprobs=logprobs)
