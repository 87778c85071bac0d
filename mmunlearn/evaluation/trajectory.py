"""What `train.eval_every` records during an unlearning run: forget and retain ROUGE-L, and the
validation half's forget, retain and held-out neighbour ROUGE-L (what `train.keep_best` and
`mmunlearn sweep` choose by; `data.splits`)."""

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
# The validation scores: name -> (role, held-out rows only). Neighbours count only where no term
# trained on them.
VALIDATION_SCORES = {
    "val_forget": ("forget", False),
    "val_retain": ("retain", False),
    "val_neighbor": ("neighbor", True),
}


def validation_rows(examples: Sequence[Example]) -> dict[str, list[Example]]:
    """The rows of each validation score (`VALIDATION_SCORES`), those that exist."""
    rows = {
        name: [
            ex
            for ex in examples
            if ex.role == role and is_validation(ex) and (is_heldout(ex) or not heldout)
        ]
        for name, (role, heldout) in VALIDATION_SCORES.items()
    }
    return {name: chosen for name, chosen in rows.items() if chosen}


def validation_scores(
    rows: Sequence[dict[str, Any]], chosen: dict[str, list[Example]]
) -> dict[str, float]:
    """Mean ROUGE-L of each validation score's rows, from scored rows (`score_predictions`)."""
    rouge = {row["id"]: row["rouge_l"] for row in rows}
    return {name: fmean(rouge[ex.id] for ex in exs) for name, exs in chosen.items()}


def rouge_by_role(examples: list[Example]) -> Measure:
    """A `Measure` that greedy-evaluates the student on the forget and retain rows of
    `examples` (and the validation neighbours) and returns each role's ROUGE-L with the
    validation scores."""
    chosen = validation_rows(examples)
    ids = {ex.id for exs in chosen.values() for ex in exs}
    rows = [ex for ex in examples if ex.role in TRAJECTORY_ROLES or ex.id in ids]

    def measure(loaded: LoadedModel) -> dict[str, float]:
        summary, scored = evaluate(loaded, rows, progress=False)
        values = {role: summary[role]["rouge_l"] for role in TRAJECTORY_ROLES if role in summary}
        return {**values, **validation_scores(scored, chosen)}

    return measure
