"""The measure of `train.eval_every`: forget/retain ROUGE-L and the validation half's scores."""

import pytest

from mmunlearn.data.splits import is_heldout, is_validation
from mmunlearn.data.world import build_world
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.trajectory import SCORES, half_means, half_rows, rouge_by_role

WORLD = build_world().examples  # the default world: every score has rows in both halves


@pytest.mark.parametrize("validation", [True, False])
def test_each_half_has_its_rows_and_neighbours_are_held_out(validation):
    examples = WORLD
    chosen = half_rows(examples, validation)
    assert set(chosen) == set(SCORES)
    for name, rows in chosen.items():
        assert rows and all(is_validation(ex) == validation for ex in rows)
        assert {ex.role for ex in rows} == {SCORES[name][0]}
    assert all(is_heldout(ex) for name in ("neighbor", "general") for ex in chosen[name])
    other = half_rows(examples, not validation)
    assert not {ex.id for exs in chosen.values() for ex in exs} & {
        ex.id for exs in other.values() for ex in exs
    }


def test_the_measure_returns_each_role_and_the_validation_means(examples, loaded):
    values = rouge_by_role(examples)(loaded)
    assert set(values) == {"forget", "retain", "val_forget", "val_retain", "val_neighbor"}
    chosen = half_rows(examples, True, ("forget", "retain", "neighbor"))
    _, rows = evaluate(loaded, [ex for exs in chosen.values() for ex in exs], progress=False)
    for name, value in half_means(rows, chosen).items():
        assert values[f"val_{name}"] == pytest.approx(value)
