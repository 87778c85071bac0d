"""What `train.eval_every` records during an unlearning run: forget and retain ROUGE-L, and the
validation half's forget, retain and held-out neighbour ROUGE-L (what `train.keep_best` chooses
by; `data.splits`). The halves' scores are also what `mmunlearn sweep` reports."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.splits import is_heldout, is_validation
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.models.loading import LoadedModel
from mmunlearn.training.trajectory import Measure

TRAJECTORY_ROLES = ("forget", "retain")
# score name -> (role, held-out rows only): neighbours and general knowledge count only where no
# term trained on them; `paraphrased` is the role `test`: the forget questions paraphrased, with
# transformed portraits.
SCORES = {
    "forget": ("forget", False),
    "paraphrased": ("test", False),
    "retain": ("retain", False),
    "neighbor": ("neighbor", True),
    "general": ("general", True),
}
TRAJECTORY_SCORES = ("forget", "retain", "neighbor")  # measured as val_<name>


def half_rows(
    examples: Sequence[Example], validation: bool, names: Sequence[str] = tuple(SCORES)
) -> dict[str, list[Example]]:
    """The rows of each score in `names`, from the validation half (or the test half), for
    the scores that have rows."""
    rows = {
        name: [
            ex
            for ex in examples
            if ex.role == SCORES[name][0]
            and is_validation(ex) == validation
            and (is_heldout(ex) or not SCORES[name][1])
        ]
        for name in names
    }
    return {name: chosen for name, chosen in rows.items() if chosen}


def half_means(
    rows: Sequence[dict[str, Any]], chosen: dict[str, list[Example]]
) -> dict[str, float]:
    """Mean ROUGE-L of each score's rows, from scored rows (`score_predictions`)."""
    rouge = {row["id"]: row["rouge_l"] for row in rows}
    return {name: fmean(rouge[ex.id] for ex in exs) for name, exs in chosen.items()}


def rouge_by_role(examples: list[Example]) -> Measure:
    """A `Measure` that greedy-evaluates the student on the forget and retain rows of
    `examples` (and the validation neighbours) and returns each role's ROUGE-L with the
    validation scores (`val_forget`, `val_retain`, `val_neighbor`)."""
    chosen = half_rows(examples, validation=True, names=TRAJECTORY_SCORES)
    ids = {ex.id for exs in chosen.values() for ex in exs}
    rows = [ex for ex in examples if ex.role in TRAJECTORY_ROLES or ex.id in ids]

    def measure(loaded: LoadedModel) -> dict[str, float]:
        summary, scored = evaluate(loaded, rows, progress=False)
        values = {role: summary[role]["rouge_l"] for role in TRAJECTORY_ROLES if role in summary}
        validation = half_means(scored, chosen)
        return {**values, **{f"val_{name}": value for name, value in validation.items()}}

    return measure
