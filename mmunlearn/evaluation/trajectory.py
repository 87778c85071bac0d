"""What `train.eval_every` records during an unlearning run: forget and retain ROUGE-L."""

from __future__ import annotations

from mmunlearn.data.example import Example
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.models.loading import LoadedModel
from mmunlearn.training.trajectory import Measure

TRAJECTORY_ROLES = ("forget", "retain")


def rouge_by_role(examples: list[Example]) -> Measure:
    """A `Measure` that greedy-evaluates the student on the forget and retain rows of
    `examples` and returns each role's ROUGE-L."""
    rows = [ex for ex in examples if ex.role in TRAJECTORY_ROLES]

    def measure(loaded: LoadedModel) -> dict[str, float]:
        summary, _ = evaluate(loaded, rows, progress=False)
        return {role: summary[role]["rouge_l"] for role in summary}

    return measure
