"""Data views: a batch role `role:view` (e.g. `forget:idk`) is the role's rows seen through a
registered view, so a term can train on another answer to the same questions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mmunlearn.data.example import Example
from mmunlearn.registry import Registry

VIEWS: Registry[Callable[[Example], Example]] = Registry("data view")


@VIEWS.register("idk")
def idk_view(example: Example) -> Example:
    """The example answered with its first "I don't know"-style alternative (IdK methods)."""
    if not example.alt_answers:
        raise ValueError(f"example {example.id!r} has no alt_answers; the IdK view needs one")
    return dataclasses.replace(example, answer=example.alt_answers[0])


@VIEWS.register("alternate")
def alternate_view(example: Example) -> Example:
    """The example answered with a plausible wrong answer: its first option other than the
    answer (AltPO's alternate answers; the paper generates them with the model itself)."""
    wrong = [option for option in example.options if option != example.answer]
    if not wrong:
        raise ValueError(
            f"example {example.id!r} has no option other than its answer; the alternate view "
            "needs one (a multiple-choice distractor)"
        )
    return dataclasses.replace(example, answer=wrong[0])
