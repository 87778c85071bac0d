"""The measure of `train.eval_every`: forget/retain ROUGE-L and the validation half's scores."""

import pytest

from mmunlearn.data.splits import is_heldout, is_validation
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.trajectory import rouge_by_role, validation_rows, validation_scores


def test_validation_rows_are_validation_and_neighbours_held_out(examples):
    chosen = validation_rows(examples)
    assert set(chosen) == {"val_forget", "val_retain", "val_neighbor"}
    for name, rows in chosen.items():
        assert rows and all(is_validation(ex) for ex in rows)
        assert {ex.role for ex in rows} == {name.removeprefix("val_")}
    assert all(is_heldout(ex) for ex in chosen["val_neighbor"])


def test_the_measure_returns_each_role_and_the_validation_means(examples, loaded):
    values = rouge_by_role(examples)(loaded)
    assert set(values) == {"forget", "retain", "val_forget", "val_retain", "val_neighbor"}
    chosen = validation_rows(examples)
    _, rows = evaluate(loaded, [ex for exs in chosen.values() for ex in exs], progress=False)
    for name, value in validation_scores(rows, chosen).items():
        assert values[name] == pytest.approx(value)
