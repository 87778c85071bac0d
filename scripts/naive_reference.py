"""The yardstick of scripts/bench.py: what benchmark scripts' loops typically do, small and faithful.

MLLMU-Bench / open-unlearning-style loops (re-implemented here from their descriptions, no code
copied) run every model on the whole sequence and take the full (B, T, V) logits, log-softmax them
everywhere and mask afterwards; keep the reference model as a deep copy; generate answers one
question at a time; and score each ROUGE-L pair with a fresh tokenisation. The functions below do
that and nothing else, so that the engine's numbers can be checked against them before timing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder, model_inputs
from mmunlearn.models.loading import LoadedModel


def kl_all_positions(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Forward KL(teacher ‖ student) from full logits: log-softmax at every position, then the
    mean over answer positions. The teacher's sequence may be longer (an in-context prompt); both
    are left-padded, so its last T positions end where the student's do."""
    length = student_logits.shape[1]
    student = torch.log_softmax(student_logits.float(), dim=-1)  # (B, T, V)
    teacher = torch.log_softmax(teacher_logits[:, -length:].float(), dim=-1)  # (B, T, V)
    kl = (teacher.exp() * (teacher - student)).sum(-1)[:, :-1]  # (B, T-1): position t → t+1
    mask = (labels[:, 1:] != IGNORE_INDEX).float()
    return (kl * mask).sum() / mask.sum()


def deep_copied_teacher(model: torch.nn.Module) -> torch.nn.Module:
    """The reference model as a second full copy of the weights."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def distillation_loss(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    batch: dict[str, Any],
    teacher_batch: dict[str, Any],
) -> torch.Tensor:
    """One term: teacher and student on their whole sequences, KL at the answer positions."""
    with torch.no_grad():
        teacher_logits = teacher(**model_inputs(teacher_batch)).logits  # (B, T', V)
    student_logits = student(**model_inputs(batch)).logits  # (B, T, V)
    return kl_all_positions(student_logits, teacher_logits, batch["labels"])


@torch.no_grad()
def generate_one_at_a_time(
    loaded: LoadedModel, examples: Sequence[Example], max_new_tokens: int = 8
) -> list[str]:
    """Greedy answers, one question per `generate` call (no padding, no batching)."""
    encoder = PromptEncoder(loaded)
    model = loaded.model.eval()
    answers = []
    for example in examples:
        prompt = encoder.render_prompt(example.question, example.image is not None)
        if encoder.is_vision_language:
            image = [encoder.load_image(example.image)] if example.image is not None else None
            inputs = loaded.processor(text=[prompt], images=image, return_tensors="pt")
        else:
            inputs = loaded.tokenizer([prompt], return_tensors="pt")
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
            eos_token_id=loaded.tokenizer.eos_token_id,
        )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        answers.append(loaded.tokenizer.decode(new_tokens, skip_special_tokens=True).strip())
    return answers


def rouge_l_each(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """rouge-score's own ROUGE-L F-measure (stemmed), every pair tokenised afresh."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [
        scorer.score(reference, prediction)["rougeL"].fmeasure
        for prediction, reference in zip(predictions, references, strict=True)
    ]
