"""Hidden-state losses (`reads = "hidden"`): the student's hidden states (B, K, H) at its term's
layer against a target, per token the mean squared error over the H features (RMU).

WMDP's reference code takes `mse_loss` over every element of the batch, i.e. the mean over tokens
of these per-token values: our default `mean` reduction. open-unlearning's RMU averages each
sequence's tokens first, then the sequences (equal when the rows have equal lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mmunlearn.losses.divergences import LOSSES, Loss, check_reduction
from mmunlearn.values import TokenTargets


def control_vector(width: int, steering_coeff: float, seed: int) -> torch.Tensor:
    """c·u, u a unit vector drawn once from U[0, 1)^H by `seed` (WMDP's `torch.rand`): (H,)."""
    direction = torch.rand(width, generator=torch.Generator().manual_seed(seed))
    return steering_coeff * direction / direction.norm()


@LOSSES.register("rmu_steer")
@dataclass(frozen=True)
class SteerToControl(Loss):
    """RMU's forget loss (Li et al., "The WMDP Benchmark", arXiv 2403.03218, eq. 1): per token

        (1/H) ‖h_ℓ(t) − c·u‖²,

    h_ℓ the student's hidden states at the term's layer ℓ, u a fixed random unit vector, c the
    steering coefficient (`steering_coeff`, 6.5: the paper's Zephyr-7B setting; their Mixtral
    used 300). Scrambles the layer's activations on the forget data. Targets: only the mask
    (the `labels` teacher)."""

    steering_coeff: float = 6.5
    seed: int = 0
    reduction: str = "mean"
    reads: ClassVar[str] = "hidden"

    def __post_init__(self) -> None:
        check_reduction("rmu_steer", self.reduction)
        if self.steering_coeff <= 0:
            raise ValueError(f"rmu_steer steering_coeff={self.steering_coeff} must be > 0")

    def __call__(self, hidden: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        hidden = hidden.float()
        control = control_vector(hidden.shape[-1], self.steering_coeff, self.seed)
        return (hidden - control.to(hidden.device)).pow(2).mean(-1)  # (B, K)


@LOSSES.register("hidden_mse")
@dataclass(frozen=True)
class HiddenMSE(Loss):
    """RMU's retain loss (arXiv 2403.03218, eq. 2): per token (1/H) ‖h_ℓ(t) − h_ℓ^base(t)‖², the
    student's hidden states against the frozen base's at the same layer (the `base_hidden`
    teacher)."""

    reduction: str = "mean"
    reads: ClassVar[str] = "hidden"

    def __post_init__(self) -> None:
        check_reduction("hidden_mse", self.reduction)

    def __call__(self, hidden: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        # imported here: loading the losses loads no teacher (tests/test_layers.py); the value
        # type belongs in mmunlearn/values.py beside TokenTargets
        from mmunlearn.teachers.hidden import HiddenTargets

        if not isinstance(targets, HiddenTargets):
            raise ValueError(
                "hidden_mse compares hidden states with a teacher's: use a hidden-state teacher "
                "(`base_hidden`)"
            )
        return (hidden.float() - targets.hidden.to(hidden.device)).pow(2).mean(-1)  # (B, K)
