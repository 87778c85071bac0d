"""Tiny worlds, models and batches for tests, notebooks and users' own experiments."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.models.encoding import FALLBACK_TEMPLATE
from mmunlearn.models.families import family_of
from mmunlearn.models.loading import LoadedModel
from mmunlearn.models.tiny import (
    TinyCausalLMConfig,
    TinyLlavaConfig,
    build_tiny_causal_lm,
    build_tiny_llava,
    build_word_tokenizer,
)
from mmunlearn.models.tiny_families import TINY_FAMILIES
from mmunlearn.training.world_models import vocabulary_texts

TINY_WORLD = WorldConfig(
    seed=0, n_forget=2, n_retain=6, n_practice=2, n_holdout=2, n_general=4, n_unused_names=4
)
TINY_MODEL = TinyLlavaConfig(
    image_size=32,
    patch_size=16,
    vision_width=16,
    vision_layers=1,
    text_width=32,
    text_layers=1,
    heads=2,
)


def tiny_world(directory: str | Path, config: WorldConfig = TINY_WORLD) -> list[Example]:
    """Write a tiny synthetic world to `directory` and load it back through the real loader."""
    world = build_world(config)
    save_world(world, directory)
    return load_examples(directory)


def tiny_llava(
    examples: list[Example], seed: int = 0, config: TinyLlavaConfig = TINY_MODEL
) -> LoadedModel:
    """An untrained LLaVA-style model (a few thousand parameters) whose vocabulary covers `examples`."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(vocabulary_texts(examples, []))
    model, processor = build_tiny_llava(tokenizer, config)
    return LoadedModel(model, processor, "vision_language")


def tiny_family(name: str, examples: list[Example], seed: int = 0) -> LoadedModel:
    """An untrained tiny model of family `name` (see `mmunlearn.models.tiny_families`) with its
    real processor or tokenizer, whose vocabulary covers `examples`."""
    torch.manual_seed(seed)
    model, processor = TINY_FAMILIES.get(name)(vocabulary_texts(examples, []))
    return LoadedModel(model, processor, family_of(model.config).kind)


def tiny_causal_lm(examples: list[Example], family: str = "gpt2", seed: int = 0) -> LoadedModel:
    """An untrained text-only GPT-2- or Llama-style model whose vocabulary covers `examples`."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(vocabulary_texts(examples, [FALLBACK_TEMPLATE]))
    config = TinyCausalLMConfig(family=family, width=32, layers=1, heads=2, max_positions=128)
    return LoadedModel(build_tiny_causal_lm(tokenizer, config), tokenizer, "causal_lm")


def foreign_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer of another model, smaller than any tiny model's vocabulary: ordinary words
    sit at the ids the tiny models use for <s> and </s> (1, 2), and its own end-of-text token
    and image token are elsewhere (the mismatch `loading.check_compatible` must catch)."""
    words = ["Who", "is", "this", "?", "<unk>", "<pad>", "<|endoftext|>", "<image>"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>"},
    )


def png_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    """A one-colour PNG, encoded: the image cell of a Hugging Face parquet split."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def write_parquet_split(folder: str | Path, rows: list[dict]) -> None:
    """`rows` saved as one split the way Hugging Face datasets ship them (MLLMU-Bench, CLEAR)."""
    import pandas as pd

    Path(folder).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(Path(folder) / "train-00000-of-00001.parquet")
