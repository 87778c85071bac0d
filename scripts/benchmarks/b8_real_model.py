"""b8 — a real model, SmolLM2-135M-Instruct (30 layers, a tied 49152-token head), on
data/real_knowledge in its chat template: one LoRA (rank 8) VGID-text step and one evaluation
pass, the engine against the naive loop and the competent peer baselines.

The step: forget rows distilled from the VGID teacher (on text rows its in-context half: the
"Forget <entity> ." instruction before the question), retain rows from the base, forward KL at
the answer positions. Variants (benchmarks.kl_variants races them fairly): the naive loop
(deep-copied reference, full logits), torchunlearn (cached fp16 reference log-probs, full student
logits), TRL (adapters disabled for the reference, full logits), `logits_to_keep` alone, the
engine, and the engine with `train.cache_teacher=true`. The engine step's breakdown (teacher
forwards, output head) follows. The evaluation pass: greedy answers at MLLMU-Bench's budget
(one question at a time) and open-unlearning's (32 left-padded prompts per batch), ROUGE-L of
those answers with a cold cache. `--smoke` uses the tiny SmolLM2-convention Llama; full size
skips with a message when the checkpoint is absent. The checkpoint is loaded once."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import naive_reference as naive
import peer_baselines as peers
import torch

from benchmarks.common import DEVICE, Sizes, interleaved_times, row, spread
from benchmarks.generation import generation_rows
from benchmarks.kl_variants import Sides, check_gradients, check_weights, race
from mmunlearn.data.jsonl import load_examples
from mmunlearn.losses.objective import term_value
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import PromptEncoder, answer_length, model_inputs
from mmunlearn.models.forward import answer_logits, hidden_states_out
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.sources import models_dir
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.icu import reencoded
from mmunlearn.teachers.targets import TeacherContext, to_device
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora
from mmunlearn.training.trainer import frozen_teacher

MODEL = "smollm2-135m-instruct"
DATA = Path(__file__).resolve().parents[2] / "data" / "real_knowledge"
# LoRA's B starts at zero: the student would equal the teacher (loss and gradients 0); a small
# random B stands for an adapter a few steps into training
LORA_B_STD = 2e-2
VARIANTS = ("naive", "torchunlearn", "trl", "logits_to_keep", "engine", "engine_cached")
PEERS = ("torchunlearn", "trl", "logits_to_keep")
LOSSY = {"torchunlearn": 0.1}  # fp16 cached log-probs (see b9)


def load(smoke: bool) -> LoadedModel | None:
    if smoke:
        examples = [
            ex for role in ("forget", "retain") for ex in load_examples(DATA / f"{role}.jsonl")
        ]
        return tiny_family("smollm2", examples)
    path = models_dir() / MODEL
    if not path.exists():
        print(f"b8: skipped — no {path} (make it with `mmunlearn get-model {MODEL}`)")
        return None
    return load_model(path)


def answers(batch: dict[str, Any]) -> torch.Tensor:
    return batch["labels"][:, -answer_length(batch["labels"]) :]  # (B, K)


def setup(loaded: LoadedModel, rows: int) -> dict[str, Any]:
    """LoRA on the model, a deep copy of the base beside it (the naive reference), two sets of
    `rows` forget + `rows` retain rows, each term's (student, teacher) batches, every loss."""
    data = {r: load_examples(DATA / f"{r}.jsonl")[: 2 * rows] for r in ("forget", "retain")}
    copied = naive.deep_copied_teacher(loaded.model).to(DEVICE)
    torch.manual_seed(0)
    model = add_lora(loaded.model.to(DEVICE), TrainConfig(lora=True)).eval()
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=LORA_B_STD)
    encoder = PromptEncoder(loaded)
    ctx = TeacherContext(frozen=frozen_teacher(model, use_adapter_off=True), encoder=encoder)
    terms = build_method("vgid").terms  # forget: the VGID teacher; retain: the base
    vgid = terms[0].teacher
    sets, pairs, ids = [], [], []
    for half in (slice(0, rows), slice(rows, 2 * rows)):
        batches = {}
        for role, examples in data.items():
            encoded = [encoder.encode(ex) for ex in examples[half]]
            ids += [e.input_ids for e in encoded]
            batches[role] = to_device(encoder.collate(examples[half], encoded), DEVICE)
        # the teacher's view for the peers: what the VGID teacher builds on text rows
        prompted = reencoded(ctx, batches["forget"], vgid.prompt, prompt_as=vgid.prompt_as)
        sets.append(batches)
        pairs.append([(batches["forget"], to_device(prompted, DEVICE)), (batches["retain"],) * 2])
    with model.disable_adapter():
        cached = [peers.cache_reference(model, p) for p in pairs]  # torchunlearn: before training
    cache = TeacherCache()

    def engine(index: int, teacher_cache: TeacherCache | None = None) -> torch.Tensor:
        loss = 0.0
        for term in terms:
            batch = sets[index % 2][term.role]
            labels = answers(batch)
            if teacher_cache is None:
                targets = term.teacher.build(ctx, batch, labels)
            else:
                targets = teacher_cache.build(term.teacher, ctx, batch, labels, scope=term.role)
            logits, _ = answer_logits(model, batch)  # (B, K, V)
            loss = loss + term.sign * term.weight * term_value(term, logits, targets, labels)
        return loss

    losses = {
        "naive": lambda i: sum(
            naive.distillation_loss(model, copied, a, b) for a, b in pairs[i % 2]
        ),
        "torchunlearn": lambda i: peers.cached_reference_loss(model, pairs[i % 2], cached[i % 2]),
        "trl": lambda i: peers.adapter_off_loss(model, pairs[i % 2]),
        "logits_to_keep": lambda i: peers.logits_to_keep_loss(model, copied, pairs[i % 2]),
        "engine": engine,
        "engine_cached": lambda i: engine(i, cache),
    }
    return {
        "model": model, "copied": copied, "ctx": ctx, "terms": terms, "sets": sets,
        "pairs": pairs, "losses": losses, "cache": cache, "loaded": loaded, "ids": ids,
    }  # fmt: skip


# --- the engine step's breakdown -----------------------------------------------------------------


def teacher_targets(state: dict[str, Any]) -> None:
    """The engine's teacher forwards for both terms (answer positions)."""
    for term in state["terms"]:
        batch = state["sets"][0][term.role]
        term.teacher.build(state["ctx"], batch, answers(batch))


def naive_teacher(state: dict[str, Any]) -> None:
    """The naive loop's teacher forwards: the copy's logits at every position, log-softmax."""
    with torch.inference_mode():
        for _, teacher_batch in state["pairs"][0]:
            torch.log_softmax(state["copied"](**model_inputs(teacher_batch)).logits.float(), -1)


def head_pass(head: Callable, hidden: dict[str, torch.Tensor]) -> None:
    """The output head alone, forward and backward: logits = hidden @ embedding.T, log-softmax."""
    for states in hidden.values():
        states = states.detach().requires_grad_(True)  # (B, P, H)
        torch.log_softmax(head(states).float(), -1).sum().backward()  # (B, P, V)


def final_hidden(state: dict[str, Any], all_positions: bool) -> tuple[Callable, dict]:
    """The head and the final hidden states at every position or at the answer positions."""
    model, hidden = state["model"], {}
    with torch.no_grad(), hidden_states_out(model) as head:
        for role, batch in state["sets"][0].items():
            hidden[role] = (
                model(**model_inputs(batch)).logits
                if all_positions
                else answer_logits(model, batch)[0]
            )
    return head, hidden


def breakdown(state: dict[str, Any], rounds: int) -> dict[str, float]:
    head, hidden_all = final_hidden(state, all_positions=True)
    _, hidden_answers = final_hidden(state, all_positions=False)
    times = interleaved_times(
        {
            "naive teacher": lambda _: naive_teacher(state),
            "teacher": lambda _: teacher_targets(state),
            "naive head": lambda _: head_pass(head, hidden_all),
            "head": lambda _: head_pass(head, hidden_answers),
        },
        rounds,
    )
    return {name: spread(values)["median"] for name, values in times.items()}


def explain(state: dict[str, Any], step: dict[str, float], parts: dict[str, float]) -> None:
    """The engine step's breakdown, and what each number means for a method on this model."""
    engine, cached = step["engine"], step["engine_cached"]
    print(f"b8: breakdown of the engine step ({engine:.3f} s, medians):")
    for label, value in (
        ("(a) teacher forwards, answer positions", parts["teacher"]),
        ("(b) the step with cached targets (student fwd+bwd, AdamW)", cached),
        ("(c)   of which the output head on the answers", parts["head"]),
    ):
        print(f"  {label:60s} {value:8.3f} s  {value / engine:6.1%} of the step")
    shared = len(os.path.commonprefix(state["ids"]))
    print(
        f"b8: the naive step takes {step['naive'] - engine:.3f} s more than the engine's; its "
        f"teacher's logits at every position cost {parts['naive teacher'] - parts['teacher']:.3f}"
        f" s more than the engine's teacher, the student's head + log-softmax at every position "
        f"{parts['naive head'] - parts['head']:.3f} s more. The head at the answers is "
        f"{parts['head'] / engine:.1%} of the engine step: all a fused head could save. Cached "
        f"targets: {engine:.3f} s -> {cached:.3f} s. The rows share a prefix of up to {shared} "
        "tokens (system prompt + user header), encoded once per row (not shared; models/prefix.py "
        "shares image prefixes only)."
    )


def run(s: Sizes, smoke: bool) -> list[dict]:
    loaded = load(smoke)
    if loaded is None:
        return []
    state = setup(loaded, s.real.rows)
    sides = Sides(state["model"], state["losses"])
    check = check_gradients(sides, LOSSY, "b8")
    cache = state["cache"]
    with torch.no_grad():
        state["losses"]["engine_cached"](1)  # the second batch set's targets: every step a hit
    assert cache.misses == 4 and cache.hits == 0, (cache.misses, cache.hits)
    times = race(sides, s.real.rounds)
    weights = check_weights(sides, {"torchunlearn": 0.2}, "b8")
    step = {v: spread(t)["median"] for v, t in times.items()}
    parts = breakdown(state, s.real.rounds)
    explain(state, step, parts)
    config = state["model"].get_base_model().config
    shapes = " + ".join(
        f"{len(b['input_ids'])} {role} (T={b['input_ids'].shape[1]} K={answers(b).shape[1]})"
        for role, b in state["sets"][0].items()
    )
    name = f"{'tiny smollm2' if smoke else MODEL} ({config.num_hidden_layers} layers, V={config.vocab_size})"
    shape = f"{name}, LoRA r8, VGID-text step: {shapes}"
    checks = f"{check}; {weights}"
    rows = [
        row("b8", shape, "step time (s), median", step["naive"], step["engine"], "—", None,
            checks, peers={v: step[v] for v in PEERS},
            spreads={v: spread(t) for v, t in times.items()},
            caveat="torchunlearn's targets are fp16"),
        row("b8", shape, "step time (s), engine with train.cache_teacher=true", step["naive"],
            step["engine_cached"], "—", None, checks, peers={v: step[v] for v in PEERS},
            caveat="cached teacher targets (fp32, exact): from the 2nd epoch on"),
        row("b8", shape, "teacher forwards (s)", parts["naive teacher"], parts["teacher"],
            "—", None, "timing only; the step's loss checks the teacher"),
        row("b8", shape, "head + log-softmax fwd+bwd (s)", parts["naive head"], parts["head"],
            "—", None, "timing only: all positions vs answer positions"),
    ]  # fmt: skip
    n = s.real.eval_questions
    pool = [ex for r in ("forget", "retain") for ex in load_examples(DATA / f"{r}.jsonl")[-n:]]
    questions = random.Random(0).sample(pool, n)
    with state["model"].disable_adapter():  # the base model answers
        label = f"{name}, {n} questions (forget + retain)"
        rows += generation_rows("b8", state["loaded"], questions, s, label)
    return rows
