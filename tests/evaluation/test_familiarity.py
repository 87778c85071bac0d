from pathlib import Path

import pytest

from mmunlearn.data.example import Example
from mmunlearn.evaluation import familiarity as module
from mmunlearn.evaluation.familiarity import (
    familiarity,
    find_terms,
    load_prompts,
    score_familiarity,
    term_pattern,
)
from mmunlearn.teachers.whp import load_anchors

FOLDER = Path(__file__).resolve().parents[2] / "data" / "real_knowledge"
ANCHORS = {"Harry Potter": "Jon Smith", "Harry": "Jon", "Hogwarts": "Mystic Academy", "Ron": "Tom"}


def test_terms_match_whole_words_case_insensitively_longest_first():
    pattern = term_pattern(ANCHORS)
    assert find_terms("harry potter went to HOGWARTS with Ron.", pattern) == (
        "harry potter",
        "HOGWARTS",
        "Ron",
    )
    # the possessive is the name; a longer word that starts with it is not
    assert find_terms("Harry's owl", pattern) == ("Harry",)
    assert find_terms("Harrys, Harryhausen, Hogwarts2, iron, Ronald, _Ron", pattern) == ()
    assert find_terms("(Harry)-Ron", pattern) == ("Harry", "Ron")


def test_the_score_is_the_fraction_of_completions_using_a_term():
    prompts = ["His best friend is named", "He went to a school called", "His owl was", "He was"]
    completions = ["Ron Weasley.", "a boarding school.", "Harrys pet", "the boy who lived, Harry"]
    result = score_familiarity(prompts, completions, ANCHORS)
    assert [row.terms for row in result.rows] == [("Ron",), (), (), ("Harry",)]
    assert result.score == 0.5
    out = result.to_dict()
    assert (out["familiarity"], out["familiar"], out["prompts"]) == (0.5, 2, 4)
    assert out["rows"][0] == {
        "prompt": prompts[0],
        "completion": "Ron Weasley.",
        "terms": ["Ron"],
        "familiar": True,
    }


def test_only_the_completion_is_scored_not_the_prompt(monkeypatch):
    calls = []

    def fake_generate(loaded, rows, **kwargs):
        calls.append(rows)
        return ["a tall wizard", "Hogwarts"]

    monkeypatch.setattr(module, "generate_answers", fake_generate)
    prompts = ["Harry Potter's best friend is named", "The school is"]
    result = familiarity(None, prompts, ANCHORS, progress=False)
    assert [row.familiar for row in result.rows] == [False, True] and result.score == 0.5
    (rows,) = calls
    assert all(isinstance(ex, Example) for ex in rows)
    assert [ex.question for ex in rows] == prompts and all(ex.image is None for ex in rows)


def test_bad_inputs_fail_before_generation(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "generate_answers", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(ValueError, match="anchored term"):
        familiarity(None, ["A prompt"], [" "])
    with pytest.raises(ValueError, match="prompt"):
        familiarity(None, [], ANCHORS)
    with pytest.raises(ValueError, match="completions"):
        score_familiarity(["a", "b"], ["x"], ANCHORS)
    with pytest.raises(ValueError, match="not found"):
        load_prompts(tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompts(tmp_path / "blank.txt")


def test_a_tiny_model_is_scored_end_to_end(examples):
    from mmunlearn.testing import tiny_family

    loaded = tiny_family("smollm2", examples)
    entity = next(ex.entity for ex in examples if ex.role == "forget")
    result = familiarity(
        loaded,
        [f"{entity} was born in", "The capital is"],
        [entity],
        max_new_tokens=3,
        progress=False,
    )
    assert len(result.rows) == 2 and 0.0 <= result.score <= 1.0
    assert all(row.prompt and isinstance(row.completion, str) for row in result.rows)


def test_the_shipped_prompts_are_about_the_subject_and_do_not_give_the_answer():
    prompts = load_prompts(FOLDER / "familiarity_prompts.txt")
    anchors = load_anchors(str(FOLDER / "anchors" / "harry_potter.json"))
    assert 20 <= len(prompts) <= 40 and len(set(prompts)) == len(prompts)
    assert all(not p.endswith(".") for p in prompts)  # completions, not sentences
    pattern = term_pattern(anchors)
    # each prompt leads to a name: none is answered by its own last words
    assert all(not find_terms(p.split()[-1], pattern) for p in prompts)
