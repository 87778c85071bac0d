"""The student's forward pass, restricted to answer positions."""

from __future__ import annotations

from typing import Any

import torch

from mmunlearn.models.encoding import answer_length, model_inputs


def answer_logits(
    model: torch.nn.Module, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits predicting the last K tokens of each left-padded row, and those tokens.

    Returns `logits` (B, K, V) and `labels` (B, K) with IGNORE_INDEX where a row's answer is
    shorter than K. Position t's logits predict token t+1, so we keep K+1 positions and drop the
    last one.
    """
    k = answer_length(batch["labels"])
    out = model(**model_inputs(batch), logits_to_keep=k + 1, use_cache=False)
    logits = out.logits[:, :-1]  # (B, K, V)
    labels = batch["labels"][:, -k:]  # (B, K)
    return logits, labels
