"""Batched, left-padded greedy generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from mmunlearn.data.example import Example
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel

# Room for a chat model to finish a short answer in a sentence; generation stops at the end of
# the turn, so short answers cost no more.
DEFAULT_MAX_NEW_TOKENS = 32


@torch.inference_mode()
def generate_answers(
    loaded: LoadedModel,
    examples: Sequence[Example],
    batch_size: int = 64,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: bool = True,
    transform_pixels: Callable[[torch.Tensor, list[Example]], torch.Tensor] | None = None,
    system_of: Callable[[Example], str] | None = None,
) -> list[str]:
    """Greedy answers to each example's question, in order; each stops at the end of the
    assistant's turn (any of the model's EOS / end-of-turn tokens) or after `max_new_tokens`.
    Without a chat template (a base LM asked `Question: … Answer:`), the answer is the first
    line of the continuation. `system_of(example)`, if given, is a system message per example.

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
        prompts = [
            encoder.render_prompt(
                ex.question, ex.image is not None, system_of(ex) if system_of else ""
            )
            for ex in chunk
        ]
        images = [encoder.load_image(ex.image) for ex in chunk if ex.image is not None]
        inputs = encoder.tokenize_prompts(prompts, images)
        if transform_pixels is not None and "pixel_values" in inputs:
            with_image = [ex for ex in chunk if ex.image is not None]
            inputs["pixel_values"] = transform_pixels(inputs["pixel_values"], with_image)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
            eos_token_id=list(encoder.stop_ids),
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        texts = loaded.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        if encoder.template_owner is None:
            texts = [t.strip().split("\n")[0] for t in texts]
        answers += [t.strip() for t in texts]
    return answers
