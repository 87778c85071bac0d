"""Per-token losses between a student's logits and a teacher's targets.

Every loss returns values of shape (B, K) and is reduced by `reduce_tokens` according to its
`reduction`: `mean` (ours, the default) divides the sum over valid tokens by their number, so
gradient accumulation stays right; `sum` sums each sequence's valid tokens and averages over
sequences (open-unlearning's convention for summed-NLL losses). Losses are unscaled: a term's
weight and sign are the only factors.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mmunlearn.components import build_component
from mmunlearn.registry import Registry
from mmunlearn.values import TokenTargets

LEVELS = ("token", "sequence", "pair")


class Loss(abc.ABC):
    """What every loss is: a callable, and its shape declared here once (the engine and the
    fused head read these; they probe for nothing else). A new loss subclasses this in a module
    of this package and registers itself: `@LOSSES.register("name")`.

    `level`: `token` — `(logits (B, K, V), targets) → (B, K)`, reduced by `reduction`;
    `sequence` — `(logits, targets, labels (B, K)) → (B,)`, averaged over sequences;
    `pair` — `((logits, targets, labels), (same for the dispreferred batch)) → (B,)`.
    """

    level: ClassVar[str] = "token"
    # how a token-level loss is reduced (`reduce_tokens`); a token loss makes it a field
    reduction: ClassVar[str] = "mean"
    # the student view it reads: `logits`, or `hidden` — the hidden states (B, K, H) at the
    # layer its term names (`Term.layer`), in place of the logits (representation methods)
    reads: ClassVar[str] = "logits"

    @abc.abstractmethod
    def __call__(self, *args: Any) -> torch.Tensor: ...


LOSSES: Registry[type[Loss]] = Registry("loss", base=Loss)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over positions where `mask` is True (0 if none are)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


REDUCTIONS = ("mean", "sum")


def check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name} reduction={reduction!r}; expected one of {REDUCTIONS}")


def reduce_tokens(
    values: torch.Tensor, mask: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """(B, K) per-token values → a scalar: `mean` over valid tokens, or `sum` per sequence then
    the mean over sequences that have a valid token."""
    if reduction == "mean":
        return masked_mean(values, mask)
    rows = mask.any(-1)
    per_sequence = (values * mask.to(values.dtype)).sum(-1)  # (B,)
    return per_sequence[rows].sum() / rows.sum().clamp(min=1)


def _soft(targets: TokenTargets) -> torch.Tensor:
    if targets.logprobs is None:
        raise ValueError("this loss needs a soft teacher (log-probs); `labels` gives hard tokens")
    return targets.logprobs


@LOSSES.register("forward_kl")
@dataclass(frozen=True)
class ForwardKL(Loss):
    """KL(p_teacher ‖ q_student) = Σ_v p (log p − log q): mass-covering."""

    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("forward_kl", self.reduction)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        student = torch.log_softmax(logits.float(), dim=-1)
        teacher = _soft(targets)
        return (teacher.exp() * (teacher - student)).sum(-1)


@LOSSES.register("reverse_kl")
@dataclass(frozen=True)
class ReverseKL(Loss):
    """KL(q_student ‖ p_teacher) = Σ_v q (log q − log p): mode-seeking."""

    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("reverse_kl", self.reduction)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        student = torch.log_softmax(logits.float(), dim=-1)
        return (student.exp() * (student - _soft(targets))).sum(-1)


@LOSSES.register("jsd")
@dataclass(frozen=True)
class GeneralisedJSD(Loss):
    """Generalised JSD_β = β·KL(p ‖ m) + (1−β)·KL(q ‖ m), m = β·p + (1−β)·q (GKD, arXiv 2306.13649).

    β → 0 approaches forward KL's gradient direction, β → 1 reverse KL's; β = 0.5 is the JSD.
    """

    beta: float = 0.5
    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("jsd", self.reduction)
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"jsd beta={self.beta} must be in (0, 1)")

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        student = torch.log_softmax(logits.float(), dim=-1)
        teacher = _soft(targets)
        log_beta, log_rest = (
            torch.log(torch.tensor(self.beta)),
            torch.log(torch.tensor(1 - self.beta)),
        )
        mixture = torch.logsumexp(torch.stack([teacher + log_beta, student + log_rest]), dim=0)
        kl_teacher = (teacher.exp() * (teacher - mixture)).sum(-1)
        kl_student = (student.exp() * (student - mixture)).sum(-1)
        return self.beta * kl_teacher + (1 - self.beta) * kl_student


@LOSSES.register("cross_entropy")
@dataclass(frozen=True)
class CrossEntropy(Loss):
    """−log q(target): on hard targets the NLL; on soft targets Σ_v p·(−log q)."""

    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("cross_entropy", self.reduction)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        student = torch.log_softmax(logits.float(), dim=-1)
        if targets.token_ids is not None:
            ids = targets.token_ids.clamp(min=0)
            return F.nll_loss(student.transpose(1, 2), ids, reduction="none")
        return -(targets.logprobs.exp() * student).sum(-1)


def build_loss(spec: str | dict, path: str = "loss") -> Loss:
    """`"forward_kl"` or `{"name": "jsd", "beta": 0.9}` → a loss; `path`: where `spec` sits in
    the run's configuration (named by errors)."""
    return build_component(LOSSES, spec, path)
