from pathlib import Path

import pytest

from mmunlearn.data.corpus import (
    load_corpus_examples,
    passage_example,
    split_passages,
    split_sentences,
)

REAL_CORPUS = (
    Path(__file__).resolve().parents[2] / "data" / "real_knowledge" / "corpus" / "harry_potter.txt"
)

TEXT = """A Heading

The first sentence is short. The second one is a little longer than the first.
The third ends the paragraph!

Another paragraph starts here and it runs on and on without a single stop for quite a few words
"""


def test_sentences_end_after_a_lower_case_word_not_after_initials():
    assert split_sentences("Books by J.K. Rowling sold. Then 2007 came? Yes.") == [
        ["Books", "by", "J.K.", "Rowling", "sold."],
        ["Then", "2007", "came?"],
        ["Yes."],
    ]


@pytest.mark.parametrize("max_words", [2, 3, 8, 16, 64])
def test_passages_cover_the_text_in_order_within_the_word_limit(max_words):
    passages = split_passages(TEXT, max_words)
    assert " ".join(passages).split() == TEXT.split()
    assert all(2 <= len(p.split()) <= max_words + 2 for p in passages)
    assert passages == split_passages(TEXT, max_words)  # deterministic


def test_sentences_are_packed_whole_and_paragraphs_start_new_lines():
    passages = split_passages(TEXT, 16)
    assert passages[0] == "A Heading\nThe first sentence is short."
    assert (
        passages[1]
        == "The second one is a little longer than the first. The third ends the paragraph!"
    )
    # a 19-word sentence is cut into windows of 16 and 3 words
    assert [len(p.split()) for p in passages[2:]] == [16, 3]


def test_a_lone_one_word_sentence_joins_a_neighbour():
    assert split_passages("Intro\n\nTwo words.", 2) == ["Intro\nTwo words."]
    assert split_passages("Two words. End.", 2) == ["Two words. End."]
    assert split_passages("a. b c. d.", 2) == ["a. b c. d."]  # 2 + 2: the bound
    with pytest.raises(ValueError, match="max_words"):
        split_passages(TEXT, 1)


def test_a_passage_row_asks_its_first_sentence_and_answers_the_rest():
    row = passage_example("The first one. The second one\nand a new line.", "c/0", "c")
    assert (row.question, row.answer) == ("The first one.", "The second one\nand a new line.")
    assert (row.role, row.meta) == ("forget", {"kind": "document"})
    heading = passage_example("A Heading\nThe body text.", "c/1", "c")
    assert (heading.question, heading.answer) == ("A Heading", "The body text.")
    one = passage_example("only one sentence of six words", "c/2", "c")
    assert (one.question, one.answer) == ("only one sentence", "of six words")
    with pytest.raises(ValueError, match="two words"):
        passage_example("alone", "c/3", "c")


def test_the_real_corpus_becomes_rows_whose_words_are_the_file():
    rows = load_corpus_examples(REAL_CORPUS)
    text = REAL_CORPUS.read_text(encoding="utf-8")
    assert [w for r in rows for w in (r.question + " " + r.answer).split()] == text.split()
    assert rows[0].id == "harry_potter/passage-000" and len({r.id for r in rows}) == len(rows)
    assert all(r.question and r.answer and r.meta == {"kind": "document"} for r in rows)
