"""Benchmarks' own scoring rules (`evaluation.protocols`) and the suite metrics that apply them:
MLLMU-Bench's lettered classification, cloze containment and generation-only ROUGE; TOFU's
truth ratio with the paraphrased answer and its model utility."""

import math

import pytest

from mmunlearn.data.example import Example
from mmunlearn.evaluation.protocols import (
    LETTER_INSTRUCTION,
    contains_answer,
    first_letter,
    letter_prompt,
    normalised_probability,
    tofu_model_utility,
)
from mmunlearn.evaluation.suite import EvalModel, EvalSettings, Suite
from mmunlearn.testing import tiny_causal_lm


def test_letter_prompt_lists_solved_examples_then_the_question():
    prompt = letter_prompt(
        "what is x", ("red", "blue"), ("A", "B"), shots=[("what is y", ("sun", "moon"), "B")]
    )
    assert prompt == (
        "Question: what is y\nA: sun\nB: moon\nCorrect Answer: B\n"
        f"what is x\nA: red\nB: blue\n{LETTER_INSTRUCTION}"
    )


def test_the_first_letter_of_the_reply_is_the_answer():
    assert first_letter(" b) blue", "ABCD") == "B"
    assert first_letter("The answer is B", "ABCD") is None  # 'T' is no option: wrong
    assert first_letter("", "ABCD") is None


def test_cloze_is_correct_when_the_reply_contains_the_ground_truth():
    assert contains_answer("She works as a Pilot.", "pilot")
    assert not contains_answer("a pil", "pilot")


def test_tofu_probability_on_real_authors_is_normalised_over_the_options():
    # length-normalised probabilities 0.5 (answer), 0.25 and 0.25: 0.5 / 1.0
    value = normalised_probability(math.log(0.5), [math.log(0.25), math.log(0.25)])
    assert value == pytest.approx(0.5)


def test_tofu_model_utility_is_the_harmonic_mean_of_nine_numbers():
    sets, stats = (
        ("retain", "real_authors", "world_facts"),
        ("probability", "rouge_l_recall", "truth_ratio"),
    )
    values = {(s, stat): 0.5 for s in sets for stat in stats}
    values[("world_facts", "truth_ratio")] = 0.25
    assert tofu_model_utility(values) == pytest.approx(9 / (8 * 2 + 4))  # by hand: 0.45
    del values[("retain", "probability")]
    with pytest.raises(KeyError, match="retain/probability"):
        tofu_model_utility(values)


def qa(i, role, question, answer, **meta):
    """A record as the TOFU loader writes it: options = the answer and its perturbed answers."""
    options = (answer, *meta.get("perturbed_answers", ()))
    return Example(
        f"q{i}",
        f"Person {i % 3}",
        role,
        question,
        answer,
        options=options,
        meta={"kind": "qa", **meta},
    )


TOFU_LIKE = [
    qa(
        0,
        "forget",
        "where was ada born",
        "paris",
        paraphrased_answer="in paris",
        perturbed_answers=["rome", "oslo"],
    ),
    qa(
        1,
        "retain",
        "where was bo born",
        "rome",
        paraphrased_answer="in rome",
        perturbed_answers=["paris", "lima"],
    ),
    qa(2, "retain", "what does bo write", "poems", perturbed_answers=["plays"]),
    qa(
        3,
        "general",
        "who wrote hamlet",
        "shakespeare",
        set="real_authors",
        perturbed_answers=["dickens", "austen"],
    ),
    qa(4, "general", "capital of peru", "lima", set="world_facts", perturbed_answers=["quito"]),
]


@pytest.fixture()
def tofu_model(tmp_path):
    path = tmp_path / "model"
    tiny_causal_lm(TOFU_LIKE).save(path)
    return path


def test_tofu_metric_reports_the_nine_numbers_and_their_harmonic_mean(tofu_model, tmp_path):
    oracle = EvalModel("oracle", tofu_model)
    settings = EvalSettings(max_new_tokens=3)
    suite = Suite(TOFU_LIKE, tmp_path / "eval", settings, oracle=oracle, progress=False)
    metrics = ["generation", "mcq", "truth_ratio", "tofu", "tofu_forget_quality"]
    results = suite.run(EvalModel("m", tofu_model), metrics)
    # the oracle has the same weights: its forget truth ratios are the model's, p = 1
    assert results["tofu_forget_quality"]["p_value"] == pytest.approx(1.0)
    table = results["tofu"]["sets"]
    assert set(table) == {"forget", "retain", "real_authors", "world_facts"}
    for name in ("retain", "real_authors", "world_facts"):
        assert set(table[name]) >= {"probability", "rouge_l_recall", "truth_ratio"}
        assert all(0.0 <= table[name][k] <= 1.0 for k in ("probability", "truth_ratio"))
    nine = [
        table[s][k]
        for s in ("retain", "real_authors", "world_facts")
        for k in ("probability", "rouge_l_recall", "truth_ratio")
    ]
    expected = 0.0 if min(nine) <= 0 else len(nine) / sum(1 / v for v in nine)
    assert results["tofu"]["model_utility"] == pytest.approx(expected)
    # forget's truth ratio is min(R, 1/R): at most 1
    assert 0.0 < table["forget"]["truth_ratio"] <= 1.0
    # the truth ratio metric divides by the paraphrased answer where the data has one
    assert results["truth_ratio"]["paraphrased_answer"].startswith(
        "meta.paraphrased_answer on 2 of"
    )


MLLMU_LIKE = [
    Example(
        "g0", "Ann Vale", "forget", "what does Ann Vale do", "pilot", meta={"kind": "generation"}
    ),
    Example(
        "c0",
        "Ann Vale",
        "forget",
        "Ann Vale works as a __",
        "pilot",
        meta={"kind": "cloze", "cloze": "Ann Vale works as a [Blank]"},
    ),
    *[
        Example(
            f"m{i}",
            name,
            "forget",
            f"what is the job of {name}",
            job,
            options=("baker", "pilot", "judge", "singer"),
            meta={
                "kind": "classification",
                "answer_letter": letter,
                "option_letters": ["A", "B", "C", "D"],
            },
        )
        for i, (name, job, letter) in enumerate(
            [("Ann Vale", "pilot", "B"), ("Bo Kerr", "baker", "A"), ("Cy Dunn", "judge", "C")]
        )
    ],
    Example(
        "r0", "Bo Kerr", "retain", "what does Bo Kerr do", "baker", meta={"kind": "generation"}
    ),
]


def test_mllmu_kinds_go_to_their_own_metrics(tmp_path, monkeypatch):
    import mmunlearn.evaluation.suite_metrics as metrics

    path = tmp_path / "model"
    tiny_causal_lm(MLLMU_LIKE).save(path)
    asked: list[list[str]] = []
    generate = metrics.generate_answers

    def recording(loaded, examples, **kwargs):
        asked.append([ex.question for ex in examples])
        return generate(loaded, examples, **kwargs)

    monkeypatch.setattr(metrics, "generate_answers", recording)
    suite = Suite(MLLMU_LIKE, tmp_path / "eval", EvalSettings(max_new_tokens=2), progress=False)
    results = suite.run(EvalModel("m", path), ["generation", "cloze", "mcq_letter"])
    generation, cloze, letters = asked
    assert generation == ["what does Ann Vale do", "what does Bo Kerr do"]
    assert results["generation"]["n_not_generation"] == 4
    assert cloze == ["Ann Vale works as a [Blank]"]
    assert {"cloze_acc", "cloze_contains"} <= set(results["cloze"]["summary"]["forget"])
    # the split's first two people are the solved examples and are not scored; Cy's question
    # shows their items, then his own, lettered
    assert results["mcq_letter"]["shot_people"] == ["forget/Ann Vale", "forget/Bo Kerr"]
    assert letters == [
        letter_prompt(
            "what is the job of Cy Dunn",
            ("baker", "pilot", "judge", "singer"),
            "ABCD",
            shots=[
                ("what is the job of Ann Vale", ("baker", "pilot", "judge", "singer"), "B"),
                ("what is the job of Bo Kerr", ("baker", "pilot", "judge", "singer"), "A"),
            ],
        )
    ]
    rows = results["mcq_letter"]["rows"]
    assert [r["letter_correct"] for r in rows] == [r["letter"] == r["answer_letter"] for r in rows]
    assert results["mcq_letter"]["summary"]["forget"]["n"] == 1


def test_clear_real_faces_and_world_stand_for_tofus_real_authors_and_world_facts(tmp_path):
    import dataclasses

    renamed = {"real_authors": "real_faces", "world_facts": "real_world"}
    clear_like = [
        dataclasses.replace(ex, meta={**ex.meta, "set": renamed.get(ex.meta.get("set"))})
        for ex in TOFU_LIKE
    ]
    path = tmp_path / "model"
    tiny_causal_lm(clear_like).save(path)
    suite = Suite(clear_like, tmp_path / "eval", EvalSettings(max_new_tokens=3), progress=False)
    result = suite.run(EvalModel("m", path), ["generation", "tofu"])["tofu"]
    assert set(result["sets"]) == {"forget", "retain", "real_faces", "real_world"}
    assert isinstance(result["model_utility"], float)  # all nine numbers found
