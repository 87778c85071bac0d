"""An evaluation pass at the benchmarks' real token budgets (b4, b8), each baseline at its own:
greedy answers one question at a time (MLLMU-Bench and VGID, 50 new tokens), 32 left-padded
prompts per batch (open-unlearning, 200 new tokens), and the engine's batches of 64 at both,
interleaved; then ROUGE-L of the generated answers with a cold cache, against rouge-score."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import naive_reference as naive
import peer_baselines as peers

from benchmarks.common import Sizes, interleaved_times, row, spread
from mmunlearn.evaluation import metrics
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.models.loading import LoadedModel


def generation_rows(
    bench: str, loaded: LoadedModel, questions: list[Any], s: Sizes, label: str
) -> list[dict]:
    """Two generation rows (one per budget) and a ROUGE-L row. The answers of the engine and of
    each baseline at one budget must agree (at most an eighth may differ: a tie broken
    differently under padding); the first round's answers are checked, every round is timed."""
    short, long = s.budgets
    n = len(questions)
    variants: dict[str, Callable[[], list[str]]] = {
        f"one_at_a_time@{short}": lambda: naive.generate_one_at_a_time(loaded, questions, short),
        f"engine@{short}": lambda: generate_answers(loaded, questions, 64, short, False),
        f"batched32@{long}": lambda: peers.generate_batched(loaded, questions, 32, long),
        f"engine@{long}": lambda: generate_answers(loaded, questions, 64, long, False),
    }
    naive.generate_one_at_a_time(loaded, questions[:1], 2)  # warm-up: first calls' one-time costs
    generate_answers(loaded, questions[:2], 64, 2, False)
    outputs: dict[str, list[str]] = {}

    def timed(key: str) -> Callable[[int], None]:
        return lambda _: outputs.setdefault(key, variants[key]()) and None

    times = interleaved_times({k: timed(k) for k in variants}, s.real.eval_rounds, warmup=0)
    pairs = ((short, "one_at_a_time"), (long, "batched32"))
    differ = {
        f"{peer}@{budget}": sum(
            a != b
            for a, b in zip(outputs[f"engine@{budget}"], outputs[f"{peer}@{budget}"], strict=True)
        )
        for budget, peer in pairs
    }
    assert max(differ.values()) <= max(1, n // 8), f"answers differ from the engine's: {differ}"
    lengths = [len(loaded.tokenizer(a).input_ids) for a in outputs[f"engine@{long}"]]
    check = (
        f"engine's answers = the baseline's at {2 * n - sum(differ.values())} of {2 * n}; "
        f"answers {min(lengths)}-{max(lengths)} tokens at {long}"
    )
    print(f"{bench} generation: {check}")
    med = {k: spread(v)["median"] for k, v in times.items()}

    def spreads(budget: int) -> dict:
        return {k: spread(v) for k, v in times.items() if k.endswith(f"@{budget}")}

    rows = [
        row(bench, label, "generation time (s)", med[f"one_at_a_time@{short}"],
            med[f"engine@{short}"], "—", None, check, spreads=spreads(short),
            budget=f"{short} new tokens (MLLMU-Bench, VGID)"),
        row(bench, label, "generation time (s)", None, med[f"engine@{long}"], "—", None, check,
            peers={"open_unlearning": med[f"batched32@{long}"]}, spreads=spreads(long),
            budget=f"{long} new tokens (open-unlearning)"),
    ]  # fmt: skip
    predictions = outputs[f"engine@{short}"] + outputs[f"engine@{long}"]
    references = [ex.answer for ex in questions] * 2
    return rows + [rouge_row(bench, predictions, references, label)]


def rouge_row(bench: str, predictions: list[str], references: list[str], label: str) -> dict:
    """ROUGE-L of generated answers: the engine with its tokeniser cache emptied before every
    pass (cold) vs rouge-score per pair (the naive side and open-unlearning alike); checked
    equal first."""
    expected = naive.rouge_l_each(predictions, references)
    metrics._rouge_tokens.cache_clear()
    got = [metrics.rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]
    assert got == expected, "ROUGE-L differs from rouge-score"

    def engine(_: int) -> None:
        metrics._rouge_tokens.cache_clear()
        [metrics.rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]

    times = interleaved_times(
        {"rouge_score": lambda _: naive.rouge_l_each(predictions, references), "engine": engine}, 7
    )
    pairs = len(predictions)
    per_second = {k: pairs / statistics.median(v) for k, v in times.items()}
    return row(
        bench, f"{label}: {pairs} generated answers", "ROUGE-L pairs per second",
        per_second["rouge_score"], per_second["engine"], "—", None,
        "identical scores (exact)", higher_is_better=True,
        spreads={k: spread(v) for k, v in times.items()},
        caveat="cold cache: every string tokenised once per pass (no repeats)",
    )  # fmt: skip
