"""Engine vs naive loops: memory and time of the engine's choices, checked equal first.

Usage: python scripts/bench.py [--only b1,b4] [--smoke] [--output runs/bench/bench.json]

Each comparison runs both sides in one process on the same inputs and seeds, FIRST asserts that
they compute the same numbers (the tolerance is printed), then times them. Memory on CPU is the
peak RSS of a fresh subprocess per variant (glibc told to return freed blocks with
MALLOC_MMAP_THRESHOLD_=65536): `step` is the peak during one training step above the RSS before
it, `total` the peak above the RSS after imports (model, copies and step). On a GPU it is
torch.cuda.max_memory_allocated instead. The naive side is scripts/naive_reference.py.

  b1  loss memory/time: answer-position logits + the engine's KL vs all-position log-softmax KL
  b2  teacher sharing: LoRA adapters disabled for the teacher vs a deep-copied teacher
  b3  a full VGID step (forget + retain, LoRA) vs the naive loop, on two model shapes
  b4  evaluation: batched left-padded generation vs one at a time; ROUGE-L throughput;
      multiple-choice options scored with their shared image prefix once
  b5  teacher amortisation: targets cached per example, and each image's prefix encoded
      once per batch, batched draws, top-k targets, vs the teacher recomputed at every step
  b6  GPU only: a VGID LoRA step on a LLaVA-7B-shaped model in bf16 vs the naive loop:
      samples/s, peak memory and model FLOPs utilisation (skipped on a CPU unless --smoke)
  b7  the fused head (train.fused_head): a distillation term computed from hidden states one
      chunk of logits at a time vs the engine's plain answer logits (and, on a GPU with
      liger-kernel, Liger's fused linear KL)
`--smoke` runs everything at tiny sizes in seconds (tests/scripts/test_bench.py runs it).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import dataclasses
import datetime
import functools
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

# this checkout's package and the yardstick beside this file, whatever is installed
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import naive_reference as naive  # noqa: E402

from mmunlearn.data.splits import group_by_role  # noqa: E402
from mmunlearn.evaluation import metrics  # noqa: E402
from mmunlearn.evaluation.generate import generate_answers  # noqa: E402
from mmunlearn.evaluation.scoring import Query, score_answers  # noqa: E402
from mmunlearn.losses.divergences import ForwardKL, masked_mean  # noqa: E402
from mmunlearn.losses.fused import fused_term_value, liger_available  # noqa: E402
from mmunlearn.losses.objective import build_method, term_value  # noqa: E402
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder, answer_length  # noqa: E402
from mmunlearn.models.forward import answer_logits, hidden_states_out  # noqa: E402
from mmunlearn.models.loading import LoadedModel  # noqa: E402
from mmunlearn.models.tiny import TinyLlavaConfig  # noqa: E402
from mmunlearn.teachers.cache import TeacherCache  # noqa: E402
from mmunlearn.teachers.icu import reencoded  # noqa: E402
from mmunlearn.teachers.targets import TeacherContext, TokenTargets, to_device  # noqa: E402
from mmunlearn.teachers.visual_noise import noised_batch  # noqa: E402
from mmunlearn.training.config import TrainConfig  # noqa: E402
from mmunlearn.training.run import add_lora  # noqa: E402
from mmunlearn.training.samplers import group_by_image, one_to_one_random  # noqa: E402
from mmunlearn.training.trainer import (  # noqa: E402
    RoleCollator,
    UnlearnTrainer,
    frozen_model,
    frozen_teacher,
)

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


def measure_in_subprocess(key: str, smoke: bool) -> dict[str, float]:
    """Run `key`'s variant alone in a fresh Python process and return its memory. `smoke`
    checks the code path only: one worker (b1's engine) still gets its own process, the others
    run in this one (each process spends seconds importing)."""
    if smoke and key not in ("b1:engine", "b6:engine"):
        return worker(key, SMOKE)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    command = [sys.executable, __file__, "--worker", key] + (["--smoke"] if smoke else [])
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


# --- b1: answer-position logits ----------------------------------------------------------------


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


def b1_setup(s: Sizes) -> dict[str, Any]:
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


def b1_engine(state: dict[str, Any]) -> torch.Tensor:
    model = state["model"]
    ctx = TeacherContext(frozen=lambda: contextlib.nullcontext(model), encoder=None)
    logits, labels = answer_logits(model, state["batch"])  # (B, K, V)
    targets = TokenTargets(
        mask=labels != IGNORE_INDEX, logprobs=ctx.logprobs(state["teacher_batch"], labels)
    )
    return masked_mean(ForwardKL()(logits, targets), targets.mask)


def b1_naive(state: dict[str, Any]) -> torch.Tensor:
    model = state["model"]
    return naive.distillation_loss(model, model, state["batch"], state["teacher_batch"])


def b1_step(state: dict[str, Any], variant: str) -> torch.Tensor:
    state["model"].zero_grad(set_to_none=True)
    loss = (b1_engine if variant == "engine" else b1_naive)(state)
    loss.backward()
    return loss


def b1(s: Sizes, smoke: bool) -> list[dict]:
    state = b1_setup(s)
    losses, grads = {}, {}
    for variant in ("engine", "naive"):
        losses[variant] = b1_step(state, variant).detach()
        grads[variant] = [p.grad.clone() for p in state["model"].parameters()]
    torch.testing.assert_close(losses["engine"], losses["naive"], rtol=1e-4, atol=1e-6)
    for a, b in zip(grads["engine"], grads["naive"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
    check = "loss rtol 1e-4 atol 1e-6, gradients rtol 1e-3 atol 1e-6"
    print(f"b1: same loss ({losses['engine'].item():.6f}) and gradients ({check})")
    times = {v: median_time(lambda v=v: b1_step(state, v), s.repeats) for v in ("naive", "engine")}
    state.clear()
    memory = {v: measure_in_subprocess(f"b1:{v}", smoke) for v in ("naive", "engine")}
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


# --- shared by b2, b3, b5: a LLaVA-style student on the tiny world -----------------------------


@functools.cache
def world_examples(kind: str) -> list:
    """The tests' tiny world or the demo's default one, written once per process."""
    from mmunlearn.data.jsonl import load_examples
    from mmunlearn.data.world import WorldConfig, build_world, save_world
    from mmunlearn.testing import TINY_WORLD

    directory = Path(tempfile.mkdtemp(prefix=f"bench-world-{kind}-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    save_world(build_world(TINY_WORLD if kind == "tiny" else WorldConfig()), directory)
    return load_examples(directory)


def llava(examples: list, s: Sizes, shape: Shape) -> LoadedModel:
    from mmunlearn.testing import tiny_llava

    config = TinyLlavaConfig(
        image_size=s.image_size,
        patch_size=s.patch,
        vision_width=32,
        vision_layers=1,
        text_width=shape.width,
        text_layers=shape.layers,
        heads=4,
    )
    loaded = tiny_llava(examples, seed=0, config=config)
    # the words of the world use the first few hundred ids; the output head has `vocab` rows
    vocab = max(shape.vocab, len(loaded.tokenizer))
    loaded.model.resize_token_embeddings(vocab, mean_resizing=False)
    return loaded


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)  # the same adapter initialisation on both sides
    return add_lora(model, TrainConfig(lora=True)).to(DEVICE)


def vgid_inputs(examples: list, encoder: PromptEncoder, rows: int) -> dict[str, Any]:
    by_role = group_by_role(examples)
    forget = [ex for ex in by_role["forget"] if ex.image is not None][:rows]
    retain = [ex for ex in by_role["retain"] if ex.image is not None][:rows]
    items = [{"forget": f, "retain": r} for f, r in zip(forget, retain, strict=True)]
    batches = RoleCollator(encoder, batch_roles=("forget", "retain"))(items)
    return {role: to_device(batch, DEVICE) for role, batch in batches.items()}


def engine_trainer(
    model: torch.nn.Module,
    encoder: PromptEncoder,
    terms: tuple,
    adapters_off: bool,
    directory: str,
    cache: TeacherCache | None = None,
    share_prefix: bool = False,
) -> UnlearnTrainer:
    from transformers import TrainingArguments

    ctx = TeacherContext(
        frozen=frozen_teacher(model, use_adapter_off=adapters_off, device=DEVICE),
        encoder=encoder,
        share_prefix=share_prefix,
    )
    args = TrainingArguments(directory, report_to="none", use_cpu=DEVICE.type == "cpu")
    return UnlearnTrainer(
        model=model,
        args=args,
        terms=terms,
        teacher_context=ctx,
        teacher_cache=cache,
        share_prefix=share_prefix,
    )


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def optimizer_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor
) -> None:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class VgidSides:
    """The engine's and the naive loop's VGID step on copies of one base model."""

    def __init__(
        self,
        s: Sizes,
        shape: Shape | None,
        directory: Path,
        variants: tuple[str, ...],
        base: LoadedModel | None = None,
        rows: int | None = None,
    ) -> None:
        self.examples = world_examples("tiny")
        base = base or llava(self.examples, s, shape)
        self.encoder = PromptEncoder(base, max_length=2048)
        self.inputs = vgid_inputs(self.examples, self.encoder, rows or s.batch)
        self.terms = build_method("vgid").terms
        self.models, self.steps, self.trainers = {}, {}, {}
        for variant in variants:
            model = base.model if variant == variants[-1] else copy.deepcopy(base.model)
            if variant == "naive":
                teacher = naive.deep_copied_teacher(model).to(DEVICE)
                student = with_lora(model).train()
                self.steps[variant] = self._naive_step(student, teacher)
            else:
                student = with_lora(model).train()
                trainer = engine_trainer(
                    student,
                    self.encoder,
                    self.terms,
                    variant != "deep_copy",
                    str(directory / variant),
                )
                self.steps[variant] = self._engine_step(trainer, student)
                self.trainers[variant] = trainer
            self.models[variant] = student

    def _engine_step(self, trainer: UnlearnTrainer, student: torch.nn.Module) -> Callable:
        optimizer = torch.optim.AdamW(trainable(student).values(), lr=LR)

        def step() -> float:
            loss = trainer.compute_loss(student, self.inputs)
            optimizer_step(student, optimizer, loss)
            return loss.item()

        return step

    def _naive_step(self, student: torch.nn.Module, teacher: torch.nn.Module) -> Callable:
        optimizer = torch.optim.AdamW(trainable(student).values(), lr=LR)
        vgid = self.terms[0].teacher
        ctx = TeacherContext(frozen=None, encoder=self.encoder)

        def step() -> float:
            forget, retain = self.inputs["forget"], self.inputs["retain"]
            # the teacher's inputs: the engine's own helpers, so both sides see the same pixels
            noised = noised_batch(ctx, reencoded(ctx, forget, vgid.prompt), vgid.noise, 0)
            loss = naive.distillation_loss(student, teacher, forget, to_device(noised, DEVICE))
            loss = loss + naive.distillation_loss(student, teacher, retain, retain)
            optimizer_step(student, optimizer, loss)
            return loss.item()

        return step


def parameter_bytes(*models: torch.nn.Module) -> int:
    """Bytes of the distinct parameter storages of `models` (shared weights counted once)."""
    seen = {}
    for model in models:
        for p in model.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
    return sum(seen.values())


# --- b2: teacher sharing -----------------------------------------------------------------------


def b2(s: Sizes, smoke: bool) -> list[dict]:
    shape = s.shapes[1]
    with tempfile.TemporaryDirectory() as tmp:
        sides = VgidSides(s, shape, Path(tmp), ("deep_copy", "adapters_off"))
        shared = parameter_bytes(sides.models["adapters_off"])
        with sides.trainers["deep_copy"].teacher_context.frozen() as teacher:
            copied = parameter_bytes(sides.models["deep_copy"], teacher)
        losses = {v: sides.steps[v]() for v in ("deep_copy", "adapters_off")}
    check_text = "step-1 loss rtol 1e-5"
    torch.testing.assert_close(losses["adapters_off"], losses["deep_copy"], rtol=1e-5, atol=1e-7)
    print(f"b2: same step-1 loss ({losses['adapters_off']:.6f}, {check_text})")
    memory = {v: measure_in_subprocess(f"b2:{v}", smoke) for v in ("deep_copy", "adapters_off")}
    name = f"{shape.name} (width {shape.width}, vocab {shape.vocab})"
    bytes_row = row(
        "b2",
        name,
        "parameter MiB (student + teacher)",
        copied / 2**20,
        shared / 2**20,
        "engine <= 0.52 of two copies",
        1 / 0.52,
        check_text,
    )
    return [
        bytes_row,
        row(
            "b2",
            name,
            "peak memory, build + step (MiB)",
            memory["deep_copy"]["total_mib"],
            memory["adapters_off"]["total_mib"],
            "—",
            None,
            check_text,
        ),
    ]


# --- b3: a full VGID step ----------------------------------------------------------------------


def b3(s: Sizes, smoke: bool) -> list[dict]:
    rows = []
    goals = {s.shapes[0].name: (1.8, 3.0), s.shapes[1].name: (1.0, 1.15)}
    for shape in s.shapes:
        with tempfile.TemporaryDirectory() as tmp:
            sides = VgidSides(s, shape, Path(tmp), ("naive", "engine"))
            losses = {v: [] for v in ("naive", "engine")}
            times = {v: [] for v in ("naive", "engine")}
            for _ in range(3):
                for variant in ("naive", "engine"):
                    start = time.perf_counter()
                    losses[variant].append(sides.steps[variant]())
                    times[variant].append(time.perf_counter() - start)
            torch.testing.assert_close(
                losses["engine"][0], losses["naive"][0], rtol=1e-4, atol=1e-6
            )
            after = {v: trainable(sides.models[v]) for v in ("naive", "engine")}
            for name, value in after["engine"].items():
                torch.testing.assert_close(value, after["naive"][name], rtol=1e-4, atol=1e-5)
        check = "step-1 loss rtol 1e-4 atol 1e-6; LoRA weights after 3 steps rtol 1e-4 atol 1e-5"
        print(
            f"b3 {shape.name}: same step-1 loss ({losses['engine'][0]:.6f}) and weights ({check})"
        )
        memory = {
            v: measure_in_subprocess(f"b3:{shape.name}:{v}", smoke) for v in ("naive", "engine")
        }
        speed, less = goals[shape.name]
        name = f"{shape.name} (width {shape.width}, vocab {shape.vocab})"
        rows += [
            row(
                "b3",
                name,
                "step time (s)",
                statistics.median(times["naive"]),
                statistics.median(times["engine"]),
                f">= {speed}x faster",
                speed,
                check,
            ),
            row(
                "b3",
                name,
                "peak memory, build + step (MiB)",
                memory["naive"]["total_mib"],
                memory["engine"]["total_mib"],
                f">= {less}x less",
                less,
                check,
            ),
        ]
    return rows


# --- b4: evaluation ----------------------------------------------------------------------------


def b4_option_scoring(s: Sizes) -> list[dict]:
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


def b4(s: Sizes, smoke: bool) -> list[dict]:
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
    mcq = b4_option_scoring(s)
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


# --- b5: teacher amortisation ------------------------------------------------------------------


def b5(s: Sizes, smoke: bool) -> list[dict]:
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
        b5_draws(s, base, encoder, batches[0]["forget"]),
        b5_top_k(s, base, encoder, terms[0].teacher, batches),
    ]


def b5_top_k(s: Sizes, base: LoadedModel, encoder: PromptEncoder, teacher, batches) -> dict:
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


def b5_draws(s: Sizes, base: LoadedModel, encoder: PromptEncoder, batch: dict) -> dict:
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


# --- b6: a LLaVA-7B-shaped VGID LoRA step on a GPU: samples/s, memory, MFU --------------------

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


def b6_worker(s: Sizes, variant: str) -> dict[str, float]:
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


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def mfu(result: dict[str, float]) -> float:
    """(teacher tokens · 2N + student tokens · 4N, LoRA) / (step seconds · peak FLOP/s)."""
    n = result["params"]
    flops = result["teacher_tokens"] * 2 * n + result["student_tokens"] * 4 * n
    return flops / (result["seconds"] * PEAK_FLOPS)


def b6(s: Sizes, smoke: bool) -> list[dict]:
    if DEVICE.type != "cuda" and not smoke:
        print("b6: needs a CUDA GPU (a LLaVA-7B-shaped model); skipped on this CPU")
        return []
    sides = {v: measure_in_subprocess(f"b6:{v}", smoke) for v in ("naive", "engine")}
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


# --- b7: the fused head ------------------------------------------------------------------------


def b7_setup(shape: FusedShape) -> dict[str, Any]:
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


def b7_step(state: dict[str, Any], variant: str) -> torch.Tensor:
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


def b7_variants() -> tuple[str, ...]:
    return ("plain", "chunked", "liger") if liger_available() else ("plain", "chunked")


def b7(s: Sizes, smoke: bool) -> list[dict]:
    rows = []
    for shape in s.fused:
        state = b7_setup(shape)
        variants = b7_variants()
        losses, grads = {}, {}
        for variant in variants:
            losses[variant] = b7_step(state, variant)
            grads[variant] = [p.grad.clone() for p in state["model"].parameters()]
        tolerance = (1e-3, 1e-5) if DEVICE.type == "cuda" else (1e-4, 1e-6)
        for variant in variants[1:]:
            torch.testing.assert_close(losses[variant], losses["plain"], rtol=1e-5, atol=1e-6)
            for a, b in zip(grads[variant], grads["plain"], strict=True):
                torch.testing.assert_close(a, b, rtol=tolerance[0], atol=tolerance[1])
        grads.clear()
        check = f"loss rtol 1e-5, gradients rtol {tolerance[0]} atol {tolerance[1]}"
        print(f"b7 {shape.name}: same loss ({losses['plain'].item():.6f}) and gradients ({check})")
        times = {v: median_time(functools.partial(b7_step, state, v), s.repeats) for v in variants}
        state.clear()
        memory = {v: measure_in_subprocess(f"b7:{shape.name}:{v}", smoke) for v in variants}
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


BENCHES = {"b1": b1, "b2": b2, "b3": b3, "b4": b4, "b5": b5, "b6": b6, "b7": b7}


# --- memory workers: one variant per fresh process ----------------------------------------------


def worker(key: str, s: Sizes) -> dict[str, float]:
    bench, *rest = key.split(":")
    variant = rest[-1]
    if bench == "b6":
        return b6_worker(s, variant)
    memory = Memory()
    if bench == "b1":
        state = b1_setup(s)
        memory.mark()
        b1_step(state, variant)
        return memory.result()
    if bench == "b7":
        state = b7_setup(next(x for x in s.fused if x.name == rest[0]))
        memory.mark()
        b7_step(state, variant)
        return memory.result()
    shape = s.shapes[1] if bench == "b2" else next(x for x in s.shapes if x.name == rest[0])
    with tempfile.TemporaryDirectory() as tmp:
        sides = VgidSides(s, shape, Path(tmp), (variant,))
        memory.mark()
        sides.steps[variant]()
        return memory.result()


def print_table(rows: list[dict]) -> None:
    header = ("bench", "shape", "metric", "naive", "engine", "ratio", "target", "met")
    lines = [header] + [tuple(str(r[k]) for k in header) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="e.g. b1,b4")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not numbers")
    parser.add_argument("--output", default="runs/bench/bench.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    if args.worker:
        print(json.dumps(worker(args.worker, sizes)))
        return
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        parser.error(f"--only: unknown {unknown}; expected some of {', '.join(BENCHES)}")
    rows = []
    for name in chosen:
        rows += BENCHES[name](sizes, args.smoke)
    print_table(rows)
    report = {
        "date": datetime.date.today().isoformat(),
        "device": str(DEVICE),
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU"
        if DEVICE.type == "cpu"
        else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "command": " ".join(["python", "scripts/bench.py", *sys.argv[1:]]),
        "sizes": asdict(sizes),
        "rows": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
