"""b4 — evaluation: multiple-choice options scored with their shared image prefix once vs once
per option; greedy answers at the benchmarks' budgets (50 new tokens one question at a time as
MLLMU-Bench does, 200 in open-unlearning's batches of 32, the engine's batches of 64) and ROUGE-L
of those answers with a cold cache (benchmarks.generation). Each checked identical first."""

from __future__ import annotations

import random

import torch

from benchmarks.common import Sizes, interleaved_times, row, spread
from benchmarks.generation import generation_rows
from benchmarks.tiny_world import llava, world_examples
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
    times = interleaved_times({"plain": lambda _: score(False), "shared": lambda _: score(True)},
                              s.repeats)  # fmt: skip
    return [
        row(
            "b4",
            f"{s.shapes[0].name}, {len(queries)} options, {s.image_tokens} image tokens",
            "MCQ scoring time (s), prefix once per question",
            spread(times["plain"])["median"],
            spread(times["shared"])["median"],
            "—",
            None,
            check,
            spreads={k: spread(v) for k, v in times.items()},
        )
    ]


def run(s: Sizes, smoke: bool) -> list[dict]:
    from mmunlearn.testing import TINY_MODEL, tiny_llava

    examples = world_examples(s.world)
    loaded = tiny_llava(examples, config=TINY_MODEL if s.world == "tiny" else TinyLlavaConfig())
    questions = random.Random(0).sample(examples, min(s.eval_questions, len(examples)))
    images = sum(ex.image is not None for ex in questions)
    label = (
        f"the demo's LLaVA-style model, untrained (answers run to the budget), "
        f"{len(questions)} questions ({images} with an image)"
    )
    return [*option_scoring(s), *generation_rows("b4", loaded, questions, s, label)]
