"""Sequence-level losses (NPO, SimNPO, DPO): one value per sequence, averaged over sequences.

They compare whole-answer log-likelihoods log π(y|x) = Σ_t log π(y_t | x, y_<t), summed over the
answer tokens as in the papers and in open-unlearning.

Scale: every loss here is −c·log σ(·) with c = 2/β by default (`scale="2/beta"`: the NPO and
SimNPO papers, and open-unlearning for all three); `scale="1"` gives c = 1, the DPO paper's form
−log σ(·) (arXiv 2305.18290, eq. 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import LOSSES, Loss
from mmunlearn.values import TokenTargets

SCALES = ("2/beta", "1")


def sequence_logprob(logprobs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ over valid answer tokens of log p(label): (B, K, V), (B, K) → (B,)."""
    mask = labels != -100
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, K)
    return (picked * mask).sum(-1)


def check_preference(name: str, beta: float, scale: str) -> None:
    if beta <= 0:
        raise ValueError(f"{name} beta={beta} must be > 0")
    if scale not in SCALES:
        raise ValueError(f"{name} scale={scale!r}; expected one of {SCALES}")


def coefficient(beta: float, scale: str) -> float:
    return 2 / beta if scale == "2/beta" else 1.0


def _reference(name: str, targets: TokenTargets) -> torch.Tensor:
    if targets.logprobs is None:
        raise ValueError(f"{name} needs the reference model's log-probs: use the `base` teacher")
    return targets.logprobs


@LOSSES.register("npo")
@dataclass(frozen=True)
class NPO(Loss):
    """NPO (arXiv 2404.05868): −(2/β)·log σ(−β·[log π(y|x) − log π_ref(y|x)]), per sequence.

    π_ref is the teacher (the frozen base). As β → 0 the loss is (2/β)·log 2 + log π − log π_ref,
    whose gradient is gradient ascent on the summed NLL. `scale="1"` drops the 2/β.
    """

    beta: float = 0.1
    scale: str = "2/beta"
    level: ClassVar[str] = "sequence"

    def __post_init__(self) -> None:
        check_preference("npo", self.beta, self.scale)

    def __call__(
        self, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
    ) -> torch.Tensor:
        reference = sequence_logprob(_reference("npo", targets), labels)
        policy = sequence_logprob(torch.log_softmax(logits.float(), -1), labels)
        c = coefficient(self.beta, self.scale)
        return -c * F.logsigmoid(-self.beta * (policy - reference))


@LOSSES.register("simnpo")
@dataclass(frozen=True)
class SimNPO(Loss):
    """SimNPO (arXiv 2410.07163): −(2/β)·log σ(−(β/|y|)·log π(y|x) − γ), reference-free."""

    beta: float = 2.5
    gamma: float = 0.0
    scale: str = "2/beta"
    level: ClassVar[str] = "sequence"

    def __post_init__(self) -> None:
        check_preference("simnpo", self.beta, self.scale)

    def __call__(
        self, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
    ) -> torch.Tensor:
        policy = sequence_logprob(torch.log_softmax(logits.float(), -1), labels)
        length = (labels != -100).sum(-1).clamp(min=1)
        c = coefficient(self.beta, self.scale)
        return -c * F.logsigmoid(-(self.beta / length) * policy - self.gamma)


@LOSSES.register("dpo")
@dataclass(frozen=True)
class DPO(Loss):
    """DPO (arXiv 2305.18290) over a pair of answers to the same question, per pair:

    −(2/β)·log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]),

    y_w the preferred answer (for unlearning: "I don't know"), y_l the dispreferred one (the
    forget answer), π_ref the frozen base. The 2/β scale is open-unlearning's; `scale="1"` is
    the paper's −log σ(·).
    """

    beta: float = 0.1
    scale: str = "2/beta"
    level: ClassVar[str] = "pair"

    def __post_init__(self) -> None:
        check_preference("dpo", self.beta, self.scale)

    def __call__(
        self,
        chosen: tuple[torch.Tensor, TokenTargets, torch.Tensor],
        rejected: tuple[torch.Tensor, TokenTargets, torch.Tensor],
    ) -> torch.Tensor:
        """Each side is (student logits (B, K, V), base targets, labels (B, K)) → (B,)."""
        margins = []
        for logits, targets, labels in (chosen, rejected):
            reference = sequence_logprob(_reference("dpo", targets), labels)
            policy = sequence_logprob(torch.log_softmax(logits.float(), -1), labels)
            margins.append(policy - reference)  # (B,)
        c = coefficient(self.beta, self.scale)
        return -c * F.logsigmoid(self.beta * (margins[0] - margins[1]))
