"""SemEval-2025 Task 4's score as the organisers' `evaluate_generations.py` computes it, on
hand-made inputs whose scores are worked out by hand in the comments."""

import math

import pytest
import torch

from mmunlearn.data.example import Example
from mmunlearn.evaluation.semeval import (
    auc,
    document_losses,
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


def test_knowledge_score_strips_and_lowercases_only():
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / 3)
    assert harmonic_mean([0.9, 0.0, 1.0]) == 0.0
    assert exact_match("  The City of Deadesius\n", "the city of deadesius") == 1.0
    assert exact_match("The City of Deadesius.", "the city of deadesius") == 0.0  # the period
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


def hand_case():
    """Every subtask alike. Sentence completions of "alpha beta gamma delta": forget replies
    "alpha beta" (ROUGE-L recall 2/4 = 0.5, entering as 1 − 0.5 = 0.5; its F-measure would be
    0.667), retain replies "alpha beta gamma delta extra" (recall 1.0; F-measure 0.889). Questions
    answered "42": forget replies "The answer is 42" (knowledge 0, entering as 1), retain " 42\\n"
    (knowledge 1 after strip)."""
    examples, predictions = [], []
    for task in ("Task1", "Task2", "Task3"):
        examples += [
            item(task, "forget", "sc", "alpha beta gamma delta"),
            item(task, "forget", "qa", "42"),
            item(task, "retain", "sc", "alpha beta gamma delta"),
            item(task, "retain", "qa", "42"),
        ]
        predictions += ["alpha beta", "The answer is 42", "alpha beta gamma delta extra", " 42\n"]
    return examples, predictions


def test_the_organisers_score_on_a_hand_made_case():
    examples, predictions = hand_case()
    # members' losses 1 and 3, nonmembers' 2 and 4; lower loss → member: of the 4 pairs the
    # member is lower in (1,2), (1,4), (3,4), not (3,2): AUC 3/4, MIA score 1 − 2·0.25 = 0.5
    out = semeval_scores(examples, predictions, [1.0, 3.0], [2.0, 4.0], mmlu_average=0.5)
    task1 = out["components"]["Task1"]
    assert task1 == {
        "forget_regurgitation_score": 0.5,
        "forget_knowledge_score": 1.0,
        "retain_regurgitation_score": 1.0,
        "retain_knowledge_score": 1.0,
    }
    # twelve numbers, (0.5, 1, 1, 1) three times: 12 / (3 · (2 + 1 + 1 + 1)) = 0.8
    assert out["harmonic_mean"] == pytest.approx(0.8)
    assert out["mia"]["auc"] == pytest.approx(0.75) and out["mia"]["mia_score"] == 0.5
    # final score: the mean of 0.8, MMLU 0.5 and MIA 0.5 = 0.6
    assert out["aggregate"] == pytest.approx(0.6)
    assert out["mmlu"] == {"average": 0.5, "below_threshold": False}
    assert semeval_scores(examples, predictions, [1.0], [2.0], 0.3)["mmlu"]["below_threshold"]


def test_without_mmlu_the_final_score_is_missing_and_named():
    examples, predictions = hand_case()
    out = semeval_scores(examples, predictions, [1.0, 3.0], [2.0, 4.0])
    assert out["mmlu"]["missing"] is True and "offline" in out["mmlu"]["reason"]
    assert out["aggregate"]["missing"] is True
    assert out["aggregate_without_mmlu"] == pytest.approx((0.8 + 0.5) / 2)


def test_a_cell_without_items_makes_the_harmonic_mean_missing():
    out = semeval_scores([item("Task1", "forget", "qa", "x")], ["x"], [1.0], [2.0])
    assert out["components"]["Task1"]["forget_knowledge_score"] == 0.0
    assert out["components"]["Task2"]["retain_knowledge_score"]["missing"] is True
    assert out["harmonic_mean"]["missing"] is True


def test_document_loss_is_the_mean_next_token_nll_of_the_whole_text(examples):
    from mmunlearn.testing import tiny_causal_lm

    text = [ex for ex in examples if ex.image is None][:3]
    loaded = tiny_causal_lm(text, "gpt2")
    documents = [f"{ex.question} {ex.answer}" for ex in text]
    losses = document_losses(loaded, documents)
    for document, loss in zip(documents, losses, strict=True):
        ids = loaded.tokenizer(document, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(loaded.model(input_ids=ids).logits.double(), -1)
        picked = logprobs[0, :-1].gather(-1, ids[0, 1:, None]).squeeze(-1)  # token t | < t
        assert loss == pytest.approx(-picked.mean().item(), abs=1e-5)
        assert math.isfinite(loss) and loss > 0
