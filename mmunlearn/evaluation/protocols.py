"""Benchmarks' own scoring rules, as pure functions the suite's metrics apply.

Each follows a file of the benchmark's released code (named per function), re-written here:

- MLLMU-Bench (`eval.py` of the authors' repository): classification by a prompt with lettered
  options, a few solved examples before it, and the first letter of the reply
  (`evaluate_classification`); fill-in-the-blank correct when the reply contains the ground
  truth, case ignored (`evaluate_fill_in_the_blank`); ROUGE-L on the generation questions only
  (`evaluate_generation`).
- TOFU (`locuslab/tofu`, `evaluate_util.py` / `aggregate_eval_stat.py`): model utility is the
  harmonic mean of nine numbers — answer probability, ROUGE-L recall and truth ratio on each of
  retain, real authors and world facts; on real authors and world facts the probability is
  normalised over the answer and its perturbed answers, and the truth ratio is max(0, 1 − R).
- CLEAR (its repository's README, "Calculate metrics"): the same `aggregate_eval_stat.py` on its
  evaluation logs, its real faces and real world in the places of real authors and world facts
  (`UTILITY_SLOTS`), forget quality against a "gold" model fine-tuned on the retain split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import harmonic_mean

LETTER_INSTRUCTION = "Just give ONE letter representing the answer directly."


def lettered_options(question: str, options: Sequence[str], letters: Sequence[str]) -> str:
    """The question with its options on lines `A: text` (MLLMU-Bench's
    `formulate_prompt_with_options`)."""
    return "\n".join([question, *(f"{k}: {v}" for k, v in zip(letters, options, strict=True))])


def letter_prompt(
    question: str,
    options: Sequence[str],
    letters: Sequence[str],
    shots: Sequence[tuple[str, Sequence[str], str]] = (),
) -> str:
    """MLLMU-Bench's classification prompt: each solved example (question, options, correct
    letter) as `Question: ... / A: ... / Correct Answer: X`, then the question with its lettered
    options and the one-letter instruction."""
    solved = [
        f"Question: {lettered_options(q, opts, letters)}\nCorrect Answer: {answer}"
        for q, opts, answer in shots
    ]
    return "\n".join([*solved, lettered_options(question, options, letters), LETTER_INSTRUCTION])


def first_letter(reply: str, letters: Sequence[str]) -> str | None:
    """The reply's first character, upper-cased, when it is one of `letters` (else None: MLLMU-
    Bench counts such a reply wrong)."""
    text = reply.strip()
    letter = text[:1].upper()
    return letter if letter and letter in letters else None


def contains_answer(reply: str, answer: str) -> bool:
    """MLLMU-Bench's fill-in-the-blank rule: the ground truth occurs in the reply, case ignored."""
    return answer.lower() in reply.lower()


def normalised_probability(answer_logprob: float, perturbed_logprobs: Sequence[float]) -> float:
    """P(a) / (P(a) + Σ P(ã_j)), the probabilities length-normalised (mean token log-probs): TOFU's
    probability on real authors and world facts."""
    logs = [answer_logprob, *perturbed_logprobs]
    top = max(logs)
    return math.exp(answer_logprob - top) / sum(math.exp(x - top) for x in logs)


TOFU_UTILITY_SETS = ("retain", "real_authors", "world_facts")
# CLEAR runs TOFU's aggregate_eval_stat.py on its own sets (its repository's README, "Calculate
# metrics"): its real faces and real-world VQA stand where TOFU's real authors and world facts do
UTILITY_SLOTS = {
    "real_authors": "real_authors",
    "world_facts": "world_facts",
    "real_faces": "real_authors",
    "real_world": "world_facts",
}
TOFU_UTILITY_STATS = ("probability", "rouge_l_recall", "truth_ratio")


def tofu_model_utility(values: Mapping[tuple[str, str], float]) -> float:
    """The harmonic mean of the nine (set, statistic) numbers of `TOFU_UTILITY_SETS` ×
    `TOFU_UTILITY_STATS`; a missing one is a KeyError naming it. 0 when any is 0."""
    missing = [
        f"{s}/{stat}"
        for s in TOFU_UTILITY_SETS
        for stat in TOFU_UTILITY_STATS
        if (s, stat) not in values
    ]
    if missing:
        raise KeyError(f"TOFU model utility needs {', '.join(missing)}")
    nine = [values[(s, stat)] for s in TOFU_UTILITY_SETS for stat in TOFU_UTILITY_STATS]
    return 0.0 if min(nine) <= 0 else harmonic_mean(nine)
