"""b6 — GPU only: a VGID LoRA step on a LLaVA-7B-shaped model (random weights) in bf16, the
engine vs the naive loop: samples/s, peak memory and model FLOPs utilisation (skipped on a CPU
unless --smoke). Each side runs in its own process."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import (
    DEVICE,
    Memory,
    Shape,
    Sizes,
    measure_in_subprocess,
    row,
    synchronize,
)
from benchmarks.tiny_world import VgidSides, llava, world_examples
from mmunlearn.models.loading import LoadedModel
from mmunlearn.teachers.icu import reencoded
from mmunlearn.teachers.targets import TeacherContext

PEAK_FLOPS = 989e12  # H100/H200 dense bf16


def llava_shaped(s: Sizes) -> LoadedModel:
    """`s.gpu`'s shape with the tiny world's tokenizer and processor (336 px, 576 image tokens);
    bf16 on a GPU, float32 on a CPU."""
    m = s.gpu
    small = llava(world_examples("tiny"), s, Shape("processor", 32, 1, 0))
    config = small.model.config
    config.vision_config.update(
        {"hidden_size": m.vision_width, "num_hidden_layers": m.vision_layers,
         "num_attention_heads": m.vision_heads, "intermediate_size": m.vision_mlp}
    )  # fmt: skip
    config.text_config.update(
        {"hidden_size": m.text_width, "num_hidden_layers": m.text_layers,
         "num_attention_heads": m.text_heads, "num_key_value_heads": m.text_heads,
         "head_dim": m.text_width // m.text_heads, "intermediate_size": m.text_mlp,
         "vocab_size": m.vocab}
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = type(small.model)(config)
    dtype = torch.bfloat16 if DEVICE.type == "cuda" else torch.float32
    return LoadedModel(model.to(dtype), small.processor, "vision_language")


def side(s: Sizes, variant: str) -> dict[str, float]:
    """One side's VGID LoRA step (forget + retain): loss at step 1, seconds per step, peak
    memory and the tokens the MFU formula counts."""
    base = llava_shaped(s)
    params = sum(p.numel() for p in base.model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        sides = VgidSides(s, None, Path(tmp), (variant,), base=base, rows=s.gpu.batch)
        step = sides.steps[variant]
        memory = Memory()
        first = step()
        step()
        times = []
        for _ in range(s.gpu.steps):
            synchronize()
            start = time.perf_counter()
            step()
            synchronize()
            times.append(time.perf_counter() - start)
        forget, retain = sides.inputs["forget"], sides.inputs["retain"]
        vgid = sides.terms[0].teacher
        ctx = TeacherContext(frozen=None, encoder=sides.encoder)
        teacher_forget = reencoded(ctx, forget, vgid.prompt)
        student_tokens = int(forget["attention_mask"].sum() + retain["attention_mask"].sum())
        teacher_tokens = int(
            teacher_forget["attention_mask"].sum() + retain["attention_mask"].sum()
        )
        return {
            "loss": first,
            "seconds": statistics.median(times),
            "peak_gib": memory.peak() / 1024,
            "params": params,
            "student_tokens": student_tokens,
            "teacher_tokens": teacher_tokens,
            "rows": len(forget["input_ids"]) + len(retain["input_ids"]),
        }


def mfu(result: dict[str, float]) -> float:
    """(teacher tokens · 2N + student tokens · 4N, LoRA) / (step seconds · peak FLOP/s)."""
    n = result["params"]
    flops = result["teacher_tokens"] * 2 * n + result["student_tokens"] * 4 * n
    return flops / (result["seconds"] * PEAK_FLOPS)


def run(s: Sizes, smoke: bool) -> list[dict]:
    if DEVICE.type != "cuda" and not smoke:
        print("b6: needs a CUDA GPU (a LLaVA-7B-shaped model); skipped on this CPU")
        return []
    sides = {v: measure_in_subprocess(f"b6:{v}", smoke, worker) for v in ("naive", "engine")}
    tolerance = 5e-2 if DEVICE.type == "cuda" else 1e-4  # bf16 on a GPU
    losses = (sides["engine"]["loss"], sides["naive"]["loss"])
    if abs(losses[0] - losses[1]) > tolerance * max(abs(losses[1]), 1e-6):
        raise AssertionError(f"b6: step-1 losses differ: engine {losses[0]}, naive {losses[1]}")
    check = f"same step-1 loss (rtol {tolerance}): {losses[0]:.5g} vs {losses[1]:.5g}"
    print(f"b6: {check}")
    m = s.gpu
    params = sides["engine"]["params"] / 1e9
    name = f"LLaVA-7B shape ({params:.2f}B), {m.batch}+{m.batch} rows"
    rows_per_step = sides["engine"]["rows"]
    return [
        row("b6", name, "samples/s", rows_per_step / sides["naive"]["seconds"],
            rows_per_step / sides["engine"]["seconds"], "—", None, check, higher_is_better=True),
        row("b6", name, "peak memory (GiB)", sides["naive"]["peak_gib"],
            sides["engine"]["peak_gib"], "—", None, check),
        row("b6", name, "MFU (989 TFLOP/s peak)", mfu(sides["naive"]), mfu(sides["engine"]),
            ">= 40% MFU" if DEVICE.type == "cuda" else "— (CPU)", None, check,
            higher_is_better=True),
    ]  # fmt: skip


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b6:VARIANT`: that side's step, measured."""
    return side(s, key.split(":")[-1])
