import pytest
from rouge_score import rouge_scorer

from mmunlearn.data.example import Example
from mmunlearn.data.splits import is_heldout
from mmunlearn.evaluation.metrics import (
    cloze_prompt,
    fact_correct,
    rouge_l,
    score_predictions,
    summarise,
)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Talo Verin", "Talo Verin", 1.0),
        ("Paris", "1957", 0.0),
        ("", "1957", 0.0),
        # LCS = 1 token: precision 1/2, recall 1/1, F = 2 * 0.5 * 1 / 1.5.
        ("Talo Verin", "Verin", 2 / 3),
        ("bakers", "baker", 1.0),  # Porter stemmer
        # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4, F = 3/4.
        ("a b c d", "a c d e", 0.75),
        # LCS "born 1957" (2 of 4 predicted, 2 of 2 reference): F = 2 * 0.5 * 1 / 1.5.
        ("born in 1957 exactly", "born 1957", 2 / 3),
    ],
)
def test_rouge_l_hand_checked(prediction, reference, expected):
    assert rouge_l(prediction, reference) == pytest.approx(expected)
    assert isinstance(rouge_l(prediction, reference), float)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("He was born in Lisbon in 1957.", "Lisbon"),
        ("She works as a baker in the old town", "a baker"),
        ("the cat sat on the mat", "the mat sat on the cat"),
        ("a b c d", "a c d e"),
        ("born in 1957 exactly", "born 1957"),
    ],
)
def test_rouge_l_matches_rouge_score(prediction, reference):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    # rouge_score's argument order is (target, prediction).
    assert rouge_l(prediction, reference) == scorer.score(reference, prediction)["rougeL"].fmeasure


def test_rouge_l_equals_rouge_score_on_random_texts():
    """The memoised tokens and own LCS give rouge-score's numbers exactly, repeats included."""
    import random

    words = [
        "born",
        "borne",
        "in",
        "Lisbon",
        "1957",
        "bakers",
        "baker",
        "the",
        "a",
        "Talo",
        "—",
        "",
    ]
    rng = random.Random(0)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for _ in range(500):
        prediction = " ".join(rng.choices(words, k=rng.randint(0, 7)))
        reference = " ".join(rng.choices(words, k=rng.randint(0, 4)))
        expected = scorer.score(reference, prediction)["rougeL"].fmeasure
        assert rouge_l(prediction, reference) == expected, (prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("born in 1957", "1957", True),
        ("1957", "195", False),
        ("Born in New   York.", "new york", True),
        ("Jean-Luc Picard", "Jean Luc", True),
        ("Yorkshire", "York", False),
        ("anything", "", False),
        ("A hexagon has 6 sides.", "six", True),
        ("A square has four sides", "4", True),
        ("It has 16 legs", "six", False),
        ("someone", "one", False),
    ],
)
def test_fact_correct(prediction, reference, expected):
    assert fact_correct(prediction, reference) is expected


def _row(role, modality, rouge, correct, relation=None):
    return {
        "role": role,
        "modality": modality,
        "relation": relation,
        "rouge_l": rouge,
        "fact_correct": correct,
    }


def test_score_predictions_rows():
    examples = [
        Example(
            "f0",
            "Talo Verin",
            "forget",
            "Born when?",
            "1957",
            image="img/talo.png",
            meta={"fact": "birth_year"},
        ),
        Example(
            "n0",
            "Mira Sol",
            "neighbor",
            "Where?",
            "Lisbon",
            meta={"relation": "direct"},
        ),
    ]
    rows = score_predictions(examples, ["born in 1957", "Porto"])
    assert [(r["id"], r["modality"], r["relation"], r["fact"]) for r in rows] == [
        ("f0", "image", None, "birth_year"),
        ("n0", "text", "direct", None),
    ]
    assert [r["fact_correct"] for r in rows] == [True, False]
    assert rows[1]["rouge_l"] == 0.0
    with pytest.raises(ValueError, match="2 examples but 1 predictions"):
        score_predictions(examples, ["x"])


def test_summarise_means_by_split_modality_and_relation():
    rows = [
        _row("forget", "image", 1.0, True),
        _row("forget", "image", 0.5, False),
        _row("forget", "text", 0.0, False),
        _row("retain", "text", 0.8, True),
        _row("neighbor", "image", 1.0, True, "direct"),
        _row("neighbor", "text", 0.0, False, "indirect"),
        _row("neighbor", "text", 0.5, True, "indirect"),
    ]
    summary = summarise(rows)
    assert list(summary) == ["forget", "retain", "neighbor"]  # empty splits absent

    forget = summary["forget"]
    assert forget["rouge_l"] == pytest.approx(0.5)
    assert forget["fact_acc"] == pytest.approx(1 / 3)
    assert forget["n"] == 3
    assert forget["by_modality"]["image"] == {"rouge_l": 0.75, "fact_acc": 0.5, "n": 2}
    assert forget["by_modality"]["text"] == {"rouge_l": 0.0, "fact_acc": 0.0, "n": 1}
    assert "by_relation" not in forget

    assert list(summary["retain"]["by_modality"]) == ["text"]
    assert type(summary["retain"]["rouge_l"]) is float

    neighbor = summary["neighbor"]
    assert neighbor["by_relation"]["direct"] == {
        "rouge_l": 1.0,
        "fact_acc": 1.0,
        "n": 1,
    }
    assert neighbor["by_relation"]["indirect"] == {
        "rouge_l": 0.25,
        "fact_acc": 0.5,
        "n": 2,
    }


def test_summarise_custom_split():
    rows = [_row("forget", "image", 1.0, True), _row("forget", "text", 0.0, False)]
    summary = summarise(rows, split_of=lambda row: f"{row['role']}_{row['modality']}")
    assert set(summary) == {"forget_image", "forget_text"}
    assert summary["forget_text"]["rouge_l"] == 0.0


def test_cloze_prompt_blanks_the_answer_at_the_end():
    text = Example(
        "t",
        "Talo Verin",
        "forget",
        "Where was Talo Verin born?",
        "Dunmere",
        meta={"fact": "birthplace"},
    )
    image = Example(
        "i",
        "Talo Verin",
        "forget",
        "Where was this person born?",
        "Dunmere",
        image="x.png",
        meta={"fact": "birthplace"},
    )
    capital = Example(
        "g",
        "general",
        "general",
        "What is the capital of Velora?",
        "Tamarith",
        meta={"fact": "capital"},
    )
    assert cloze_prompt(text) == "Talo Verin was born in"
    assert cloze_prompt(image) == "This person was born in"
    assert cloze_prompt(capital) == "The capital of Velora is"
    own = Example("o", "e", "forget", "q?", "a", meta={"fact": "birthplace", "cloze": "E is from"})
    assert cloze_prompt(own) == "E is from"  # the data's own sentence wins
    assert cloze_prompt(Example("u", "e", "forget", "q?", "a", meta={"fact": "shoe size"})) is None


def test_summarise_reports_held_out_rows_on_their_own():
    rows = [
        {**_row("neighbor", "text", 1.0, True, "direct"), "heldout": False},
        {**_row("neighbor", "text", 0.0, False, "direct"), "heldout": True},
        {**_row("neighbor", "image", 0.5, True, "indirect"), "heldout": True},
        {**_row("retain", "text", 1.0, True), "heldout": False},
    ]
    summary = summarise(rows)
    assert summary["neighbor"]["heldout"] == {"rouge_l": 0.25, "fact_acc": 0.5, "n": 2}
    assert summary["neighbor"]["rouge_l"] == pytest.approx(0.5)
    assert "heldout" not in summary["retain"]


def test_score_predictions_marks_held_out_rows():
    rows = [
        Example(f"n{i}", "Bob", "neighbor", "Where was Bob born?", "Dunmere") for i in range(12)
    ]
    scored = score_predictions(rows, ["Dunmere"] * len(rows))
    assert [row["heldout"] for row in scored] == [is_heldout(ex) for ex in rows]
    assert len({row["heldout"] for row in scored}) == 2
