"""A forget corpus (plain text) as training rows: passages of a few sentences each.

WHP's reinforced model is fine-tuned on the documents to forget, not on questions about them.
The engine trains on `Example` rows (a prompt and the answer it scores), so a passage becomes a
row whose question is its first sentence and whose answer is the rest: next-token training on
all of the passage but its opening. Rows carry `meta={"kind": "document"}`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mmunlearn.data.example import Example

# A sentence ends at . ! or ? after a lower-case letter, a digit or a closing quote/bracket, then
# white space ("J.K. Rowling" stays whole); a wrong cut only moves a passage boundary.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\"'’”][.!?])\s+")


def split_sentences(paragraph: str) -> list[list[str]]:
    """A paragraph's sentences, each as its words."""
    return [s.split() for s in _SENTENCE_END.split(paragraph.strip()) if s.split()]


def split_passages(text: str, max_words: int = 64) -> list[str]:
    """`text` cut into passages of about `max_words` words, in order, covering every word.

    Paragraphs are separated by blank lines. Sentences are packed greedily into a passage while
    they fit, across paragraph boundaries (a heading joins the paragraph after it; each
    paragraph starts a new line of the passage). A sentence longer than `max_words` is cut into
    windows of `max_words` words. A passage has at least two words (a prompt and an answer)
    when the text does: a lone one-word sentence joins the next passage or, at the end, the
    previous one (which may then exceed `max_words` by a word or two). Whitespace is
    normalised: the passages' words, in order, are the text's words.
    """
    if max_words < 2:
        raise ValueError(f"max_words={max_words} must be >= 2 (a prompt and an answer)")
    units: list[tuple[int, list[str]]] = []  # (paragraph index, words)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    for index, paragraph in enumerate(paragraphs):
        for words in split_sentences(paragraph):
            units += [(index, words[i : i + max_words]) for i in range(0, len(words), max_words)]
    packed: list[list[tuple[int, list[str]]]] = []
    size = 0
    for unit in units:
        if not packed or (size + len(unit[1]) > max_words and size > 1):
            packed.append([])
            size = 0
        packed[-1].append(unit)
        size += len(unit[1])
    if len(packed) > 1 and size == 1:
        last = packed.pop()
        packed[-1] += last
    return [_render(passage) for passage in packed]


def _render(units: list[tuple[int, list[str]]]) -> str:
    """Units of one passage as text: words joined by spaces, paragraphs by newlines."""
    lines: list[list[str]] = []
    last = None
    for index, words in units:
        if index != last:
            lines.append([])
            last = index
        lines[-1] += words
    return "\n".join(" ".join(line) for line in lines)


def passage_example(passage: str, id: str, entity: str) -> Example:
    """A forget row of a passage: its first sentence (or first line, when it goes on on the
    next; else the first half of its words) as the question, the rest as the answer."""
    passage = passage.strip()
    words = passage.split()
    if len(words) < 2:
        raise ValueError(f"passage {id!r}: {passage!r} has fewer than two words")
    first_line, _, rest = passage.partition("\n")
    sentences = split_sentences(first_line)
    if len(sentences) > 1 or rest.strip():
        count = len(sentences[0])
    else:
        count = len(words) // 2
    start = re.match(rf"\s*(?:\S+\s+){{{count}}}", passage)
    assert start is not None, "the passage has more than `count` words"
    return Example(
        id,
        entity,
        "forget",
        " ".join(words[:count]),
        passage[start.end() :].strip(),
        meta={"kind": "document"},
    )


def load_corpus_examples(path: str | Path, max_words: int = 64) -> list[Example]:
    """The passages of a UTF-8 text file as forget rows (`passage_example`); ids are
    `<file stem>/passage-NNN`, the entity is the file stem."""
    path = Path(path)
    stem = path.stem
    text = path.read_text(encoding="utf-8")
    if len(text.split()) < 2:
        raise ValueError(f"corpus {str(path)!r} has fewer than two words; nothing to train on")
    passages = split_passages(text, max_words)
    return [
        passage_example(passage, f"{stem}/passage-{i:03d}", stem)
        for i, passage in enumerate(passages)
    ]
