"""TOFU-style loader on tiny JSON files in TOFU's own layout (JSON lines named .json)."""

import json
from collections import Counter

import pytest

from mmunlearn.data.jsonl import DataError
from mmunlearn.data.tofu import load_tofu

# two questions per author keeps the files tiny (TOFU itself has 20)
FORGET = [("where was ada born", "paris"), ("what does ada write", "poems")]
RETAIN = [
    ("where was bob born", "rome"),
    ("what does bob write", "novels"),
    ("where was cy born", "oslo"),
    ("what does cy write", "plays"),
]


def jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def qa(pairs):
    return [{"question": q, "answer": a} for q, a in pairs]


@pytest.fixture()
def tofu(tmp_path):
    root = tmp_path / "TOFU"
    root.mkdir()
    jsonl(root / "forget01.json", qa(FORGET))
    (root / "retain99.json").write_text(json.dumps(qa(RETAIN)))  # a JSON list is read too
    perturbed = [
        {
            "question": q,
            "answer": a,
            "paraphrased_question": f"{q} exactly",
            "paraphrased_answer": a,
            "perturbed_answer": ["rome", "oslo"],
        }
        for q, a in FORGET
    ]
    jsonl(root / "forget01_perturbed.json", perturbed)
    jsonl(
        root / "retain_perturbed.json",
        [
            {**qa(RETAIN)[0], "paraphrased_answer": "rome", "perturbed_answer": ["paris"]},
            {"question": "a question of retain90 only", "answer": "x", "perturbed_answer": ["y"]},
        ],
    )
    jsonl(
        root / "holdout01.json",
        qa([("where was dee born", "lima"), ("what does dee write", "songs")]),
    )
    jsonl(root / "world_facts.json", qa([("what is the capital of peru", "lima")]))
    return root


def test_splits_roles_and_perturbed_fields(tofu, caplog):
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    assert "retain_perturbed.json: 1 of 2 rows ask a question that is not in" in caplog.text
    roles = Counter(ex.role for ex in examples)
    assert roles == {"forget": 2, "test": 2, "retain": 4, "holdout": 2, "general": 1}
    forget = [ex for ex in examples if ex.role == "forget"]
    assert {ex.entity for ex in forget} == {"forget01/author-0"}
    assert {ex.entity for ex in examples if ex.role == "retain"} == {
        "retain99/author-0",
        "retain99/author-1",
    }
    assert forget[0].options == ("paris", "rome", "oslo")
    assert forget[0].paraphrases == ("where was ada born exactly",)
    assert forget[0].meta["perturbed_answers"] == ["rome", "oslo"]
    test = [ex for ex in examples if ex.role == "test"]
    assert [(t.question, t.answer) for t in test] == [
        ("where was ada born exactly", "paris"),
        ("what does ada write exactly", "poems"),
    ]
    retain = [ex for ex in examples if ex.role == "retain"]
    assert retain[0].options == ("rome", "paris") and retain[1].options == ()
    assert all(ex.image is None and ex.meta["modality"] == "text" for ex in examples)


def test_optional_sets_are_chosen_explicitly(tofu):
    examples = load_tofu(tofu, forget_percent=1, sets=("forget", "retain"), questions_per_author=2)
    assert {ex.role for ex in examples} == {"forget", "retain", "test"}
    with pytest.raises(DataError, match=r"real_authors.json: file not found"):
        load_tofu(tofu, forget_percent=1, sets=("forget", "real_authors"), questions_per_author=2)


def test_missing_field_names_file_line_and_field(tofu):
    jsonl(tofu / "forget01.json", [qa(FORGET)[0], {"question": "what does ada write"}])
    with pytest.raises(DataError, match=r"forget01.json, line 2: missing field 'answer'"):
        load_tofu(tofu, forget_percent=1, questions_per_author=2)


def test_empty_split_and_bad_json_are_errors(tofu):
    (tofu / "retain99.json").write_text("")
    with pytest.raises(DataError, match=r"retain99.json: the split has no rows"):
        load_tofu(tofu, forget_percent=1, questions_per_author=2)
    (tofu / "retain99.json").write_text('{"question": "q", "answer": "a"}\n{"question": \n')
    with pytest.raises(DataError, match=r"retain99.json, line 2: invalid JSON"):
        load_tofu(tofu, forget_percent=1, questions_per_author=2)


def test_unknown_split_names_are_refused(tofu):
    with pytest.raises(ValueError, match=r"forget_percent=3; expected one of \(1, 5, 10\)"):
        load_tofu(tofu, forget_percent=3)
    with pytest.raises(ValueError, match=r"unknown sets \['retian'\]"):
        load_tofu(tofu, forget_percent=1, sets=("forget", "retian"))
    with pytest.raises(DataError, match=r"forget05.json: file not found"):
        load_tofu(tofu, forget_percent=5)


def test_authors_must_fill_whole_blocks(tofu):
    with pytest.raises(DataError, match=r"2 rows is not a multiple of questions_per_author=20"):
        load_tofu(tofu, forget_percent=1)


def test_a_forget_question_in_retain_is_caught(tofu):
    (tofu / "retain99.json").write_text(json.dumps(qa(RETAIN[:2] + FORGET)))
    with pytest.raises(DataError, match=r"'where was ada born' is in both forget"):
        load_tofu(tofu, forget_percent=1, questions_per_author=2)


def test_records_train_one_step_and_evaluate(tofu, train_and_evaluate):
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    summary = train_and_evaluate(examples)
    assert set(summary) == {"forget", "test", "retain", "holdout", "general"}
