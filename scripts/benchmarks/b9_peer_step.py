"""b9 — a VGID-style LoRA step (a forget term whose teacher sees other image tokens, a retain
term whose teacher is the base) on a LLaVA-7B-proportional language stack (all 32 layers at a
reduced width, every ratio kept: benchmarks.common.ProportionalShape), the engine against the
naive loop and each competent peer baseline (scripts/peer_baselines.py): torchunlearn's cached
fp16 reference, TRL's adapter-disabled reference, transformers' `logits_to_keep` alone. Loss and
every LoRA gradient checked first, then AdamW steps interleaved round by round, the weights
checked after them; peak memory (build + one step) per variant in a fresh process."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import naive_reference as naive
import peer_baselines as peers
import torch

from benchmarks.common import (
    DEVICE,
    LR,
    Memory,
    ProportionalShape,
    Sizes,
    measure_in_subprocesses,
    random_answer_batch,
    random_llama,
    row,
    spread,
)
from benchmarks.kl_variants import Sides, check_gradients, check_weights, race
from mmunlearn.losses.divergences import ForwardKL, masked_mean
from mmunlearn.models.encoding import IGNORE_INDEX
from mmunlearn.models.forward import answer_logits
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.targets import Teacher, TeacherContext, TokenTargets, to_device
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora
from mmunlearn.training.trainer import frozen_teacher

VARIANTS = ("naive", "torchunlearn", "trl", "logits_to_keep", "engine", "engine_cached")
PEERS = ("torchunlearn", "trl", "logits_to_keep")
COPIES = ("naive", "logits_to_keep")  # the variants that hold a deep-copied reference
LORA_B_STD = 2e-2  # LoRA's B starts at zero (student = teacher): stand for a trained adapter
# fp16 cached log-probs: rounding errors of ~1e-3 nats per token, against a KL of ~1e-3 nats
# per token between a student a few steps in and its reference
LOSSY = {"torchunlearn": 0.1}


class ViewTeacher(Teacher):
    """The frozen base on the teacher's view of a batch (b9's random rows carry it along), as
    the engine's teachers build targets: answer positions only."""

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        logprobs = ctx.logprobs(batch["teacher_view"], labels)  # (B, K, V)
        return TokenTargets(mask=labels != IGNORE_INDEX, logprobs=logprobs)


def batch_sets(p: ProportionalShape) -> list[list[peers.Pair]]:
    """Two sets of (forget, retain) pairs; the forget teacher sees other "image" tokens (a
    noised image), the same question and answer; the retain teacher the student's batch. Each
    student batch names its rows (`examples`, for the engine's teacher cache) and carries the
    teacher's view."""
    length = p.image_tokens + p.text_tokens + p.answer
    gen = torch.Generator().manual_seed(0)
    sets = []
    for index in range(2):
        forget = random_answer_batch(p.batch, length, p.answer, p.vocab, gen)
        retain = random_answer_batch(p.batch, length, p.answer, p.vocab, gen)
        noised = forget["input_ids"].clone()
        noised[:, : p.image_tokens] = torch.randint(
            5, p.vocab, (p.batch, p.image_tokens), generator=gen
        )
        teacher = {**forget, "input_ids": noised}
        for role, batch, view in (("forget", forget, teacher), ("retain", retain, retain)):
            rows = [SimpleNamespace(id=f"{index}-{role}-{i}") for i in range(p.batch)]
            batch.update(examples=rows, teacher_view=to_device(dict(view), DEVICE))
        pairs = [(forget, teacher), (retain, retain)]
        sets.append([(to_device(a, DEVICE), to_device(b, DEVICE)) for a, b in pairs])
    return sets


def setup(p: ProportionalShape, variants: tuple[str, ...]) -> dict[str, Any]:
    """The LoRA student, what `variants` need beside it, and their losses by batch-set index."""
    length = p.image_tokens + p.text_tokens + p.answer
    base = random_llama(p.vocab, p.width, p.layers, length, mlp=p.mlp, heads=p.heads)
    copied = naive.deep_copied_teacher(base) if set(variants) & set(COPIES) else None
    torch.manual_seed(1)
    model = add_lora(base, TrainConfig(lora=True)).to(DEVICE)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=LORA_B_STD)
    sets = batch_sets(p)
    cached = None
    if "torchunlearn" in variants:  # before training, from the reference (adapters off)
        with model.disable_adapter():
            cached = [peers.cache_reference(model, pairs) for pairs in sets]
    ctx = TeacherContext(frozen=frozen_teacher(model, use_adapter_off=True), encoder=None)
    kl, teacher, cache = ForwardKL(), ViewTeacher(), TeacherCache()

    def engine(pairs: list[peers.Pair], cache: TeacherCache | None = None) -> torch.Tensor:
        loss = 0.0
        for batch, _ in pairs:
            logits, labels = answer_logits(model, batch)  # (B, K, V)
            if cache is None:
                targets = teacher.build(ctx, batch, labels)
            else:
                targets = cache.build(teacher, ctx, batch, labels)
            loss = loss + masked_mean(kl(logits, targets), targets.mask)
        return loss

    if "engine_cached" in variants:  # filled before training, as torchunlearn's
        for pairs in sets:
            for batch, _ in pairs:
                cache.build(teacher, ctx, batch, batch["labels"][:, -p.answer :])

    def naive_loss(pairs: list[peers.Pair]) -> torch.Tensor:
        return sum(naive.distillation_loss(model, copied, a, b) for a, b in pairs)

    losses = {
        "naive": lambda i: naive_loss(sets[i % 2]),
        "torchunlearn": lambda i: peers.cached_reference_loss(model, sets[i % 2], cached[i % 2]),
        "trl": lambda i: peers.adapter_off_loss(model, sets[i % 2]),
        "logits_to_keep": lambda i: peers.logits_to_keep_loss(model, copied, sets[i % 2]),
        "engine": lambda i: engine(sets[i % 2]),
        "engine_cached": lambda i: engine(sets[i % 2], cache),
    }
    return {"model": model, "losses": {v: losses[v] for v in variants}}


def describe(p: ProportionalShape) -> str:
    length = p.image_tokens + p.text_tokens + p.answer
    return (
        f"LLaVA-7B-proportional: {p.layers} layers, width {p.width} (1/{4096 // p.width} of 7B), "
        f"MLP {p.mlp}, V={p.vocab}; LoRA r8; {p.batch} forget + {p.batch} retain rows, "
        f"T={length} ({p.image_tokens} image tokens), K={p.answer}"
    )


def run(s: Sizes, smoke: bool) -> list[dict]:
    p = s.proportional
    state = setup(p, VARIANTS)
    sides = Sides(state["model"], state["losses"])
    check = check_gradients(sides, LOSSY, "b9")
    times = race(sides, p.rounds)
    weights = check_weights(sides, {"torchunlearn": 0.2}, "b9")
    state.clear()
    measured = measure_in_subprocesses([f"b9:{v}" for v in VARIANTS], smoke, worker)
    memory = {key.split(":")[1]: value for key, value in measured.items()}
    shape = describe(p)
    checks = f"{check}; {weights}"
    med = {v: spread(t)["median"] for v, t in times.items()}
    caveat = (
        "reduced width: weights shrink with width², activations with width, so a deep copy "
        "costs relatively less here than at 7B; torchunlearn's targets are fp16"
    )
    metrics = (
        ("peak memory, build + step (MiB)", {v: memory[v]["total_mib"] for v in VARIANTS}, {}),
        ("step peak memory above the model (MiB)", {v: memory[v]["step_mib"] for v in VARIANTS},
         {}),
        ("step time (s), median", med, {v: spread(t) for v, t in times.items()}),
    )  # fmt: skip
    rows = []
    for engine, note in (("engine", caveat), ("engine_cached", f"{caveat}; cached targets")):
        suffix = "" if engine == "engine" else ", engine with train.cache_teacher=true"
        for metric, values, spreads in metrics:
            rows.append(
                row("b9", shape, metric + suffix, values["naive"], values[engine], "—", None,
                    checks, peers={v: values[v] for v in PEERS}, caveat=note,
                    spreads={k: v for k, v in spreads.items() if k != (
                        "engine_cached" if engine == "engine" else "engine")})
            )  # fmt: skip
    return rows


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b9:VARIANT`: building the model, the variant's reference (copy or cache) and one AdamW
    step."""
    variant = key.split(":")[-1]
    memory = Memory()
    state = setup(s.proportional, (variant,))
    model = state["model"]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    memory.mark()
    state["losses"][variant](0).backward()
    optimizer.step()
    return memory.result()
