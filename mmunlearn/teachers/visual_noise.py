"""Seeded visual-noise interventions on pixel values (in the processor's normalised space)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.teachers.targets import (
    TEACHERS,
    TeacherContext,
    TokenTargets,
    mean_of_draws,
    stable_seed,
)

NOISE_KINDS = ("gaussian", "diffusion", "replace")


@dataclass(frozen=True)
class VisualNoise:
    """A visual-noise intervention.

    kind: `gaussian` adds N(0, std²) (σ = `std`); `diffusion` applies the DDPM forward process
    x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε at `step` t of `num_steps` (linear β from 1e-4 to 0.02, t = 0 is
    the identity); `replace` draws every pixel uniformly over the valid normalised range, as the
    VGID authors' released code does. Each example's noise is seeded by (`seed`, example id, draw).
    """

    kind: str = "replace"
    std: float = 1.0
    step: int = 500
    num_steps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"noise kind={self.kind!r}; expected one of {NOISE_KINDS}")
        if self.std < 0:
            raise ValueError(f"noise std={self.std} must be >= 0")
        if not 0 <= self.step <= self.num_steps:
            raise ValueError(
                f"noise step={self.step} must be within [0, num_steps={self.num_steps}]"
            )

    def alpha_bar(self) -> float:
        betas = torch.linspace(1e-4, 0.02, self.num_steps, dtype=torch.float64)
        return 1.0 if self.step == 0 else float(torch.cumprod(1 - betas, 0)[self.step - 1])

    def apply(
        self,
        pixels: torch.Tensor,
        keys: Sequence[str],
        bounds: tuple[torch.Tensor, torch.Tensor],
        draw: int = 0,
    ) -> torch.Tensor:
        """Noise `pixels` (N, C, H, W); `keys[i]` names image i (for its seed)."""
        noised = []
        for image, key in zip(pixels, keys, strict=True):
            gen = torch.Generator().manual_seed(stable_seed(self.seed, key, draw))
            if self.kind == "replace":
                low, high = (b.view(-1, 1, 1).to(image) for b in bounds)
                uniform = torch.rand(image.shape, generator=gen).to(image)
                noised.append(low + (high - low) * uniform)
                continue
            eps = torch.randn(image.shape, generator=gen).to(image)
            if self.kind == "gaussian":
                noised.append(image + self.std * eps)
            else:
                a = self.alpha_bar()
                noised.append(math.sqrt(a) * image + math.sqrt(1 - a) * eps)
        return torch.stack(noised)


def pixel_bounds(processor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel range of valid normalised pixels: ((0 − mean)/std, (1 − mean)/std)."""
    image_processor = getattr(processor, "image_processor", None)
    mean = torch.tensor(getattr(image_processor, "image_mean", None) or [0.5, 0.5, 0.5])
    std = torch.tensor(getattr(image_processor, "image_std", None) or [0.5, 0.5, 0.5])
    return (0 - mean) / std, (1 - mean) / std


def noised_batch(
    ctx: TeacherContext, batch: dict[str, Any], noise: VisualNoise, draw: int
) -> dict[str, Any]:
    if "pixel_values" not in batch:
        return batch
    examples = batch["examples"]
    keys = [examples[row].id for row in batch["image_rows"].tolist()]
    bounds = pixel_bounds(ctx.encoder.loaded.processor)
    return {**batch, "pixel_values": noise.apply(batch["pixel_values"], keys, bounds, draw)}


@TEACHERS.register("visual_noise")
@dataclass(frozen=True)
class VisualNoiseTeacher:
    """Frozen base on a noised image only (the VGID authors' released code; a VGID ablation)."""

    noise: VisualNoise = VisualNoise()
    draws: int = 1
    needs_images = True  # on a text-only model it would equal the base: refused, not run

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        draws = [
            ctx.logprobs(noised_batch(ctx, batch, self.noise, d), labels) for d in range(self.draws)
        ]
        return TokenTargets(mask=labels != -100, logprobs=mean_of_draws(draws))
