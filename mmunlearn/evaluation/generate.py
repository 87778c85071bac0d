"""Batched, left-padded greedy generation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from mmunlearn.data.example import Example
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel


@torch.inference_mode()
def generate_answers(
    loaded: LoadedModel,
    examples: Sequence[Example],
    batch_size: int = 64,
    max_new_tokens: int = 8,
    progress: bool = True,
) -> list[str]:
    """Greedy answers to each example's question, in order."""
    encoder = PromptEncoder(loaded)
    model = loaded.model.eval()
    device = next(model.parameters()).device
    answers: list[str] = []
    chunks = range(0, len(examples), batch_size)
    for start in tqdm(chunks, desc="generating", disable=not progress, leave=False):
        chunk = examples[start : start + batch_size]
        prompts = [encoder.render_prompt(ex.question, ex.image is not None) for ex in chunk]
        images = [encoder.load_image(ex.image) for ex in chunk if ex.image is not None]
        if encoder.is_vision_language:
            inputs = loaded.processor(
                text=prompts, images=images or None, padding=True, return_tensors="pt"
            )
        else:
            inputs = loaded.tokenizer(prompts, padding=True, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
            eos_token_id=loaded.tokenizer.eos_token_id,
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        answers += [
            t.strip() for t in loaded.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
    return answers
