"""The competent side of scripts/bench.py: what the best peer codebases do, small and faithful.

`naive_reference.py` is what benchmark scripts typically do; these are the better habits of the
best peers, re-implemented here from how their code works (no code copied), each on its own so
that a comparison shows what each habit is worth:

- torchunlearn (`ref_mode="cache"`, its default): the reference model's log-probs at the answer
  positions are computed once before training and kept in fp16; the student still takes full
  (B, T, V) logits and log-softmaxes them everywhere before picking the answer positions.
- TRL (`null_ref_context`): with LoRA the reference is the student with its adapters disabled,
  not a second copy; both forwards still return full logits (its default, `logits_to_keep` off).
- transformers' `logits_to_keep` alone: both forwards keep only the K + 1 positions that predict
  the answer, the reference still a deep copy.
- open-unlearning's evaluation: prompts batched 32 at a time, left-padded, greedy, up to 200 new
  tokens, stopping at the tokenizer's EOS.

A distillation term is given as a pair (student batch, teacher batch): the teacher's batch may
carry a longer prompt (an in-context instruction) or other image tokens; both are left-padded
so the answers end at the last position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder, answer_length, model_inputs
from mmunlearn.models.loading import LoadedModel

Pair = tuple[dict[str, Any], dict[str, Any]]  # (student batch, teacher batch)


def _answer_kl(
    student_logprobs: torch.Tensor, teacher_logprobs: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean forward KL(teacher ‖ student) over the answer tokens: `*_logprobs` (B, K, V) at the
    K positions that predict the last K tokens, `labels` (B, K)."""
    kl = (teacher_logprobs.exp() * (teacher_logprobs - student_logprobs)).sum(-1)  # (B, K)
    mask = (labels != IGNORE_INDEX).float()
    return (kl * mask).sum() / mask.sum()


# --- torchunlearn: cached fp16 reference log-probs, full student logits --------------------------


@torch.no_grad()
def cache_reference(reference: torch.nn.Module, pairs: Sequence[Pair]) -> list[torch.Tensor]:
    """Before training: the reference's log-probs at each pair's answer positions, in fp16
    (one (B, K, V) tensor per pair). `reference` is whatever model the run holds as reference
    (with LoRA, call it inside `disable_adapter()`)."""
    cached = []
    for student_batch, teacher_batch in pairs:
        k = answer_length(student_batch["labels"])
        logits = reference(**model_inputs(teacher_batch)).logits  # (B, T', V)
        logprobs = torch.log_softmax(logits.float(), dim=-1)[:, -k - 1 : -1]  # (B, K, V)
        cached.append(logprobs.half())
    return cached


def cached_reference_loss(
    student: torch.nn.Module, pairs: Sequence[Pair], cached: Sequence[torch.Tensor]
) -> torch.Tensor:
    """The student's full logits, log-softmax at every position, KL to the cache at the answers;
    the terms summed."""
    loss = 0.0
    for (batch, _), reference in zip(pairs, cached, strict=True):
        k = reference.shape[1]
        logprobs = torch.log_softmax(student(**model_inputs(batch)).logits.float(), -1)  # (B,T,V)
        loss = loss + _answer_kl(
            logprobs[:, -k - 1 : -1], reference.float(), batch["labels"][:, -k:]
        )
    return loss


# --- TRL: the reference is the student with its adapters disabled ------------------------------


def adapter_off_loss(student: torch.nn.Module, pairs: Sequence[Pair]) -> torch.Tensor:
    """Reference logits from `student` inside peft's `disable_adapter()`, full logits on both
    sides, log-softmax everywhere, KL at the answers; the terms summed."""
    loss = 0.0
    for batch, teacher_batch in pairs:
        with torch.no_grad(), student.disable_adapter():
            teacher_logits = student(**model_inputs(teacher_batch)).logits  # (B, T', V)
        student_logits = student(**model_inputs(batch)).logits  # (B, T, V)
        k = answer_length(batch["labels"])
        student_logprobs = torch.log_softmax(student_logits.float(), -1)[:, -k - 1 : -1]
        teacher_logprobs = torch.log_softmax(teacher_logits.float(), -1)[:, -k - 1 : -1]
        loss = loss + _answer_kl(student_logprobs, teacher_logprobs, batch["labels"][:, -k:])
    return loss


# --- transformers' logits_to_keep alone (a deep-copied reference) --------------------------------


def logits_to_keep_loss(
    student: torch.nn.Module, reference: torch.nn.Module, pairs: Sequence[Pair]
) -> torch.Tensor:
    """Both forwards with `logits_to_keep=K + 1`, the reference a separate model; the terms
    summed."""
    loss = 0.0
    for batch, teacher_batch in pairs:
        k = answer_length(batch["labels"])
        with torch.no_grad():
            teacher_logits = reference(**model_inputs(teacher_batch), logits_to_keep=k + 1).logits
        student_logits = student(**model_inputs(batch), logits_to_keep=k + 1).logits  # (B,K+1,V)
        loss = loss + _answer_kl(
            torch.log_softmax(student_logits[:, :-1].float(), -1),
            torch.log_softmax(teacher_logits[:, :-1].float(), -1),
            batch["labels"][:, -k:],
        )
    return loss


# --- open-unlearning: batched, left-padded greedy generation -------------------------------------


@torch.no_grad()
def generate_batched(
    loaded: LoadedModel,
    examples: Sequence[Example],
    batch_size: int = 32,
    max_new_tokens: int = 200,
) -> list[str]:
    """Greedy answers, `batch_size` left-padded prompts per `generate` call, stopping at the
    tokenizer's EOS (or after `max_new_tokens`)."""
    encoder = PromptEncoder(loaded)
    model = loaded.model.eval()
    tokenizer = loaded.tokenizer
    answers = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        prompts = [encoder.render_prompt(ex.question, ex.image is not None) for ex in chunk]
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            if encoder.is_vision_language:
                images = [encoder.load_image(ex.image) for ex in chunk if ex.image is not None]
                inputs = loaded.processor(
                    text=prompts, images=images or None, padding=True, return_tensors="pt"
                )
            else:
                # a chat template writes its own BOS (as apply_chat_template(tokenize=True))
                inputs = tokenizer(
                    prompts,
                    padding=True,
                    return_tensors="pt",
                    add_special_tokens=encoder.adds_special_tokens,
                )
        finally:
            tokenizer.padding_side = side
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        answers += [text.strip() for text in texts]
    return answers
