"""b1 — loss memory and time: answer-position logits + the engine's KL vs the naive loop's
all-position log-softmax KL, on a random Llama-style model whose teacher sees other "image"
tokens (a noised image), the same text and answer."""

from __future__ import annotations

import contextlib
from typing import Any

import naive_reference as naive
import torch

from benchmarks.common import (
    DEVICE,
    Memory,
    Sizes,
    measure_in_subprocess,
    median_time,
    random_answer_batch,
    random_llama,
    row,
)
from mmunlearn.losses.divergences import ForwardKL, masked_mean
from mmunlearn.models.encoding import IGNORE_INDEX
from mmunlearn.models.forward import answer_logits
from mmunlearn.teachers.targets import TeacherContext, TokenTargets, to_device


def setup(s: Sizes) -> dict[str, Any]:
    length = s.image_tokens + s.text_tokens + s.answer
    model = random_llama(s.vocab, s.width, s.layers, length)
    gen = torch.Generator().manual_seed(0)
    batch = random_answer_batch(s.batch, length, s.answer, s.vocab, gen)
    input_ids = batch["input_ids"]
    # the teacher sees other "image" tokens (a noised image), the same text and answer
    teacher_ids = input_ids.clone()
    teacher_ids[:, : s.image_tokens] = torch.randint(
        5, s.vocab, (s.batch, s.image_tokens), generator=gen
    )
    teacher_batch = {**batch, "input_ids": teacher_ids}
    return {
        "model": model,
        "batch": to_device(batch, DEVICE),
        "teacher_batch": to_device(teacher_batch, DEVICE),
    }


def engine_loss(state: dict[str, Any]) -> torch.Tensor:
    model = state["model"]
    ctx = TeacherContext(frozen=lambda: contextlib.nullcontext(model), encoder=None)
    logits, labels = answer_logits(model, state["batch"])  # (B, K, V)
    targets = TokenTargets(
        mask=labels != IGNORE_INDEX, logprobs=ctx.logprobs(state["teacher_batch"], labels)
    )
    return masked_mean(ForwardKL()(logits, targets), targets.mask)


def naive_loss(state: dict[str, Any]) -> torch.Tensor:
    model = state["model"]
    return naive.distillation_loss(model, model, state["batch"], state["teacher_batch"])


def step(state: dict[str, Any], variant: str) -> torch.Tensor:
    state["model"].zero_grad(set_to_none=True)
    loss = (engine_loss if variant == "engine" else naive_loss)(state)
    loss.backward()
    return loss


def run(s: Sizes, smoke: bool) -> list[dict]:
    state = setup(s)
    losses, grads = {}, {}
    for variant in ("engine", "naive"):
        losses[variant] = step(state, variant).detach()
        grads[variant] = [p.grad.clone() for p in state["model"].parameters()]
    torch.testing.assert_close(losses["engine"], losses["naive"], rtol=1e-4, atol=1e-6)
    for a, b in zip(grads["engine"], grads["naive"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
    check = "loss rtol 1e-4 atol 1e-6, gradients rtol 1e-3 atol 1e-6"
    print(f"b1: same loss ({losses['engine'].item():.6f}) and gradients ({check})")
    times = {v: median_time(lambda v=v: step(state, v), s.repeats) for v in ("naive", "engine")}
    state.clear()
    memory = {v: measure_in_subprocess(f"b1:{v}", smoke, worker) for v in ("naive", "engine")}
    shape = f"B={s.batch} T={s.image_tokens + s.text_tokens + s.answer} K={s.answer} V={s.vocab}"
    return [
        row(
            "b1",
            shape,
            "step peak memory (MiB)",
            memory["naive"]["step_mib"],
            memory["engine"]["step_mib"],
            ">= 10x lower",
            10.0,
            check,
        ),
        row("b1", shape, "step time (s)", times["naive"], times["engine"], "—", None, check),
    ]


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b1:VARIANT`: one step's memory."""
    memory = Memory()
    state = setup(s)
    memory.mark()
    step(state, key.split(":")[-1])
    return memory.result()
