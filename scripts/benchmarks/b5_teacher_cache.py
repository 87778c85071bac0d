"""b5 — teacher amortisation: targets cached per example, and each image's prefix encoded once
per batch, vs the teacher recomputed at every step; a VGID teacher's noise draws as one batch vs
one forward each; the bytes of cached top-k targets and what the approximation costs."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import DEVICE, LR, Sizes, median_time, row
from benchmarks.tiny_world import (
    engine_trainer,
    llava,
    optimizer_step,
    trainable,
    with_lora,
    world_examples,
)
from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import PromptEncoder, answer_length
from mmunlearn.models.loading import LoadedModel
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.targets import TeacherContext, to_device
from mmunlearn.training.samplers import group_by_image, one_to_one_random
from mmunlearn.training.trainer import RoleCollator, frozen_model


def run(s: Sizes, smoke: bool) -> list[dict]:
    """Forget steps over several epochs of the tiny world's forget questions (five per image, as
    MLLMU-Bench asks), in the order `train.share_image_prefix` gives: recomputed teacher vs
    cached targets vs cached targets + each image's prefix encoded once per batch."""
    shape = s.shapes[0]
    examples = world_examples("tiny")
    base = llava(examples, s, shape)
    encoder = PromptEncoder(base, max_length=2048)
    by_role = group_by_role(examples)
    forget = [ex for ex in by_role["forget"] if ex.image is not None][: s.forget_rows]
    items = one_to_one_random({"forget": forget, "retain": by_role["retain"]}, 0, 0)
    items = group_by_image(items * s.epochs, "forget", seed=0)
    collate = RoleCollator(encoder, batch_roles=("forget",))
    batches = [
        {"forget": to_device(collate(items[i : i + s.batch])["forget"], DEVICE)}
        for i in range(0, len(items), s.batch)
    ]
    # noise seeded per image: every question about one image sees the same noised image
    terms = build_method("vgid", teacher={"noise": {"seed_by": "image"}}).terms[:1]
    variants = {
        "recomputed": (False, False),
        "cached": (True, False),
        "cached+prefix": (True, True),
    }
    results, times = {}, {v: [] for v in variants}
    # whole runs, the variants interleaved and repeated: the median resists a busy machine
    with tempfile.TemporaryDirectory() as tmp:
        for _, (variant, (cached, shared)) in itertools.product(range(s.repeats), variants.items()):
            student = with_lora(copy.deepcopy(base.model)).train()
            cache = TeacherCache() if cached else None
            trainer = engine_trainer(
                student, encoder, terms, True, str(Path(tmp) / variant), cache, shared
            )
            optimizer = torch.optim.AdamW(trainable(student).values(), lr=LR)
            start = time.perf_counter()
            for inputs in batches:
                optimizer_step(student, optimizer, trainer.compute_loss(student, inputs))
            times[variant].append(time.perf_counter() - start)
            results[variant] = {n: p.detach().clone() for n, p in trainable(student).items()}
    times = {variant: statistics.median(runs) for variant, runs in times.items()}
    for name, value in results["cached"].items():
        # a row cached from another batch's padding may differ in the last bits
        torch.testing.assert_close(value, results["recomputed"][name], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(results["cached+prefix"][name], value, rtol=1e-4, atol=1e-5)
    check = (
        "LoRA weights after all epochs equal: cached within rtol 1e-5, atol 1e-7; "
        "+prefix within rtol 1e-4, atol 1e-5"
    )
    print(f"b5: {check}")
    label = f"{shape.name}, {len(batches)} forget steps ({s.epochs} epochs, batch {s.batch})"
    return [
        *[
            row(
                "b5",
                label,
                f"time (s), {variant}",
                times["recomputed"],
                times[variant],
                ">= 1.6x faster",
                1.6,
                check,
            )
            for variant in ("cached", "cached+prefix")
        ],
        batched_draws(s, base, encoder, batches[0]["forget"]),
        top_k_targets(s, base, encoder, terms[0].teacher, batches),
    ]


def top_k_targets(s: Sizes, base: LoadedModel, encoder: PromptEncoder, teacher, batches) -> dict:
    """Bytes of the cached targets: whole distributions vs each position's top-k tokens, and
    what the approximation costs: KL(full ‖ top-k target) per answer position."""
    top_k = 32
    ctx = TeacherContext(frozen=frozen_model(base.model, DEVICE), encoder=encoder)
    rows = []
    for inputs in batches:
        batch = inputs["forget"]
        labels = batch["labels"][:, -answer_length(batch["labels"]) :]
        targets = teacher.build(ctx, batch, labels)
        rows.append(targets.logprobs[targets.mask].cpu())  # (n, V)
    logprobs = torch.cat(rows)
    error = TeacherCache.approximation_error(logprobs, top_k)
    full_bytes = logprobs.numel() * 4
    top_bytes = len(logprobs) * top_k * 8  # float32 log-prob + int32 token id
    check = (
        f"top-{top_k} keeps each position's {top_k} log-probs exactly; KL(full || top-{top_k}) "
        f"per position: mean {error.mean():.2e}, max {error.max():.2e} nats"
    )
    print(f"b5: {check}")
    return row(
        "b5",
        f"{s.shapes[0].name}, {len(logprobs)} answer positions",
        f"cached target MiB, top-{top_k}",
        full_bytes / 2**20,
        top_bytes / 2**20,
        "—",
        None,
        check,
    )


def batched_draws(s: Sizes, base: LoadedModel, encoder: PromptEncoder, batch: dict) -> dict:
    """A VGID teacher averaging 4 noise draws: the draws as one batch vs one forward each."""
    teacher = build_method("vgid", teacher={"draws": 4}).terms[0].teacher
    labels = batch["labels"][:, -answer_length(batch["labels"]) :]
    ctx = TeacherContext(frozen=frozen_model(base.model, DEVICE), encoder=encoder, batch_draws=True)
    looped_ctx = dataclasses.replace(ctx, batch_draws=False)
    merged = teacher.build(ctx, batch, labels).logprobs
    looped = teacher.build(looped_ctx, batch, labels).logprobs
    torch.testing.assert_close(merged, looped, rtol=1e-5, atol=1e-5)
    check = "same targets (rtol 1e-5, atol 1e-5)"
    print(f"b5: batched draws: {check}")
    return row(
        "b5",
        f"{s.shapes[0].name}, batch {len(labels)} x 4 draws",
        "VGID teacher time (s), draws batched",
        median_time(lambda: teacher.build(looped_ctx, batch, labels), s.repeats),
        median_time(lambda: teacher.build(ctx, batch, labels), s.repeats),
        "—",
        None,
        check,
    )
