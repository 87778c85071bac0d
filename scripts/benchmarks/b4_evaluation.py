"""b4 — evaluation: batched left-padded generation vs one question at a time; ROUGE-L
throughput vs rouge-score; multiple-choice options scored with their shared image prefix once
vs once per option. Each checked identical first."""

from __future__ import annotations

import random

import naive_reference as naive
import torch

from benchmarks.common import Sizes, median_time, row
from benchmarks.tiny_world import llava, world_examples
from mmunlearn.evaluation import metrics
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.scoring import Query, score_answers
from mmunlearn.models.tiny import TinyLlavaConfig


def option_scoring(s: Sizes) -> list[dict]:
    """Multiple-choice option scoring with LLaVA-1.5's 576 image tokens: the options of one
    question share its image and prompt, encoded once (the default) vs once per option."""
    examples = world_examples("tiny")
    loaded = llava(examples, s, s.shapes[0])
    asked = [ex for ex in examples if ex.image is not None and len(ex.options) >= 2]
    queries = [Query(ex, option) for ex in asked for option in ex.options]

    def score(share: bool) -> list:
        return score_answers(loaded, queries, batch_size=32, progress=False, share_prefix=share)

    shared, plain = score(True), score(False)
    for a, b in zip(shared, plain, strict=True):
        torch.testing.assert_close(a.logprobs, b.logprobs, rtol=1e-4, atol=1e-5)
    check = "same option log-probs (rtol 1e-4, atol 1e-5)"
    print(f"b4: {check} on {len(queries)} options of {len(asked)} questions")
    return [
        row(
            "b4",
            f"{s.shapes[0].name}, {len(queries)} options, {s.image_tokens} image tokens",
            "MCQ scoring time (s), prefix once per question",
            median_time(lambda: score(False), s.repeats),
            median_time(lambda: score(True), s.repeats),
            "—",
            None,
            check,
        )
    ]


def run(s: Sizes, smoke: bool) -> list[dict]:
    from mmunlearn.testing import TINY_MODEL, tiny_llava

    examples = world_examples(s.world)
    loaded = tiny_llava(examples, config=TINY_MODEL if s.world == "tiny" else TinyLlavaConfig())
    questions = random.Random(0).sample(examples, min(s.eval_questions, len(examples)))
    batched = generate_answers(loaded, questions, batch_size=64, max_new_tokens=8, progress=False)
    single = naive.generate_one_at_a_time(loaded, questions)
    differ = [i for i, (a, b) in enumerate(zip(batched, single, strict=True)) if a != b]
    assert not differ, f"batched and one-at-a-time answers differ at {differ[:10]}"
    print(f"b4: identical greedy answers ({len(questions)} questions, 8 new tokens)")
    times = {
        "naive": median_time(lambda: naive.generate_one_at_a_time(loaded, questions), s.repeats),
        "engine": median_time(
            lambda: generate_answers(
                loaded, questions, batch_size=64, max_new_tokens=8, progress=False
            ),
            s.repeats,
        ),
    }
    # ROUGE-L as a comparison scores it: every question, in several runs (methods, checkpoints),
    # the predictions drawn from the world's answers (what a memorising model says)
    rng = random.Random(0)
    answers = [ex.answer for ex in examples]
    references = [ex.answer for ex in examples] * s.rouge_runs
    predictions = [rng.choice(answers) + rng.choice(["", " .", " exactly"]) for _ in references]
    expected = naive.rouge_l_each(predictions, references)
    metrics._rouge_tokens.cache_clear()
    got = [metrics.rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]
    assert got == expected, "ROUGE-L differs from rouge-score"
    print(f"b4: ROUGE-L equal to rouge-score's on {len(got)} pairs (exact)")

    def engine_rouge() -> None:
        metrics._rouge_tokens.cache_clear()  # cold: tokenising is part of the cost
        [metrics.rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]

    rouge_times = {
        "naive": median_time(lambda: naive.rouge_l_each(predictions, references), s.repeats),
        "engine": median_time(engine_rouge, s.repeats),
    }
    name = f"{len(questions)} questions, batch 64"
    pairs = len(references)
    mcq = option_scoring(s)
    return [
        *mcq,
        row(
            "b4",
            name,
            "generation time (s)",
            times["naive"],
            times["engine"],
            ">= 3x faster",
            3.0,
            "identical greedy answers",
        ),
        row(
            "b4",
            f"{pairs} pairs ({s.rouge_runs} runs)",
            "ROUGE-L pairs per second",
            pairs / rouge_times["naive"],
            pairs / rouge_times["engine"],
            "—",
            None,
            "identical scores (exact)",
            higher_is_better=True,
        ),
    ]
