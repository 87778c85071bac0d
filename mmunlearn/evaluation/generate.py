"""Batched, left-padded greedy generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    transform_pixels: Callable[[torch.Tensor, list[Example]], torch.Tensor] | None = None,
) -> list[str]:
    """Greedy answers to each example's question, in order.

    `transform_pixels(pixel_values (N, C, H, W), image_examples)`, if given, changes the images
    after preprocessing (the robustness probe's noise); `image_examples` are the N examples with
    an image, in batch order.
    """
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
        if transform_pixels is not None and "pixel_values" in inputs:
            with_image = [ex for ex in chunk if ex.image is not None]
            inputs["pixel_values"] = transform_pixels(inputs["pixel_values"], with_image)
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
