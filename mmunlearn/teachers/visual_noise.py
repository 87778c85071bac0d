"""Seeded visual-noise interventions on pixel values (in the processor's normalised space).

Noise is drawn per image, over exactly that image's own pixel tensor whatever the family's layout
((C, H, W), anyres tiles (P, C, H, W), or Qwen2-VL's flattened patches (patches, C·T·p·p)): the
batch records each image's extent (`image_shapes`), so padding added by batching stays zero. The
`replace` range is the per-channel normalised range, shaped by the family adapter to the layout
(`families.pixel_bounds`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mmunlearn.components import OnlyFor
from mmunlearn.data.example import Example
from mmunlearn.models.families import pixel_bounds
from mmunlearn.teachers.targets import (
    TEACHERS,
    Teacher,
    TeacherContext,
    TokenTargets,
    stable_seed,
)

NOISE_KINDS = ("gaussian", "diffusion", "replace")
SEED_BY = ("example", "image")


@dataclass(frozen=True)
class VisualNoise:
    """A visual-noise intervention.

    kind: `gaussian` adds N(0, std²) (σ = `std`); `diffusion` applies the DDPM forward process
    x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε at `step` t of `num_steps` (linear β from 1e-4 to 0.02, t = 0 is
    the identity); `replace` draws every pixel uniformly over the valid normalised range, as the
    VGID authors' released code does. Each example's noise is seeded by (`seed`, example id, draw);
    with `seed_by="image"` by (`seed`, image path, draw) instead, so that every question about one
    image sees the same noised image, and a batch encodes that image's prefix once
    (`train.share_image_prefix`).
    """

    # which kind reads which field: a configured `std` under kind=replace is refused, not ignored
    only_for: ClassVar[OnlyFor] = OnlyFor(
        "kind", {"std": ("gaussian",), "step": ("diffusion",), "num_steps": ("diffusion",)}
    )

    kind: str = "replace"
    std: float = 1.0
    step: int = 500
    num_steps: int = 1000
    seed: int = 0
    seed_by: str = "example"

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"noise kind={self.kind!r}; expected one of {NOISE_KINDS}")
        if self.seed_by not in SEED_BY:
            raise ValueError(f"noise seed_by={self.seed_by!r}; expected one of {SEED_BY}")
        if self.std < 0:
            raise ValueError(f"noise std={self.std} must be >= 0")
        if not 0 <= self.step <= self.num_steps:
            raise ValueError(
                f"noise step={self.step} must be within [0, num_steps={self.num_steps}]"
            )

    def seed_key(self, example: Example) -> str:
        """What seeds `example`'s noise: its id, or its image path with `seed_by="image"`."""
        return example.image if self.seed_by == "image" else example.id

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
        """Noise a stack of images `pixels` (N, ...); `keys[i]` names image i (for its seed)."""
        noised = [
            self.noise_image(image, key, bounds, draw)
            for image, key in zip(pixels, keys, strict=True)
        ]
        return torch.stack(noised)

    def noise_image(
        self,
        image: torch.Tensor,
        key: str,
        bounds: tuple[torch.Tensor, torch.Tensor],
        draw: int = 0,
    ) -> torch.Tensor:
        """Noise one image's pixel tensor (any shape); `bounds` (low, high) broadcast over it."""
        gen = torch.Generator().manual_seed(stable_seed(self.seed, key, draw))
        if self.kind == "replace":
            low, high = (b.to(image) for b in bounds)
            uniform = torch.rand(image.shape, generator=gen).to(image)
            return low + (high - low) * uniform
        eps = torch.randn(image.shape, generator=gen).to(image)
        if self.kind == "gaussian":
            return image + self.std * eps
        a = self.alpha_bar()
        return math.sqrt(a) * image + math.sqrt(1 - a) * eps


def noised_batch(
    ctx: TeacherContext, batch: dict[str, Any], noise: VisualNoise, draw: int
) -> dict[str, Any]:
    """`batch` with each image's own pixels noised (seeded by its example id); padding untouched."""
    if "pixel_values" not in batch:
        return batch
    examples = batch["examples"]
    loaded = ctx.encoder.loaded
    bounds = pixel_bounds(loaded.processor, loaded.family)
    pixels = batch["pixel_values"].clone()
    start = 0
    for row, shape in zip(batch["image_rows"].tolist(), batch["image_shapes"], strict=True):
        # this image: `shape[0]` entries along dim 0, its own extent along the others
        region = (slice(start, start + shape[0]), *(slice(0, s) for s in shape[1:]))
        key = noise.seed_key(examples[row])
        pixels[region] = noise.noise_image(pixels[region], key, bounds, draw)
        start += shape[0]
    return {**batch, "pixel_values": pixels}


@TEACHERS.register("visual_noise")
@dataclass(frozen=True)
class VisualNoiseTeacher(Teacher):
    """Frozen base on a noised image only (the VGID authors' released code; a VGID ablation)."""

    noise: VisualNoise = VisualNoise()
    draws: int = 1
    needs_images: ClassVar[bool] = True

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        draws = [noised_batch(ctx, batch, self.noise, d) for d in range(self.draws)]
        return TokenTargets(mask=labels != -100, logprobs=ctx.mean_logprobs(draws, labels))
