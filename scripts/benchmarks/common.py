"""What every comparison of scripts/bench.py shares: the sizes (full and smoke), the device,
how time and memory are measured, one row of the table, and random Llama-style models.

Memory on CPU is the peak RSS of a fresh subprocess per variant (glibc told to return freed
blocks with MALLOC_MMAP_THRESHOLD_=65536): `step` is the peak during one training step above the
RSS before it, `total` the peak above the RSS after imports (model, copies and step). On a GPU it
is torch.cuda.max_memory_allocated instead.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmunlearn.models.encoding import IGNORE_INDEX

BENCH = Path(__file__).resolve().parents[1] / "bench.py"  # the entry point runs the workers
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
LR = 1e-3


@dataclass(frozen=True)
class Shape:
    """A LLaVA-style student: CLIP-like vision tower + Llama-style text model."""

    name: str
    width: int
    layers: int
    vocab: int


@dataclass(frozen=True)
class GpuShape:
    """b6's model: LLaVA-1.5-7B's shape (CLIP ViT-L/14 at 336 px + Llama-2-7B), random weights."""

    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_mlp: int = 4096
    text_width: int = 4096
    text_layers: int = 32
    text_heads: int = 32
    text_mlp: int = 11008
    vocab: int = 32064
    batch: int = 8  # forget rows, and as many retain rows
    steps: int = 5  # timed, after 2 warm-up steps


@dataclass(frozen=True)
class FusedShape:
    """b7's step: B rows of T tokens whose last K carry the term, a V-token vocabulary."""

    name: str
    rows: int
    length: int
    answer: int  # K; length - 1 is every position (the VGID authors' all-position KL)
    vocab: int
    width: int = 256


@dataclass(frozen=True)
class Sizes:
    batch: int = 4
    image_tokens: int = 576  # LLaVA-1.5: 336 px / 14 px patches = 24² tokens
    text_tokens: int = 42
    answer: int = 32
    vocab: int = 32000
    width: int = 256
    layers: int = 2
    repeats: int = 3
    image_size: int = 336
    patch: int = 14
    shapes: tuple[Shape, ...] = (
        Shape("tiny_32k_vocab", 128, 2, 32000),
        Shape("llava7b_ratio", 512, 2, 4000),  # vocab / hidden = 7.8, as LLaVA-7B's 32000/4096
    )
    world: str = "default"  # b4's evaluation world: the demo's default or the tests' tiny one
    eval_questions: int = 128
    rouge_runs: int = 8
    epochs: int = 5
    forget_rows: int = 10
    gpu: GpuShape = GpuShape()
    fused: tuple[FusedShape, ...] = (
        FusedShape("all positions, LLaVA vocab", 4, 650, 649, 32000),
        FusedShape("long answers, Llama-3 vocab", 8, 288, 256, 128256),
    )


FULL = Sizes()
SMOKE = Sizes(
    batch=2,
    image_tokens=16,
    text_tokens=8,
    answer=4,
    vocab=512,
    width=32,
    layers=1,
    repeats=1,
    image_size=32,
    patch=16,
    shapes=(Shape("tiny_32k_vocab", 32, 1, 512), Shape("llava7b_ratio", 64, 1, 500)),
    world="tiny",
    eval_questions=6,
    rouge_runs=2,
    epochs=2,
    forget_rows=4,
    gpu=GpuShape(32, 1, 4, 64, 64, 1, 4, 128, 600, batch=2, steps=1),
    fused=(FusedShape("smoke", 2, 24, 23, 700, 32),),
)


# --- measuring -------------------------------------------------------------------------------

Worker = Callable[[str, Sizes], dict[str, float]]  # a variant's key → its memory (and more)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


class Memory:
    """Peak memory above a start point and above a mark (CPU: RSS; CUDA: allocated bytes)."""

    def __init__(self) -> None:
        self.start = self.now()
        self.marked = self.start
        self.peak_before_mark = self.start

    def now(self) -> float:
        if DEVICE.type == "cuda":
            return torch.cuda.memory_allocated() / 2**20
        return _status_mib("VmRSS")

    def peak(self) -> float:
        if DEVICE.type == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        return _status_mib("VmHWM")

    def mark(self) -> None:
        """Start a step: the peak so far is remembered, then reset (Linux: clear_refs 5)."""
        self.peak_before_mark = self.peak()
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")
        self.marked = self.now()

    def result(self) -> dict[str, float]:
        peak = self.peak()
        return {
            "step_mib": peak - self.marked,
            "total_mib": max(peak, self.peak_before_mark) - self.start,
        }


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    times = []
    for _ in range(warmup + repeats):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def measure_in_subprocess(key: str, smoke: bool, worker: Worker) -> dict[str, float]:
    """Run `key`'s variant alone in a fresh Python process (`bench.py --worker KEY` calls the
    benchmark's `worker`) and return its memory. `smoke` checks the code path only: one worker
    (b1's engine) still gets its own process, the others run in this one (each process spends
    seconds importing)."""
    if smoke and key not in ("b1:engine", "b6:engine"):
        return worker(key, SMOKE)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    command = [sys.executable, str(BENCH), "--worker", key] + (["--smoke"] if smoke else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"memory worker {key} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(
    bench: str,
    shape: str,
    metric: str,
    naive_value: float,
    engine_value: float,
    target: str,
    goal: float | None,
    check: str,
    higher_is_better: bool = False,
) -> dict:
    """One table row; `ratio` is how many times better the engine is (naive/engine for costs,
    engine/naive for throughput); `met` compares it with `goal` (None: no target)."""
    if higher_is_better:
        ratio = engine_value / naive_value
    else:
        ratio = naive_value / engine_value if engine_value else float("inf")
    return {
        "bench": bench,
        "shape": shape,
        "metric": metric,
        "naive": round(naive_value, 4),
        "engine": round(engine_value, 4),
        "ratio": round(ratio, 3),
        "target": target,
        "met": None if goal is None else bool(ratio >= goal),
        "check": check,
    }


# --- random Llama-style models (b1, b7) --------------------------------------------------------


def random_llama(vocab: int, width: int, layers: int, length: int) -> torch.nn.Module:
    """A Llama-style causal LM with random weights (seeded), long enough for `length` tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=length + 8,
    )
    return LlamaForCausalLM(config).to(DEVICE)


def random_answer_batch(
    rows: int, length: int, answer: int, vocab: int, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random token rows without padding whose last `answer` tokens are the labels."""
    input_ids = torch.randint(5, vocab, (rows, length), generator=gen)  # (B, T)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, -answer:] = input_ids[:, -answer:]
    mask = torch.ones_like(input_ids)
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "position_ids": mask.cumsum(-1) - 1,
        "labels": labels,
    }


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
