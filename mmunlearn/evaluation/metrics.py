"""Per-question answer metrics and their means per split (shared/DESIGN.md, "Evaluation")."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from mmunlearn.data.example import MODALITIES, Example
from mmunlearn.data.splits import is_heldout


@functools.cache
def _rouge_tokenizer():
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=True)


@functools.lru_cache(maxsize=1 << 16)
def _rouge_tokens(text: str) -> tuple[str, ...]:
    # Stemming dominates rouge-score's cost; answers and predictions repeat across questions,
    # methods and checkpoints, so each distinct string is tokenised once.
    return tuple(_rouge_tokenizer().tokenize(text))


def _lcs_length(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest common subsequence of two token sequences (one DP row)."""
    row = [0] * (len(b) + 1)
    for token in a:
        diagonal = 0
        for j, other in enumerate(b, 1):
            above = row[j]
            row[j] = diagonal + 1 if token == other else max(above, row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of `prediction` against `reference`, in [0, 1].

    Higher means the model still produces the reference answer (remembers more). Computed as
    MLLMU-Bench (Liu et al., 2024) does with `rouge_score` (`RougeScorer(["rougeL"],
    use_stemmer=True)`): its tokenizer with the Porter stemmer, the longest common subsequence
    over tokens, F-measure with beta = 1; the same numbers, with each distinct string's tokens
    memoised (tests/evaluation/test_metrics.py compares them with rouge-score's own).
    """
    precision, recall = _rouge_l_parts(prediction, reference)
    if precision + recall > 0:
        return float(2 * precision * recall / (precision + recall))
    return 0.0


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall: the fraction of the reference's tokens found, in order, in the prediction
    (TOFU's "ROUGE", arXiv 2401.06121). A chat model's full sentence ("The capital of France is
    Paris.") has recall 1.0 against "Paris" where its F-measure is 0.29."""
    return _rouge_l_parts(prediction, reference)[1]


def _rouge_l_parts(prediction: str, reference: str) -> tuple[float, float]:
    """(precision, recall) of the longest common token subsequence."""
    target, predicted = _rouge_tokens(reference), _rouge_tokens(prediction)
    if not target or not predicted:
        return 0.0, 0.0
    lcs = _lcs_length(target, predicted)
    return lcs / len(predicted), lcs / len(target)


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_DIGITS_OF = {word: str(i) for i, word in enumerate(_NUMBER_WORDS)}
_DIGITS_OF.update({w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty".split(), 3)})
_DIGITS_OF.update({w: str(10 * i) for i, w in enumerate("seventy eighty ninety".split(), 7)})


def _normalise(text: str) -> str:
    # Punctuation becomes a space so "Jean-Luc" matches "Jean Luc" and "1957." matches "1957";
    # number words become digits so "A square has 4 sides" holds the fact "four".
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(_DIGITS_OF.get(word, word) for word in words)


def fact_correct(prediction: str, reference: str) -> bool:
    """Whether the normalised reference occurs as whole words inside the normalised prediction.

    Normalising lowercases, turns punctuation into spaces, writes number words up to ninety as
    digits and collapses whitespace, so "Born in 1957." contains "1957", "A hexagon has 6 sides"
    contains "six", but "1957" does not contain "195". An empty reference is never found.
    """
    reference = _normalise(reference)
    return bool(reference) and f" {reference} " in f" {_normalise(prediction)} "


def example_fields(ex: Example) -> dict[str, Any]:
    """What every per-question row says about its example (for grouping and reports)."""
    return {
        "id": ex.id,
        "entity": ex.entity,
        "role": ex.role,
        "modality": ex.modality,
        "relation": ex.meta.get("relation"),
        "fact": ex.meta.get("fact"),
        "heldout": is_heldout(ex),
    }


def score_predictions(
    examples: Sequence[Example], predictions: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per example with its prediction, ROUGE-L and fact correctness."""
    if len(examples) != len(predictions):
        raise ValueError(
            f"score_predictions: {len(examples)} examples but {len(predictions)} predictions; "
            "expected one prediction per example"
        )
    return [
        {
            **example_fields(ex),
            "question": ex.question,
            "answer": ex.answer,
            "prediction": pred,
            "rouge_l": rouge_l(pred, ex.answer),
            "rouge_l_recall": rouge_l_recall(pred, ex.answer),
            "fact_correct": fact_correct(pred, ex.answer),
        }
        for ex, pred in zip(examples, predictions, strict=True)
    ]


# summary name -> row field, for generation rows (`score_predictions`).
GENERATION_FIELDS = {"rouge_l": "rouge_l", "fact_acc": "fact_correct"}
# ... and ROUGE-L recall beside the F-measure, for the generation metric's summary.
ANSWER_FIELDS = {**GENERATION_FIELDS, "rouge_l_recall": "rouge_l_recall"}


def _means(rows: Sequence[dict[str, Any]], fields: dict[str, str]) -> dict[str, Any]:
    means = {name: fmean(float(row[key]) for row in rows) for name, key in fields.items()}
    return {**means, "n": len(rows)}


def _group(rows: Sequence[dict[str, Any]], key: Callable[[dict], Any]) -> dict[Any, list[dict]]:
    groups: dict[Any, list[dict]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def summarise(
    rows: Sequence[dict[str, Any]],
    split_of: Callable[[dict[str, Any]], str] = lambda row: row["role"],
    fields: dict[str, str] = GENERATION_FIELDS,
) -> dict[str, dict[str, Any]]:
    """Means of `fields` (summary name -> row key; default ROUGE-L and fact accuracy) per split,
    also broken down by modality.

    Returns `{split: {"rouge_l", "fact_acc", "n", "by_modality": {modality: {...}}}}`, splits in
    order of first appearance; the "neighbor" split also gets "by_relation" (direct, indirect,
    ...). A split with held-out rows (`data.splits.is_heldout`: half of the neighbour and
    general rows, never trained on) also gets "heldout", their means alone. Splits, modalities
    and relations without rows are absent.
    """
    summary = {}
    for split, split_rows in _group(rows, split_of).items():
        by_modality = _group(split_rows, lambda row: row["modality"])
        summary[split] = {
            **_means(split_rows, fields),
            "by_modality": {
                m: _means(by_modality[m], fields) for m in MODALITIES if m in by_modality
            },
        }
        if split == "neighbor":
            by_relation = _group(split_rows, lambda row: row["relation"])
            summary[split]["by_relation"] = {
                rel: _means(by_relation[rel], fields) for rel in sorted(r for r in by_relation if r)
            }
        heldout = [row for row in split_rows if row.get("heldout")]
        if heldout:
            summary[split]["heldout"] = _means(heldout, fields)
    return summary


# fact -> a sentence whose blank is its last word, so a left-to-right model fills it by continuing.
CLOZE_TEMPLATES = {
    "name": "The name of {subject} is",
    "birthplace": "{subject} was born in",
    "birth_year": "{subject} was born in the year",
    "occupation": "The occupation of {subject} is",
    "employer": "The company {subject} works for is",
    "friend": "The friend of {subject} is",
    "capital": "The capital of {subject} is",
}


def cloze_prompt(example: Example) -> str | None:
    """The fill-in-the-blank form of a question: a statement of the fact ending where the answer
    goes ("Talo Verin was born in ___"), or None when none can be made.

    The data's own `meta["cloze"]` (the sentence up to the blank) wins. Otherwise the sentence
    comes from `CLOZE_TEMPLATES[meta["fact"]]` with the subject "this person" for image
    questions and the entity's name for text-only ones ("capital": the country, read from the
    question's "of <country>?"). The blank sits at the END of the sentence because the models
    are left-to-right: they fill it by continuing the text, with no instruction needed.
    """
    if example.meta.get("cloze"):
        return str(example.meta["cloze"])
    template = CLOZE_TEMPLATES.get(example.meta.get("fact", ""))
    if template is None:
        return None
    if example.meta.get("fact") == "capital":
        found = re.search(r"\bof (.+?)\s*\?\s*$", example.question)
        if not found:
            return None
        subject = found.group(1)
    else:
        subject = "this person" if example.image is not None else example.entity
    sentence = template.format(subject=subject)
    return sentence[0].upper() + sentence[1:]
