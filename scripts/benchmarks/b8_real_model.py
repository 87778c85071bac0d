"""b8 — a real model: one LoRA (rank 8) KL step of SmolLM2-135M-Instruct (30 layers, a tied
49152-token head) on 8 forget + 8 retain questions of data/real_knowledge in its chat template,
as kl_min/vgid-style terms take it: forward KL(teacher ‖ student) at the answer positions, the
teacher being the student with its adapters disabled. Compares the naive loop (student and
teacher logits at every position, log-softmax everywhere, KL taken at the answers) with the
engine (answer-position logits); splits the engine's step into the teacher forwards, the
student's forward+backward and the output head; and times the step with the teacher's targets
cached once per example (`train.cache_teacher=true`). `--smoke` uses the tiny SmolLM2-convention
Llama; full size skips with a message when the checkpoint is absent."""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import naive_reference as naive
import torch

from benchmarks.common import DEVICE, Sizes, row, synchronize
from mmunlearn.data.jsonl import load_examples
from mmunlearn.losses.divergences import ForwardKL, masked_mean
from mmunlearn.models.encoding import PromptEncoder, answer_length, model_inputs
from mmunlearn.models.forward import answer_logits, hidden_states_out
from mmunlearn.models.loading import load_model
from mmunlearn.models.sources import models_dir
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.simple import BaseTeacher
from mmunlearn.teachers.targets import TeacherContext, to_device
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora
from mmunlearn.training.trainer import frozen_teacher

MODEL = "smollm2-135m-instruct"
DATA = Path(__file__).resolve().parents[2] / "data" / "real_knowledge"
ROWS = 8  # forget rows, and as many retain rows
# LoRA's B starts at zero: the student would equal the teacher (loss and gradients 0); a small
# random B stands for an adapter a few steps into training
LORA_B_STD = 2e-2
KL = ForwardKL()


def setup(smoke: bool, rows: int) -> dict[str, Any] | None:
    """The model with LoRA, its teacher context and one forget and one retain batch."""
    data = {r: load_examples(DATA / f"{r}.jsonl")[:rows] for r in ("forget", "retain")}
    if smoke:
        loaded = tiny_family("smollm2", data["forget"] + data["retain"])
    else:
        path = models_dir() / MODEL
        if not path.exists():
            print(f"b8: skipped — no {path} (make it with `mmunlearn get-model {MODEL}`)")
            return None
        loaded = load_model(path)
    torch.manual_seed(0)
    model = add_lora(loaded.model.to(DEVICE), TrainConfig(lora=True)).eval()
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=LORA_B_STD)
    encoder = PromptEncoder(loaded)
    encoded = {role: [encoder.encode(ex) for ex in examples] for role, examples in data.items()}
    batches = {role: to_device(encoder.collate(data[role], encoded[role]), DEVICE) for role in data}
    ctx = TeacherContext(frozen=frozen_teacher(model, use_adapter_off=True), encoder=encoder)
    return {"model": model, "ctx": ctx, "batches": batches, "encoded": encoded}


def answers(batch: dict[str, Any]) -> torch.Tensor:
    return batch["labels"][:, -answer_length(batch["labels"]) :]  # (B, K)


def naive_step(state: dict[str, Any]) -> torch.Tensor:
    """Peers' loop: whole-sequence logits for teacher and student, KL at the answers."""
    model = state["model"]
    model.zero_grad(set_to_none=True)
    loss = 0.0
    for batch in state["batches"].values():
        with torch.no_grad(), model.disable_adapter():
            teacher_logits = model(**model_inputs(batch)).logits  # (B, T, V)
        student_logits = model(**model_inputs(batch)).logits  # (B, T, V)
        loss = loss + naive.kl_all_positions(student_logits, teacher_logits, batch["labels"])
    loss.backward()
    return loss.detach()


def teacher_targets(state: dict[str, Any], cache: TeacherCache | None = None) -> dict:
    """The base teacher's float32 log-probs at each batch's answer positions (from `cache`)."""
    teacher, ctx = BaseTeacher(), state["ctx"]
    if cache is None:
        return {r: teacher.build(ctx, b, answers(b)) for r, b in state["batches"].items()}
    return {
        r: cache.build(teacher, ctx, b, answers(b), scope=r) for r, b in state["batches"].items()
    }


def student_step(state: dict[str, Any], targets: dict) -> torch.Tensor:
    """The student's part of the engine's step: answer logits, KL to `targets`, backward."""
    model = state["model"]
    model.zero_grad(set_to_none=True)
    loss = 0.0
    for role, batch in state["batches"].items():
        logits, _ = answer_logits(model, batch)  # (B, K, V)
        loss = loss + masked_mean(KL(logits, targets[role]), targets[role].mask)
    loss.backward()
    return loss.detach()


def engine_step(state: dict[str, Any], cache: TeacherCache | None = None) -> torch.Tensor:
    return student_step(state, teacher_targets(state, cache))


def naive_teacher(state: dict[str, Any]) -> None:
    model = state["model"]
    with torch.inference_mode(), model.disable_adapter():
        for batch in state["batches"].values():
            torch.log_softmax(model(**model_inputs(batch)).logits.float(), -1)  # (B, T, V)


def head_pass(head: Callable, hidden: dict[str, torch.Tensor]) -> None:
    """The output head alone, forward and backward: logits = hidden @ embedding.T, log-softmax."""
    for states in hidden.values():
        states = states.detach().requires_grad_(True)  # (B, P, H)
        torch.log_softmax(head(states).float(), -1).sum().backward()  # (B, P, V)


def final_hidden(state: dict[str, Any], all_positions: bool) -> tuple[Callable, dict]:
    """The head and the final hidden states at every position or at the answer positions."""
    model, hidden = state["model"], {}
    with torch.no_grad(), hidden_states_out(model) as head:
        for role, batch in state["batches"].items():
            hidden[role] = (
                model(**model_inputs(batch)).logits
                if all_positions
                else answer_logits(model, batch)[0]
            )
    return head, hidden


def interleaved_medians(variants: dict[str, Callable], repeats: int) -> dict[str, float]:
    """`repeats` rounds of all variants in turn (the checks' steps warmed them up): a busy
    machine slows every variant alike and the median drops the worst rounds."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            synchronize()
            start = time.perf_counter()
            fn()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def check_equal(state: dict[str, Any], cache: TeacherCache) -> tuple[str, str]:
    """First steps: naive and engine give the same loss and LoRA gradients (the engine's
    teacher runs and fills `cache`); the next engine step, from the cache, the same loss."""
    lora = [p for p in state["model"].parameters() if p.requires_grad]
    losses, grads = {}, {}
    for variant, step in (("naive", naive_step), ("engine", engine_step)):
        losses[variant] = step(state, cache) if variant == "engine" else step(state)
        grads[variant] = [p.grad.clone() for p in lora]
    torch.testing.assert_close(losses["engine"], losses["naive"], rtol=1e-4, atol=0.0)
    # atol for gradient entries near zero: a millionth of the largest entry
    atol = 1e-6 * max(g.abs().max().item() for g in grads["naive"])
    for a, b in zip(grads["engine"], grads["naive"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=atol)
    check = f"loss rtol 1e-4, LoRA gradients rtol 1e-3 atol {atol:.1e} (1e-6 x largest)"
    print(f"b8: same loss ({losses['engine'].item():.6f}) and gradients ({check})")
    cached_loss = engine_step(state, cache)  # a hit: every row from the cache
    assert cache.misses == 2 and cache.hits == 2, (cache.misses, cache.hits)
    torch.testing.assert_close(cached_loss, losses["engine"], rtol=1e-6, atol=0.0)
    cache_check = f"same loss with cached targets (rtol 1e-6; {cache.nbytes() / 2**20:.1f} MiB)"
    print(f"b8: {cache_check}")
    return check, cache_check


def explain(state: dict[str, Any], times: dict[str, float], repeats: int) -> None:
    """The engine step's breakdown, and what each number means for a method on this model."""
    step, batches = times["engine step"], state["batches"].values()
    print(f"b8: breakdown of the engine step ({step:.3f} s, medians of {repeats}):")
    for label, key in (
        ("(a) teacher forwards, answer positions", "teacher"),
        ("(b) student forward+backward with the head (cached step)", "cached step"),
        ("(c)   of which the output head on the answers", "head"),
    ):
        print(f"  {label:58s} {times[key]:8.3f} s  {times[key] / step:6.1%} of the step")
    rest = step - times["teacher"] - times["cached step"]
    label = "step - (a) - (b): the loss, bookkeeping, noise"
    print(f"  {label:58s} {rest:8.3f} s  {rest / step:6.1%}")
    ids = [e.input_ids for encoded in state["encoded"].values() for e in encoded]
    shared = len(os.path.commonprefix(ids))  # the system prompt and the user turn's header
    positions = sum(b["input_ids"].numel() for b in batches)  # padding included
    skipped = shared * (len(ids) - len(batches))  # encoded once per batch instead of per row
    extra = times["naive step"] - step
    head_extra = times["naive head"] - times["head"]
    teacher_extra = times["naive teacher"] - times["teacher"]
    print(
        f"b8: the naive step takes {extra:.3f} s more than the engine's: the teacher's logits "
        f"at every position {teacher_extra:.3f} s, the student's head + log-softmax at every "
        f"position {head_extra:.3f} s, the rest ({extra - teacher_extra - head_extra:.3f} s) "
        f"the all-position KL with its backward, and noise. The head at the answers is "
        f"{times['head'] / step:.1%} of the engine step: all a fused head could save; the rest "
        f"is the layers' work. Cached targets drop the teacher's forward from every epoch "
        f"after the first ({step:.3f} s -> {times['cached step']:.3f} s). Not measured: the "
        f"{shared}-token system prompt + user header is shared by all rows; encoding it once "
        f"per batch would skip {skipped} of the {positions} positions the layers run per step "
        f"({skipped / positions:.0%}; models/prefix.py shares image prefixes only)."
    )


def run(s: Sizes, smoke: bool) -> list[dict]:
    state = setup(smoke, s.batch if smoke else ROWS)
    if state is None:
        return []
    cache = TeacherCache()
    check, cache_check = check_equal(state, cache)
    head, hidden_all = final_hidden(state, all_positions=True)
    _, hidden_answers = final_hidden(state, all_positions=False)
    times = interleaved_medians(
        {
            "naive step": functools.partial(naive_step, state),
            "engine step": functools.partial(engine_step, state),
            "cached step": functools.partial(engine_step, state, cache),
            "naive teacher": functools.partial(naive_teacher, state),
            "teacher": functools.partial(teacher_targets, state),
            "naive head": functools.partial(head_pass, head, hidden_all),
            "head": functools.partial(head_pass, head, hidden_answers),
        },
        s.repeats,
    )
    explain(state, times, s.repeats)
    config = state["model"].get_base_model().config
    rows = " + ".join(
        f"{len(b['input_ids'])} {role} (T={b['input_ids'].shape[1]} K={answers(b).shape[1]})"
        for role, b in state["batches"].items()
    )
    model = f"{'tiny smollm2' if smoke else MODEL} ({config.num_hidden_layers} layers"
    shape = f"{model}, V={config.vocab_size}), LoRA r8, {rows}"
    step = times["engine step"]
    return [
        row("b8", shape, "KL step time (s)", times["naive step"], step, "—", None, check),
        row("b8", shape, "teacher forwards (s)", times["naive teacher"], times["teacher"],
            "—", None, "timing only; the step's loss checks the teacher"),
        row("b8", shape, "head + log-softmax fwd+bwd (s)", times["naive head"], times["head"],
            "—", None, "timing only: all positions vs answer positions"),
        row("b8", shape, "step time (s), teacher cached", step, times["cached step"],
            "—", None, cache_check),
    ]  # fmt: skip
