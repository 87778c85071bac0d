"""SemEval-2025 Task 4 score components on hand-made inputs."""

import math

import pytest

from mmunlearn.data.example import Example
from mmunlearn.evaluation.semeval import (
    answer_losses,
    auc,
    exact_match,
    harmonic_mean,
    mia_score,
    semeval_scores,
)


def test_auc_by_rank_statistic():
    assert auc([3.0, 4.0], [1.0, 2.0]) == 1.0  # separable
    assert auc([1.0, 2.0], [1.0, 2.0]) == 0.5  # identical
    assert auc([1.0, 2.0], [3.0, 4.0]) == 0.0  # flipped
    assert auc([2.0], [1.0, 2.0, 3.0]) == pytest.approx((1 + 0.5 + 0) / 3)  # ties count half
    assert [mia_score(a) for a in (1.0, 0.5, 0.0)] == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="members and nonmembers"):
        auc([], [1.0])


def test_harmonic_mean_and_exact_match():
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / 3)
    assert harmonic_mean([0.9, 0.0, 1.0]) == 0.0
    assert exact_match("The City of Deadesius.", "the city of deadesius") == 1.0
    assert exact_match("Deadesius city", "the city of deadesius") == 0.0


def item(task, role, kind, answer):
    return Example(
        f"{task}-{role}-{kind}",
        f"doc-{task}",
        role,
        "q?",
        answer,
        meta={"task": task, "kind": kind},
    )


def test_components_forget_as_one_minus_score_and_mmlu_missing():
    examples, predictions = [], []
    for task in ("Task1", "Task2", "Task3"):
        for role in ("forget", "retain"):
            examples += [
                item(task, role, "sc", "alpha beta gamma delta"),
                item(task, role, "qa", "42"),
            ]
            predictions += ["alpha beta", "42" if role == "retain" else "41"]
    out = semeval_scores(
        examples, predictions, member_losses=[0.1, 0.2], nonmember_losses=[2.0, 3.0]
    )
    task1 = out["components"]["Task1"]
    rouge_half = 2 * 0.5 * 1.0 / 1.5  # precision 1, recall 1/2
    assert task1["forget_regurgitation_rouge_l"] == pytest.approx(1 - rouge_half)
    assert task1["forget_exact_match"] == 1.0 and task1["retain_exact_match"] == 1.0
    assert task1["retain_regurgitation_rouge_l"] == pytest.approx(rouge_half)
    expected = harmonic_mean([1 - rouge_half, 1.0, rouge_half, 1.0] * 3)
    assert out["harmonic_mean"] == pytest.approx(expected)
    assert out["mia"]["auc"] == 1.0 and out["mia"]["mia_score"] == 0.0
    assert out["mmlu"]["missing"] is True and "offline" in out["mmlu"]["reason"]
    assert out["aggregate"]["missing"] is True
    assert out["aggregate_without_mmlu"] == pytest.approx((expected + 0.0) / 2)


def test_a_cell_without_items_makes_the_harmonic_mean_missing():
    out = semeval_scores([item("Task1", "forget", "qa", "x")], ["x"], [1.0], [2.0])
    assert out["components"]["Task1"]["forget_exact_match"] == 0.0
    assert out["components"]["Task2"]["retain_exact_match"]["missing"] is True
    assert out["harmonic_mean"]["missing"] is True


def test_answer_losses_are_one_finite_positive_value_per_example(examples):
    from mmunlearn.testing import tiny_causal_lm

    text = [ex for ex in examples if ex.image is None][:5]
    loaded = tiny_causal_lm(text, "gpt2")
    losses = answer_losses(loaded, text, batch_size=2)
    assert len(losses) == 5 and all(math.isfinite(x) and x > 0 for x in losses)
