"""scripts/real_knowledge.py: a known row is stable when the base also answers its paraphrase
right, and each model is scored on the stable rows by its answer to the question itself."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from real_knowledge import add_stable, stable_ids  # noqa: E402


def row(id_, role, correct):
    return {"id": id_, "role": role, "fact_correct": correct}


def test_stable_rows_are_those_whose_paraphrase_the_base_answers_right():
    base = [row("a", "retain", True), row("b", "retain", True), row("c", "forget", True)]
    base += [row("a", "retain", True), row("b", "retain", False), row("c", "forget", True)]
    assert stable_ids(base) == {"a", "c"}


def test_stable_accuracy_scores_the_question_not_its_paraphrase():
    model = [row("a", "retain", False), row("b", "retain", True), row("c", "forget", True)]
    model += [row("c", "forget", False)]  # the paraphrase of c, wrong: not counted
    result = {}
    add_stable(result, model, {"a", "c"})
    assert result == {
        "retain_stable": {"fact_acc": 0.0, "n": 1},
        "forget_stable": {"fact_acc": 1.0, "n": 1},
    }
