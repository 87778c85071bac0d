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
class ProportionalShape:
    """b9's model: LLaVA-1.5-7B's language stack (Llama-2-7B) at a reduced width, every ratio
    kept: all 32 layers, the MLP 11008/4096 of the width, the vocabulary 32000/4096 of it, head
    dimension 32 instead of 128; LLaVA-1.5's 576 image tokens + the question + the answer. The
    parameters shrink with the width squared, the activations with the width: a deep copy of
    the weights weighs (4096 / width) times less against the activations than at 7B. Sized for
    a shared 2-core CPU: width 64 (1/64 of 7B), one forget + one retain row, 144 image tokens."""

    width: int = 64
    layers: int = 32
    heads: int = 2
    batch: int = 1  # forget rows, and as many retain rows
    image_tokens: int = 144  # LLaVA-1.5 has 576: cut to a quarter for a 2-core CPU's time
    text_tokens: int = 42
    answer: int = 32
    rounds: int = 2  # timed rounds after one warm-up round

    @property
    def vocab(self) -> int:
        return round(self.width * 32000 / 4096)

    @property
    def mlp(self) -> int:
        return round(self.width * 11008 / 4096)


@dataclass(frozen=True)
class RealSizes:
    """b8's real model: rows per role and step, timed rounds, and its evaluation pass."""

    rows: int = 2  # forget rows, and as many retain rows, per step (two such sets alternate)
    rounds: int = 2
    eval_questions: int = 8
    eval_rounds: int = 2


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
    eval_questions: int = 16  # b4
    rouge_runs: int = 8
    epochs: int = 5
    forget_rows: int = 10
    gpu: GpuShape = GpuShape()
    proportional: ProportionalShape = ProportionalShape()
    real: RealSizes = RealSizes()
    budgets: tuple[int, int] = (50, 200)  # new tokens: MLLMU-Bench / VGID, open-unlearning
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
    proportional=ProportionalShape(
        32, 2, 2, batch=1, image_tokens=8, text_tokens=4, answer=3, rounds=1
    ),
    real=RealSizes(rows=2, rounds=1, eval_questions=4, eval_rounds=1),
    budgets=(4, 8),
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
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def interleaved_times(
    variants: dict[str, Callable[[int], Any]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each variant over `rounds` rounds after `warmup` untimed ones. Every
    round calls every variant once (with the round's index), the order rotated each round, so
    a busy machine slows all variants alike and no variant always runs first; the median of
    the rounds then drops the worst of them."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize()
            start = time.perf_counter()
            variants[name](index)
            synchronize()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest and highest of repeated measurements, and how many."""
    return {
        "median": statistics.median(values),
        "low": min(values),
        "high": max(values),
        "runs": len(values),
    }


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


def measure_in_subprocesses(keys: list[str], smoke: bool, worker: Worker) -> dict[str, dict]:
    """`measure_in_subprocess` for several variants at once: one fresh process each, all
    running together (peak RSS is per process, so they do not disturb each other's memory;
    the wall time is one worker's, not their sum). `smoke` runs them in this process."""
    if smoke:
        return {key: worker(key, SMOKE) for key in keys}
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    running = {
        key: subprocess.Popen(
            [sys.executable, str(BENCH), "--worker", key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for key in keys
    }
    results = {}
    for key, process in running.items():
        out, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"memory worker {key} failed:\n{err[-3000:]}")
        results[key] = json.loads(out.strip().splitlines()[-1])
    return results


def row(
    bench: str,
    shape: str,
    metric: str,
    naive_value: float | None,
    engine_value: float,
    target: str,
    goal: float | None,
    check: str,
    higher_is_better: bool = False,
    peers: dict[str, float] | None = None,
    spreads: dict[str, dict[str, float]] | None = None,
    precision: str = "fp32",
    budget: str = "—",
    caveat: str = "",
) -> dict:
    """One table row; `ratio` is how many times better the engine is (naive/engine for costs,
    engine/naive for throughput; None without a naive value); `met` compares it with `goal`
    (None: no target). `peers`: the
    same metric for the competent baselines (scripts/peer_baselines.py) by name; `best_peer` is
    the best of them and `ratio_vs_best` the engine's ratio against it. `spreads`: each
    variant's repeated measurements (`spread`). `caveat`: what the ratio depends on (a cache,
    an approximation)."""

    def better(worse: float, better: float) -> float:
        if higher_is_better:
            return better / worse if worse else float("inf")
        return worse / better if better else float("inf")

    ratio = None if naive_value is None else better(naive_value, engine_value)
    peers = {name: round(value, 4) for name, value in (peers or {}).items()}
    pick = max if higher_is_better else min
    best = pick(peers, key=peers.__getitem__) if peers else None
    return {
        "bench": bench,
        "shape": shape,
        "metric": metric,
        "naive": None if naive_value is None else round(naive_value, 4),
        "engine": round(engine_value, 4),
        "ratio": None if ratio is None else round(ratio, 3),
        "peers": peers,
        "best_peer": best,
        "ratio_vs_best": None if best is None else round(better(peers[best], engine_value), 3),
        "spreads": {
            name: {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}
            for name, values in (spreads or {}).items()
        },
        "precision": precision,
        "budget": budget,
        "caveat": caveat,
        "target": target,
        "met": None if goal is None or ratio is None else bool(ratio >= goal),
        "check": check,
    }


# --- random Llama-style models (b1, b7) --------------------------------------------------------


def random_llama(
    vocab: int, width: int, layers: int, length: int, mlp: int | None = None, heads: int = 4
) -> torch.nn.Module:
    """A Llama-style causal LM with random weights (seeded), long enough for `length` tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=mlp or 2 * width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
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
