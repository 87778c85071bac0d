"""Per-token forget losses on the data's answer tokens (hard targets, the `labels` teacher).

Each returns (B, K) values reduced like every token loss (`reduce_tokens`: the mean over valid
answer tokens by default, which is open-unlearning's `[labels != -100].mean()`). Weights computed
from the model's own probabilities are detached: they scale each token's gradient, they are not
differentiated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import LOSSES, Loss, check_reduction
from mmunlearn.values import TokenTargets


def token_nll(logits: torch.Tensor, targets: TokenTargets, name: str) -> torch.Tensor:
    """−log q(y_t) per token: (B, K, V) logits, hard targets (B, K) → (B, K), float32."""
    if targets.token_ids is None:
        raise ValueError(
            f"{name} needs the answer tokens as hard targets: use the `labels` teacher"
        )
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return F.nll_loss(logprobs.transpose(1, 2), targets.token_ids.clamp(min=0), reduction="none")


def _check_power(name: str, field: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} {field}={value} must be >= 0")


@LOSSES.register("wga")
@dataclass(frozen=True)
class WeightedNLL(Loss):
    """WGA, weighted gradient ascent (Wang et al., "Rethinking LLM Unlearning Objectives: A
    Gradient Perspective and Go Beyond", arXiv 2502.19301): per token

        w_t · (−log p(y_t)),   w_t = sg[p(y_t)^β],

    ascended (the term's sign is −1). Tokens the model already gives low probability get little
    weight, so ascent stops pushing them toward −∞. `weight_power` is β (1.0, open-unlearning's
    WGA default); β = 0 is plain gradient ascent. Equals open-unlearning's `compute_wga_loss`
    with the term's sign."""

    weight_power: float = 1.0
    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("wga", self.reduction)
        _check_power("wga", "weight_power", self.weight_power)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        nll = token_nll(logits, targets, "wga")
        weight = torch.exp(-self.weight_power * nll.detach())  # p^β
        return weight * nll


@LOSSES.register("satimp")
@dataclass(frozen=True)
class SaturationImportanceNLL(Loss):
    """SatImp (Yang et al., "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning",
    arXiv 2505.11953): per token

        w_t · (−log p(y_t)),   w_t = sg[p(y_t)^β₁ · (1 − p(y_t))^β₂],

    ascended (the term's sign is −1): the saturation weight p^β₁ spares tokens already
    forgotten, the importance weight (1 − p)^β₂ spares tokens the model is certain of.
    `saturation_power` is β₁ (5.0), `importance_power` β₂ (1.0): open-unlearning's SatImp
    defaults. Equals open-unlearning's `compute_satimp_loss` with the term's sign."""

    saturation_power: float = 5.0
    importance_power: float = 1.0
    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("satimp", self.reduction)
        _check_power("satimp", "saturation_power", self.saturation_power)
        _check_power("satimp", "importance_power", self.importance_power)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        nll = token_nll(logits, targets, "satimp")
        p = torch.exp(-nll.detach())
        weight = p.pow(self.saturation_power) * (1 - p).pow(self.importance_power)
        return weight * nll


@LOSSES.register("ce_u")
@dataclass(frozen=True)
class CrossEntropyUnlearning(Loss):
    """CE-U, cross-entropy unlearning (Yang et al., arXiv 2503.01224): per token the cross-entropy
    from the model's own distribution with the gold token removed,

        −Σ_v p̃_v · log q_v,   p̃ = softmax(sg[z] with z_y = −∞),   q = softmax(z),

    minimised (sign +1): mass moves off the answer token to the tokens the model already ranks
    next, with a bounded gradient (q_y on the gold logit) where ascent's grows without bound.
    Equals open-unlearning's `cross_entropy_unlearning_loss`; its default of not training the
    first answer token is the `labels` teacher's `skip_first_tokens=1` in the `ce_u` method."""

    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("ce_u", self.reduction)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        if targets.token_ids is None:
            raise ValueError(
                "ce_u needs the answer tokens as hard targets: use the `labels` teacher"
            )
        logits = logits.float()
        gold = targets.token_ids.clamp(min=0).unsqueeze(-1)  # (B, K, 1)
        removed = logits.detach().scatter(-1, gold, float("-inf"))
        target = torch.softmax(removed, dim=-1)  # (B, K, V), 0 on the gold token
        return -(target * torch.log_softmax(logits, dim=-1)).sum(-1)


@LOSSES.register("logit_margin")
@dataclass(frozen=True)
class LogitMarginFlattening(Loss):
    """The forget loss of PDU (Entesari et al., "Constrained Entropic Unlearning: A Primal-Dual
    Framework for Large Language Models", arXiv 2506.05314): per token

        (max_v z_v − mean_v z_v)²,

    minimised: zero exactly when the logits are flat (the output distribution uniform), and,
    unlike maximising the entropy, scale-bounded in the logits. open-unlearning's PDU averages
    it over every position of the sequence; here, over the answer tokens."""

    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_reduction("logit_margin", self.reduction)

    def __call__(self, logits: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        logits = logits.float()
        return (logits.amax(-1) - logits.mean(-1)).pow(2)
