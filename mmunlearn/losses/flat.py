"""FLAT (Wang et al., "LLM Unlearning via Loss Adjustment with Only Forget Data", ICLR 2025,
arXiv 2410.11143): maximise an f-divergence between the template ("I don't know") answers and
the forget answers through its variational form, with no retain data and no reference model.

Per question, with P_e and P_f the student's mean per-token probability of the template answer
y_e and of the forget answer y_f (P = (1/|y|) Σ_t p(y_t | x, y_<t)),

    loss = −g*(P_e) + f*(g*(P_f)),

g* the divergence's activation and f* its conjugate, which for the supported divergences gives

    kl               −P_e + exp(P_f − 1)
    total_variation  −tanh(P_e)/2 + tanh(P_f)/2           (the authors' default)
    jensen_shannon   softplus(−P_e) + softplus(P_f) − 2·log 2
    pearson          −P_e + P_f²/4 + P_f

(the authors' `get_contrastive_loss`). Their code averages p(y_t) over the padded batch (prompt
positions counting as 0) and applies the functions to that batch mean; here P is per question
and the losses are averaged over questions, the pair-loss contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import LOSSES, Loss
from mmunlearn.values import TokenTargets

Side = tuple[torch.Tensor, TokenTargets, torch.Tensor]
LOG2 = math.log(2.0)

# divergence → (template term −g*(P_e), forget term f*(g*(P_f)))
DIVERGENCES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "kl": (lambda p: -p, lambda p: torch.exp(p - 1)),
    "total_variation": (lambda p: -torch.tanh(p) / 2, lambda p: torch.tanh(p) / 2),
    "jensen_shannon": (lambda p: F.softplus(-p) - LOG2, lambda p: F.softplus(p) - LOG2),
    "pearson": (lambda p: -p, lambda p: p.pow(2) / 4 + p),
}


def mean_token_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(1/|y|) Σ_t p(y_t) over each row's valid answer tokens: (B, K, V), (B, K) → (B,)."""
    mask = labels != -100
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1).exp()  # (B, K)
    return (picked * mask).sum(-1) / mask.sum(-1).clamp(min=1)


@LOSSES.register("flat")
@dataclass(frozen=True)
class FLAT(Loss):
    """The FLAT loss over a pair of answers to one question: the template answer first (the
    term's batch, e.g. `forget:idk`), the forget answer second (its `pair_role`) → (B,)."""

    divergence: str = "total_variation"
    level: ClassVar[str] = "pair"

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise ValueError(
                f"flat divergence={self.divergence!r}; expected one of {tuple(DIVERGENCES)}"
            )

    def __call__(self, template: Side, forget: Side) -> torch.Tensor:
        template_term, forget_term = DIVERGENCES[self.divergence]
        p_template = mean_token_probability(template[0], template[2])
        p_forget = mean_token_probability(forget[0], forget[2])
        return template_term(p_template) + forget_term(p_forget)
