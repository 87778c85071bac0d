"""Evaluate a model on every split of a dataset: per-question rows and a summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.metrics import score_predictions, summarise
from mmunlearn.evaluation.report import SPLITS
from mmunlearn.models.loading import LoadedModel

EVAL_ROLES = SPLITS


def evaluate(
    loaded: LoadedModel,
    examples: Sequence[Example],
    roles: Sequence[str] = EVAL_ROLES,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """ROUGE-L and fact accuracy per split (and per modality); returns (summary, rows)."""
    chosen = [ex for ex in examples if ex.role in roles]
    if not chosen:
        raise ValueError(f"nothing to evaluate: no examples with a role in {tuple(roles)}")
    predictions = generate_answers(loaded, chosen, batch_size=batch_size, progress=progress)
    rows = score_predictions(chosen, predictions)
    return summarise(rows), rows
