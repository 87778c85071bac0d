"""Hidden-state targets: the frozen base's hidden states at one layer (RMU's retain term).

A term with a `layer` reads the student's hidden states there (`Term.layer`, the student view of
`layer_hidden_states`); a hidden-state teacher gives the frozen model's at the same layer and
positions, so a hidden-state loss compares the two token by token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.models.encoding import answer_length, model_inputs
from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, to_device
from mmunlearn.values import TokenTargets


def layer_hidden_states(
    model: torch.nn.Module, batch: dict[str, Any], layer: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden states (B, K, H) after `layer` at the positions whose logits predict the last K
    tokens (those of `answer_logits`), and those tokens (B, K).

    `layer` numbers `hidden_states` as transformers does: 0 the embeddings, −1 the last. Only the
    last position's logits are computed (`logits_to_keep=1`).
    """
    k = answer_length(batch["labels"])
    out = model(**model_inputs(batch), logits_to_keep=1, output_hidden_states=True, use_cache=False)
    count = len(out.hidden_states)
    if not -count <= layer < count:
        raise ValueError(
            f"layer={layer}: the model has {count} hidden-state outputs (0 the embeddings, "
            f"{count - 1} its last layer); choose a layer in [{-count}, {count - 1}]"
        )
    hidden = out.hidden_states[layer][:, -(k + 1) : -1]  # (B, K, H)
    return hidden, batch["labels"][:, -k:]


@dataclass
class HiddenTargets(TokenTargets):
    """Per-token hidden-state targets (B, K, H) at the student's answer positions, in place of
    log-probs or token ids (which stay None; the teacher cache keeps none of these)."""

    hidden: torch.Tensor | None = None

    def __post_init__(self) -> None:
        assert self.hidden is not None, "set hidden"
        assert self.logprobs is None and self.token_ids is None, "hidden targets only"


class HiddenStateTeacher(Teacher):
    """A teacher whose targets are hidden states at its `layer` (a dataclass field): the term
    that uses it must read the student at the same layer (`Term` checks)."""

    layer: int


@TEACHERS.register("base_hidden")
@dataclass(frozen=True)
class BaseHiddenTeacher(HiddenStateTeacher):
    """The frozen base model's hidden states after `layer` (float32), on the clean inputs."""

    layer: int = 1

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        with torch.inference_mode(), ctx.frozen() as frozen:
            device = next(frozen.parameters()).device
            hidden, frozen_labels = layer_hidden_states(
                frozen, to_device(batch, device), self.layer
            )
        k = labels.shape[1]
        if not torch.equal(frozen_labels[:, -k:], labels.to(frozen_labels.device)):
            raise RuntimeError("base and student answer tokens differ on the same batch")
        hidden = hidden[:, -k:].float().to(labels.device).clone()  # a normal tensor, for autograd
        return HiddenTargets(mask=labels != -100, hidden=hidden)
