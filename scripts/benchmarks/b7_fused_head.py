"""b7 — the fused head (`train.fused_head`): a distillation term computed from hidden states one
chunk of logits at a time vs the engine's plain answer logits (and, on a GPU with liger-kernel,
Liger's fused linear KL), on a random Llama-style model with fixed soft teacher targets."""

from __future__ import annotations

import functools
from typing import Any

import torch

from benchmarks.common import (
    DEVICE,
    FusedShape,
    Memory,
    Sizes,
    measure_in_subprocess,
    median_time,
    random_answer_batch,
    random_llama,
    row,
)
from mmunlearn.losses.fused import fused_term_value, liger_available
from mmunlearn.losses.objective import term_value
from mmunlearn.methods import build_method
from mmunlearn.models.forward import answer_logits, hidden_states_out
from mmunlearn.teachers.targets import TokenTargets, to_device


def setup(shape: FusedShape) -> dict[str, Any]:
    """A random Llama-style model, a batch, and fixed soft teacher targets at its K positions."""
    model = random_llama(shape.vocab, shape.width, 2, shape.length)
    gen = torch.Generator().manual_seed(0)
    batch = random_answer_batch(shape.rows, shape.length, shape.answer, shape.vocab, gen)
    teacher = torch.randn(shape.rows, shape.answer, shape.vocab, generator=gen)  # (B, K, V)
    targets = TokenTargets(
        mask=torch.ones(shape.rows, shape.answer, dtype=torch.bool, device=DEVICE),
        logprobs=torch.log_softmax(teacher.to(DEVICE) * 3, -1),
    )
    term = build_method("vgid").terms[0]  # forward KL to a soft teacher, the mean over tokens
    return {"model": model, "batch": to_device(batch, DEVICE), "targets": targets, "term": term}


def step(state: dict[str, Any], variant: str) -> torch.Tensor:
    model, batch, targets, term = state["model"], state["batch"], state["targets"], state["term"]
    model.zero_grad(set_to_none=True)
    if variant == "plain":
        logits, labels = answer_logits(model, batch)  # (B, K, V)
        value = term_value(term, logits, targets, labels)
    else:
        with hidden_states_out(model) as head:
            hidden, _ = answer_logits(model, batch)  # (B, K, H)
        value = fused_term_value(term, hidden, head, targets, variant)
    value.backward()
    return value.detach()


def available_variants() -> tuple[str, ...]:
    return ("plain", "chunked", "liger") if liger_available() else ("plain", "chunked")


def run(s: Sizes, smoke: bool) -> list[dict]:
    rows = []
    for shape in s.fused:
        state = setup(shape)
        variants = available_variants()
        losses, grads = {}, {}
        for variant in variants:
            losses[variant] = step(state, variant)
            grads[variant] = [p.grad.clone() for p in state["model"].parameters()]
        tolerance = (1e-3, 1e-5) if DEVICE.type == "cuda" else (1e-4, 1e-6)
        for variant in variants[1:]:
            torch.testing.assert_close(losses[variant], losses["plain"], rtol=1e-5, atol=1e-6)
            for a, b in zip(grads[variant], grads["plain"], strict=True):
                torch.testing.assert_close(a, b, rtol=tolerance[0], atol=tolerance[1])
        grads.clear()
        check = f"loss rtol 1e-5, gradients rtol {tolerance[0]} atol {tolerance[1]}"
        print(f"b7 {shape.name}: same loss ({losses['plain'].item():.6f}) and gradients ({check})")
        times = {v: median_time(functools.partial(step, state, v), s.repeats) for v in variants}
        state.clear()
        memory = {v: measure_in_subprocess(f"b7:{shape.name}:{v}", smoke, worker) for v in variants}
        name = f"{shape.name}: B={shape.rows} K={shape.answer} V={shape.vocab}"
        for variant in variants[1:]:
            label = f"{name} ({variant})"
            rows += [
                row("b7", label, "step peak memory (MiB)", memory["plain"]["step_mib"],
                    memory[variant]["step_mib"], "—", None, check),
                row("b7", label, "step time (s)", times["plain"], times[variant], "—", None,
                    check),
            ]  # fmt: skip
    return rows


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b7:SHAPE:VARIANT`: one step's memory."""
    _, shape, variant = key.split(":")
    memory = Memory()
    state = setup(next(x for x in s.fused if x.name == shape))
    memory.mark()
    step(state, variant)
    return memory.result()
