"""Entity swap: the entity's name in the question replaced by names the model never saw."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mmunlearn.data.example import Example
from mmunlearn.teachers.icu import reencoded
from mmunlearn.teachers.targets import (
    TEACHERS,
    Teacher,
    TeacherContext,
    TokenTargets,
    stable_seed,
)


def swapped_question(example: Example, pool: tuple[str, ...], seed: int, draw: int) -> str:
    """The question with every mention of the entity replaced by a seeded draw from `pool`."""
    if not pool:
        raise ValueError(
            "entity swap needs a pool of unseen names: the world's `unused_names`, or holdout "
            "entities in the data"
        )
    name = random.Random(stable_seed(seed, example.id, draw)).choice(pool)
    return example.question.replace(example.entity, name)


def swap_batch(
    ctx: TeacherContext,
    batch: dict[str, Any],
    draw: int,
    prompt: str = "",
    prompt_as: str = "prefix",
) -> dict[str, Any]:
    def question_of(ex: Example) -> str:
        return swapped_question(ex, ctx.swap_names, ctx.seed, draw)

    return reencoded(ctx, batch, prompt, question_of, prompt_as)


@TEACHERS.register("entity_swap")
@dataclass(frozen=True)
class EntitySwapTeacher(Teacher):
    """Frozen base on the question with the entity renamed, averaged over `draws` names.

    The text-side counterpart of visual noise (cf. Who's Harry Potter's anchored terms and
    "Revisiting Who's Harry Potter", arXiv 2407.16997).
    """

    draws: int = 2
    rewrites_text: ClassVar[bool] = True

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        draws = [swap_batch(ctx, batch, d) for d in range(self.draws)]
        return TokenTargets(mask=labels != -100, logprobs=ctx.mean_logprobs(draws, labels))
