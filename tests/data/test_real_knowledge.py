"""data/real_knowledge: the Who's-Harry-Potter-style set is valid project data and its corpus and
anchored terms fit the forget set."""

import json
from pathlib import Path

import pytest

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.splits import check_unlearning_data

FOLDER = Path(__file__).resolve().parents[2] / "data" / "real_knowledge"
ROLES = ("forget", "retain", "neighbor", "general")


@pytest.fixture(scope="module")
def examples():
    return load_examples(FOLDER)


def test_every_role_file_is_present_non_empty_and_holds_only_its_role(examples):
    per_file = {}
    for role in ROLES:
        rows = load_examples(FOLDER / f"{role}.jsonl")
        assert rows, f"{role}.jsonl is empty"
        assert {ex.role for ex in rows} == {role}
        per_file[role] = len(rows)
    # the folder is exactly the four top-level files: corpus/ and anchors/ are not read
    assert sorted(p.name for p in FOLDER.glob("*.jsonl")) == sorted(f"{r}.jsonl" for r in ROLES)
    assert len(examples) == sum(per_file.values())


def test_ids_and_questions_are_unique(examples):
    assert len({ex.id for ex in examples}) == len(examples)
    questions = [q.lower() for ex in examples for q in (ex.question, *ex.paraphrases)]
    assert len(set(questions)) == len(questions)


def test_every_row_has_four_options_holding_the_answer(examples):
    for ex in examples:
        assert ex.options, ex.id
        assert len(ex.options) == 4 and len(set(ex.options)) == 4, ex.id
        assert ex.answer in ex.options, ex.id


def test_rows_are_text_only_with_a_paraphrase_and_meta(examples):
    for ex in examples:
        assert ex.image is None and ex.modality == "text", ex.id
        assert len(ex.paraphrases) == 1 and ex.alt_answers, ex.id
        assert ex.meta["modality"] == "text" and ex.meta["subject"] and ex.meta["fact"], ex.id
        assert len(ex.answer.split()) <= 5, ex.id
        if ex.role == "neighbor":
            assert ex.meta["relation"] == "indirect", ex.id


def test_forget_entities_are_not_kept_anywhere_else(examples):
    forgotten = {ex.entity for ex in examples if ex.role == "forget"}
    assert forgotten == {"Harry Potter"}
    assert not forgotten & {ex.entity for ex in examples if ex.role != "forget"}
    check_unlearning_data(examples, str(FOLDER))


def test_corpus_is_a_few_pages():
    corpus = (FOLDER / "corpus" / "harry_potter.txt").read_text(encoding="utf-8")
    assert len(corpus.split()) >= 1200


def test_anchors_map_terms_of_the_corpus_or_forget_questions_to_generic_ones(examples):
    anchors = json.loads((FOLDER / "anchors" / "harry_potter.json").read_text(encoding="utf-8"))
    assert isinstance(anchors, dict) and len(anchors) >= 30
    corpus = (FOLDER / "corpus" / "harry_potter.txt").read_text(encoding="utf-8")
    forget_text = " ".join(ex.question for ex in examples if ex.role == "forget")
    for term, generic in anchors.items():
        assert isinstance(term, str) and isinstance(generic, str) and term and generic
        assert term != generic
        assert term in corpus or term in forget_text, term
