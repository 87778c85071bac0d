"""One adapter per model family: what differs between families once the loader has the model.

Everything else (chat templates, image-token expansion, image preprocessing) is the family's own
processor. The adapter only says how per-example image tensors batch, where the pixel channels
sit (for noise bounds), and whether the model wants our position ids. It is keyed by
`config.model_type`; a model of another type fails at load time with the supported list.

Image tensors, per example, as the processor returns them for one image (leading dim first):
| family | tensors | pixel layout |
| --- | --- | --- |
| llava | pixel_values (1, C, H, W) | chw |
| llava_next | pixel_values (1, P, C, H, W) (P: anyres tiles + base), image_sizes (1, 2) | chw |
| qwen2_vl, qwen2_5_vl | pixel_values (patches, C·T·p·p), image_grid_thw (1, 3) | flat_patches |
| idefics3, smolvlm | pixel_values (1, N, C, H, W), pixel_attention_mask (1, N, H, W) | chw |
A batch concatenates each tensor along dim 0 and zero-pads the other dims to the largest
(LLaVA-NeXT drops padded tiles by `image_sizes`, Idefics3 drops all-zero images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

PIXEL_LAYOUTS = ("chw", "flat_patches")


@dataclass(frozen=True)
class Family:
    """How one model family's inputs are batched.

    image_keys: the processor outputs that belong to an image (concatenated along dim 0).
    pixel_layout: `chw` — pixel tensors end in (C, H, W); `flat_patches` — rows are patches
      flattened channel-major, C blocks of T·p·p values (Qwen2-VL's image processor).
    position_ids: False when the model computes its own (multimodal RoPE), so we never pass ours.
    token_types: the name of a per-token tensor marking image tokens with 1 (0 = text), if the
      model needs one (Qwen2-VL's `mm_token_type_ids`, from which it builds 3D positions).
    fan_in_fan_out: the linear layers store weights transposed (GPT-2's Conv1D); LoRA must know.
    """

    name: str
    kind: str  # "vision_language" | "causal_lm"
    image_keys: tuple[str, ...] = ()
    pixel_layout: str = "chw"
    position_ids: bool = True
    token_types: str | None = None
    fan_in_fan_out: bool = False

    def __post_init__(self) -> None:
        if self.pixel_layout not in PIXEL_LAYOUTS:
            raise ValueError(f"pixel_layout={self.pixel_layout!r}; expected one of {PIXEL_LAYOUTS}")


LLAVA = Family("llava", "vision_language", ("pixel_values",))
LLAVA_NEXT = Family("llava_next", "vision_language", ("pixel_values", "image_sizes"))
QWEN2_VL = Family(
    "qwen2_vl",
    "vision_language",
    ("pixel_values", "image_grid_thw"),
    pixel_layout="flat_patches",
    position_ids=False,
    token_types="mm_token_type_ids",
)
IDEFICS3 = Family("idefics3", "vision_language", ("pixel_values", "pixel_attention_mask"))
CAUSAL_LM = Family("causal_lm", "causal_lm")
GPT2 = Family("gpt2", "causal_lm", fan_in_fan_out=True)

# config.model_type → adapter: the one source of truth for what is supported.
FAMILIES: dict[str, Family] = {
    "llava": LLAVA,
    "llava_next": LLAVA_NEXT,
    "qwen2_vl": QWEN2_VL,
    "qwen2_5_vl": QWEN2_VL,
    "idefics3": IDEFICS3,
    "smolvlm": IDEFICS3,  # same inputs as Idefics3; untested here (its processor needs num2words)
    "gpt2": GPT2,
    "llama": CAUSAL_LM,
    "gemma3_text": CAUSAL_LM,
    "olmo": CAUSAL_LM,
    "olmo2": CAUSAL_LM,
    "qwen2": CAUSAL_LM,
}


def family_of(config: Any, source: object = "the model") -> Family:
    """The adapter for `config.model_type`, or a ValueError naming the supported types."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"{source}: model_type={model_type!r} is not a supported model family; supported: "
            f"{', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def concat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0, zero-padding every other dim to the largest."""
    ndim = tensors[0].dim()
    size = [max(t.shape[d] for t in tensors) for d in range(1, ndim)]
    padded = []
    for t in tensors:
        if list(t.shape[1:]) != size:
            out = t.new_zeros((t.shape[0], *size))
            out[(slice(None), *(slice(0, s) for s in t.shape[1:]))] = t
            t = out
        padded.append(t)
    return torch.cat(padded)


def pixel_bounds(processor: Any, family: Family) -> tuple[torch.Tensor, torch.Tensor]:
    """The valid normalised range ((0 − mean)/std, (1 − mean)/std), shaped to broadcast over
    one image's pixel tensor: (C, 1, 1) for `chw`; (C·T·p·p,) for `flat_patches`, each channel's
    bound repeated over its contiguous block of T·p·p values."""
    image_processor = getattr(processor, "image_processor", None)
    mean = torch.tensor(getattr(image_processor, "image_mean", None) or [0.5, 0.5, 0.5])
    std = torch.tensor(getattr(image_processor, "image_std", None) or [0.5, 0.5, 0.5])
    low, high = (0 - mean) / std, (1 - mean) / std  # (C,)
    if family.pixel_layout == "flat_patches":
        block = image_processor.temporal_patch_size * image_processor.patch_size**2
        return low.repeat_interleave(block), high.repeat_interleave(block)
    return low.view(-1, 1, 1), high.view(-1, 1, 1)
