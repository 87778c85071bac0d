"""What a model already knows: the filter for unlearning knowledge from pretraining.

Who's Harry Potter's setting — forget a subject the model learned in pretraining, keep the
others — needs questions the model answers before unlearning: a 135M model knows few facts of
any subject, and forgetting a fact it never knew measures nothing. `find_known` asks every
question twice over, and `write_known` keeps what passed each test in its own folder:
- `generation/`: the greedy answer contains the reference (fact accuracy's rule);
- `likelihood/`: the reference is the likeliest of the row's options (the MCQ metric's rule).
Every dropped row is recorded with its prediction and the test it failed (`dropped.jsonl`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import save_examples
from mmunlearn.data.splits import group_by_role
from mmunlearn.evaluation.generate import DEFAULT_MAX_NEW_TOKENS, generate_answers
from mmunlearn.evaluation.likelihood import pick_option
from mmunlearn.evaluation.metrics import fact_correct
from mmunlearn.evaluation.scoring import Query, score_answers
from mmunlearn.io import atomic_write_json, atomic_write_text, json_line
from mmunlearn.models.loading import LoadedModel

TESTS = ("generation", "likelihood")


@dataclass(frozen=True)
class Known:
    """One question checked: the greedy answer, and the option the model ranks first."""

    example: Example
    prediction: str
    chosen: str | None  # None: the row has fewer than two options (or not its answer among them)

    @property
    def by_generation(self) -> bool:
        return fact_correct(self.prediction, self.example.answer)

    @property
    def by_likelihood(self) -> bool:
        return self.chosen is not None and self.chosen == self.example.answer

    def passed(self, test: str) -> bool:
        return self.by_generation if test == "generation" else self.by_likelihood


def find_known(
    loaded: LoadedModel,
    examples: Sequence[Example],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 32,
    progress: bool = True,
) -> list[Known]:
    """Each example with the model's greedy answer and likeliest option."""
    if not examples:
        raise ValueError("find_known: no examples to check")
    predictions = generate_answers(
        loaded, examples, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress
    )
    chosen = chosen_options(loaded, examples, batch_size, progress)
    return [
        Known(ex, pred, chosen.get(ex.id)) for ex, pred in zip(examples, predictions, strict=True)
    ]


def chosen_options(
    loaded: LoadedModel, examples: Sequence[Example], batch_size: int = 32, progress: bool = True
) -> dict[str, str]:
    """Example id → the option the model ranks first (`likelihood.pick_option`), for every
    example with at least two options that include its answer."""
    with_options = [ex for ex in examples if len(ex.options) >= 2 and ex.answer in ex.options]
    queries = [Query(ex, option) for ex in with_options for option in ex.options]
    scores = iter(score_answers(loaded, queries, batch_size, progress))
    chosen = {}
    for ex in with_options:
        means = [next(scores).mean_logprob for _ in ex.options]
        chosen[ex.id] = ex.options[pick_option(means)]
    return chosen


def write_known(checks: Sequence[Known], output_dir: str | Path) -> dict[str, Any]:
    """Write `<test>/<role>.jsonl` (rows that passed), `dropped.jsonl` and `known.json`
    (counts per test, role and entity); returns the counts."""
    output_dir = Path(output_dir)
    summary: dict[str, Any] = {"asked": _counts([k.example for k in checks])}
    for test in TESTS:
        kept = [k.example for k in checks if k.passed(test)]
        for role, rows in group_by_role(kept).items():
            save_examples(output_dir / test / f"{role}.jsonl", rows, bring_images=True)
        summary[test] = _counts(kept)
    dropped = [
        {
            "id": k.example.id,
            "role": k.example.role,
            "entity": k.example.entity,
            "question": k.example.question,
            "answer": k.example.answer,
            "prediction": k.prediction,
            "chosen_option": k.chosen,
            "failed": [test for test in TESTS if not k.passed(test)],
        }
        for k in checks
        if not all(k.passed(test) for test in TESTS)
    ]
    lines = "".join(json_line(row) for row in dropped)
    atomic_write_text(output_dir / "dropped.jsonl", lines)
    atomic_write_json(output_dir / "known.json", summary)
    return summary


def _counts(examples: Sequence[Example]) -> dict[str, Any]:
    roles = Counter(ex.role for ex in examples)
    entities = Counter(f"{ex.role}/{ex.entity}" for ex in examples)
    return {"total": len(examples), "by_role": dict(roles), "by_entity": dict(entities)}


def render_known(summary: dict[str, Any]) -> str:
    """A markdown table: rows asked and kept by each test, per role."""
    roles = list(summary["asked"]["by_role"])
    lines = ["| role | asked | known by generation | known by likelihood |", "|---|---|---|---|"]
    for role in roles:
        cells = [summary[t]["by_role"].get(role, 0) for t in ("asked", *TESTS)]
        lines.append(f"| {role} | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)
