"""The student's forward pass, restricted to answer positions; optionally stopping before the
output projection (the fused head of `mmunlearn.losses.fused`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
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


class _PassThrough(torch.nn.Module):
    """Stands in for the output projection: the model returns its final hidden states."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


@dataclass(frozen=True)
class OutputHead:
    """The model's final hidden states → its logits: the output projection, then the family's
    logit soft-capping (Gemma's `final_logit_softcapping`) where the config sets one."""

    projection: torch.nn.Module
    softcap: float | None = None

    @property
    def plain_linear(self) -> bool:
        """A bias-free linear map and nothing after it (what a fused linear-loss kernel takes)."""
        return (
            self.softcap is None
            and isinstance(self.projection, torch.nn.Linear)
            and self.projection.bias is None
        )

    def __call__(
        self, hidden: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits for `hidden`; `params`: stand-ins for the projection's parameters by name."""
        weight = getattr(self.projection, "weight", None)
        if weight is not None and hidden.dtype != weight.dtype and not torch.is_autocast_enabled():
            hidden = hidden.to(weight.dtype)  # families that upcast what they return
        if params is None:
            logits = self.projection(hidden)
        else:
            logits = torch.func.functional_call(self.projection, params, (hidden,))
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def output_head(model: torch.nn.Module) -> OutputHead:
    """`model`'s output projection (through PEFT and DDP wrappers) as an `OutputHead`."""
    inner = getattr(model, "module", model)  # DDP
    projection = inner.get_output_embeddings()
    if projection is None:
        raise TypeError(f"{type(inner).__name__} has no output embeddings to fuse with a loss")
    config = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else None
    softcap = getattr(config or inner.config, "final_logit_softcapping", None)
    if getattr(config or inner.config, "logit_scale", None) not in (None, 1.0):
        raise TypeError(
            f"{type(inner).__name__} scales its logits (config.logit_scale); the fused head "
            "does not reproduce that: use train.fused_head=off"
        )
    return OutputHead(projection, softcap)


@contextlib.contextmanager
def hidden_states_out(model: torch.nn.Module) -> Iterator[OutputHead]:
    """Within: `model` returns its final hidden states (B, T, H) where it returned logits, so
    `answer_logits` and `prefix_answer_logits` give answer-position hidden states; yields the
    head that turns them into those logits."""
    inner = getattr(model, "module", model)
    head = output_head(inner)
    inner.set_output_embeddings(_PassThrough())
    try:
        yield head
    finally:
        inner.set_output_embeddings(head.projection)
