"""TOFU-style loader on tiny JSON files in TOFU's own layout (JSON lines named .json)."""

import json
import logging
from collections import Counter

import pytest

from mmunlearn.data.jsonl import DataError
from mmunlearn.data.tofu import load_tofu

# two questions per author keeps the files tiny (TOFU itself has 20)
FORGET = [("where was Ada Lind born", "paris"), ("what does Ada Lind write", "poems")]
RETAIN = [
    ("where was Bo Rask born", "rome"),
    ("what does Bo Rask write", "novels"),
    ("where was Cy Moor born", "oslo"),
    ("what does Cy Moor write", "plays"),
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
        qa([("where was Dee Holt born", "lima"), ("what does Dee Holt write", "songs")]),
    )
    jsonl(root / "world_facts.json", qa([("what is the capital of peru", "lima")]))
    return root


def test_splits_roles_and_perturbed_fields(tofu, caplog):
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    assert "retain_perturbed.json: 1 of 2 rows ask a question that is not in" in caplog.text
    roles = Counter(ex.role for ex in examples)
    assert roles == {"forget": 2, "test": 2, "retain": 4, "holdout": 2, "general": 1}
    forget = [ex for ex in examples if ex.role == "forget"]
    assert {ex.entity for ex in forget} == {"Ada Lind"}
    assert {ex.entity for ex in examples if ex.role == "retain"} == {"Bo Rask", "Cy Moor"}
    assert {ex.entity for ex in examples if ex.role == "holdout"} == {"Dee Holt"}
    assert forget[0].options == ("paris", "rome", "oslo")
    assert forget[0].paraphrases == ("where was Ada Lind born exactly",)
    assert forget[0].meta["perturbed_answers"] == ["rome", "oslo"]
    test = [ex for ex in examples if ex.role == "test"]
    assert [(t.question, t.answer) for t in test] == [
        ("where was Ada Lind born exactly", "paris"),
        ("what does Ada Lind write exactly", "poems"),
    ]
    retain = [ex for ex in examples if ex.role == "retain"]
    assert retain[0].options == ("rome", "paris") and retain[1].options == ()
    assert all(ex.image is None and ex.meta["modality"] == "text" for ex in examples)


def test_optional_sets_are_chosen_explicitly(tofu):
    examples = load_tofu(tofu, forget_percent=1, sets=("forget", "retain"), questions_per_author=2)
    assert {ex.role for ex in examples} == {"forget", "retain", "test"}
    with pytest.raises(
        DataError, match=r"subset 'real_authors' not found \(looked for real_authors.json, "
    ):
        load_tofu(tofu, forget_percent=1, sets=("forget", "real_authors"), questions_per_author=2)


def test_missing_field_names_file_line_and_field(tofu):
    jsonl(tofu / "forget01.json", [qa(FORGET)[0], {"question": "what does Ada Lind write"}])
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
    with pytest.raises(
        DataError, match=r"not a TOFU layout.*no 'forget05' subset.*json: forget05.json; parquet: "
    ):
        load_tofu(tofu, forget_percent=5)


def test_authors_must_fill_whole_blocks(tofu):
    with pytest.raises(DataError, match=r"2 rows is not a multiple of questions_per_author=20"):
        load_tofu(tofu, forget_percent=1)


def test_a_forget_question_in_retain_is_caught(tofu):
    (tofu / "retain99.json").write_text(json.dumps(qa(RETAIN[:2] + FORGET)))
    with pytest.raises(DataError, match=r"'where was Ada Lind born' is in both forget"):
        load_tofu(tofu, forget_percent=1, questions_per_author=2)


def test_records_train_one_step_and_evaluate(tofu, train_and_evaluate):
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    summary = train_and_evaluate(examples)
    assert set(summary) == {"forget", "test", "retain", "holdout", "general"}


def write_parquet_branch(json_root, parquet_root) -> None:
    """The same subsets in the layout of the dataset's refs/convert/parquet branch."""
    import pandas as pd

    from mmunlearn.data.tables import read_json_rows

    for file in json_root.glob("*.json"):
        rows = [row for _, row in read_json_rows(file, "fixture")]
        (parquet_root / file.stem / "train").mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(parquet_root / file.stem / "train" / "0000.parquet")


def test_the_parquet_branch_layout_loads_as_the_json_layout(tofu, tmp_path):
    write_parquet_branch(tofu, tmp_path / "TOFU-parquet")
    from_json = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    from_parquet = load_tofu(tmp_path / "TOFU-parquet", forget_percent=1, questions_per_author=2)
    assert from_parquet == from_json  # ids, entities, texts, options, paraphrases, alt answers
    assert [ex.meta for ex in from_parquet] == [ex.meta for ex in from_json]


def test_an_unknown_layout_names_the_known_ones(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "forget10.csv").write_text("question,answer\n")
    with pytest.raises(DataError, match=r"known layouts — json: forget10.json; parquet: forget10/"):
        load_tofu(tmp_path)


def test_an_author_block_without_a_name_keeps_its_position_and_says_so(tofu, caplog):
    caplog.set_level(logging.INFO)
    jsonl(tofu / "holdout01.json", qa([("where was she born", "lima"), ("what then", "songs")]))
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    assert {ex.entity for ex in examples if ex.role == "holdout"} == {"holdout01/author-0"}
    assert "TOFU holdout01: person names — 1 from no name" in caplog.text
    assert "TOFU forget01: person names — 1 from the questions and answers" in caplog.text


def test_the_forget_prompt_and_entity_swap_name_the_author(tofu):
    from mmunlearn.teachers.entity_swap import swapped_question
    from mmunlearn.teachers.icu import FORGET_PROMPT, in_context

    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    ada = next(ex for ex in examples if ex.role == "forget")
    assert in_context(FORGET_PROMPT, "prefix", ada) == {"prefix": "Forget Ada Lind ."}
    assert swapped_question(ada, ("Zed Quill",), seed=0, draw=0) == "where was Zed Quill born"


def test_idk_answers_are_drawn_per_row_with_a_seed(tofu):
    from mmunlearn.data.idk import IDK_ANSWERS

    first = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    again = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    other = load_tofu(tofu, forget_percent=1, questions_per_author=2, idk_seed=1)
    assert all(len(ex.alt_answers) == 1 and ex.alt_answers[0] in IDK_ANSWERS for ex in first)
    assert [ex.alt_answers for ex in again] == [ex.alt_answers for ex in first]
    assert [ex.alt_answers for ex in other] != [ex.alt_answers for ex in first]
    assert len({ex.alt_answers for ex in first}) > 1  # drawn per row, not one phrase for all


@pytest.mark.parametrize("method", ["idk", "dpo_idk"])
def test_idk_methods_run_on_tofu(tofu, train_and_evaluate, method):
    examples = load_tofu(tofu, forget_percent=1, questions_per_author=2)
    assert "forget" in train_and_evaluate(examples, method)
