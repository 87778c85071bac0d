"""One loader for every model family: vision-language or text-only, from a local directory
(or anything `sources.resolve_model` turns into one: a .gguf file, a registry name, a hub id)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
)

from mmunlearn.models.families import Family, family_of
from mmunlearn.models.sources import resolve_model

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model with the processor (vision-language) or tokenizer (text-only) that feeds it."""

    model: PreTrainedModel
    processor: Any
    kind: str  # "vision_language" | "causal_lm"

    @property
    def family(self) -> Family:
        return family_of(self.model.config)

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def save(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def saved_config(path: Path) -> Any:
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"--model {str(path)!r}: no config.json there; expected a directory written by "
            "save_pretrained (model weights + processor or tokenizer files)"
        )
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path / 'config.json'}: not a valid JSON file ({error}); expected the config "
            "save_pretrained writes"
        ) from None
    return AutoConfig.from_pretrained(path, local_files_only=True)


def model_kind(path: str | Path) -> str:
    """ "vision_language" or "causal_lm", read from the saved config alone (no weights loaded)."""
    path = resolve_model(path)
    return family_of(saved_config(path), path).kind


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a model and its processor from a local directory, or from what `resolve_model`
    makes one of (a .gguf file, a `get-model` name, a hub id where a hub is reachable)."""
    path = resolve_model(path)
    config = saved_config(path)
    family = family_of(config, path)  # an unsupported family fails here, before any weights load
    check_tokenizer_files(path)
    if family.kind == "vision_language":
        with readable_weights(path):
            model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=dtype, local_files_only=True
            )
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        kind = "vision_language"
        if not hasattr(processor, "image_processor"):
            raise ValueError(
                f"{path}: the model is vision-language ({config.model_type}) but the saved "
                f"processor is a {type(processor).__name__} without an image processor"
            )
    else:
        with readable_weights(path):
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
        processor = AutoTokenizer.from_pretrained(path, local_files_only=True)
        kind = "causal_lm"
    loaded = LoadedModel(model, processor, kind)
    check_compatible(loaded, path)
    check_finite(model, path)
    log.info(
        "loaded %s (%s, %.2fM parameters)", path, config.model_type, count_parameters(model) / 1e6
    )
    return loaded


# Files one of which every saved tokenizer has (fast, SentencePiece, BPE, WordPiece, tiktoken).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt")


def check_tokenizer_files(path: Path) -> None:
    """A model folder without a tokenizer fails here, not with an index error mid-training."""
    if not any((path / name).is_file() for name in TOKENIZER_FILES) and not any(
        path.glob("*.tiktoken")
    ):
        raise ValueError(
            f"--model {str(path)!r}: no tokenizer files there (looked for "
            f"{', '.join(TOKENIZER_FILES)} and *.tiktoken); save the model's processor or "
            "tokenizer into the same folder (processor.save_pretrained(folder))"
        )


def _ids(value: Any) -> set[int]:
    """A config's token id setting (an int, a list of them, or None) as a set."""
    if value is None:
        return set()
    return {int(v) for v in value} if isinstance(value, list | tuple) else {int(value)}


@contextlib.contextmanager
def readable_weights(path: Path) -> Iterator[None]:
    """A weights file that cannot be read (truncated by a killed copy, damaged) is named."""
    try:
        yield
    except SafetensorError as error:
        raise ValueError(
            f"--model {str(path)!r}: its weights cannot be read ({error}); a .safetensors file "
            "there is truncated or damaged: copy or save the model again"
        ) from None


def check_finite(model: torch.nn.Module, source: str | Path) -> None:
    """Weights holding NaN or inf (a diverged run) are refused: every score of such a model
    would be meaningless (a NaN model generates nothing, which reads as perfect forgetting)."""
    for name, tensor in model.named_parameters():  # buffers may hold -inf masks on purpose
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            what = "NaN" if tensor.isnan().any() else "inf"
            raise ValueError(
                f"--model {source}: the weights hold {what} (in {name}); they are not finite, "
                "so the model cannot be trained or evaluated (was it written by a run that "
                "diverged?)"
            )


def check_compatible(loaded: LoadedModel, source: str | Path) -> None:
    """Fail early on a model/processor mismatch instead of an index error deep inside torch:
    a vocabulary larger than the embedding, or special-token and image-token ids that are not
    the ones the model's config names (a processor saved from another model, even a smaller
    one)."""
    tokenizer = loaded.tokenizer
    vocab = loaded.model.get_input_embeddings().num_embeddings
    foreign = "the processor does not belong to this model"
    if len(tokenizer) > vocab:
        raise ValueError(
            f"{source}: the tokenizer has {len(tokenizer)} tokens but the model's embedding has "
            f"{vocab} rows; {foreign}"
        )
    config = loaded.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    generation = getattr(loaded.model, "generation_config", None)
    special = set(tokenizer.all_special_ids) | {
        i for i, token in tokenizer.added_tokens_decoder.items() if token.special
    }
    for name in ("bos", "eos"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        configured = _ids(getattr(text, f"{name}_token_id", None))
        if name == "eos":  # the end of an assistant turn may be listed beside the text's end
            configured |= _ids(getattr(generation, "eos_token_id", None))
        # A chat model's config may name another of its tokenizer's special tokens (the end
        # of a turn); ids that are ordinary words or no token at all mean another tokenizer.
        if token_id is not None and configured and not configured <= special | {token_id}:
            raise ValueError(
                f"{source}: the tokenizer's {name} token {getattr(tokenizer, f'{name}_token')!r} "
                f"has id {token_id} but the model's config says {name}_token_id="
                f"{sorted(configured) if len(configured) > 1 else next(iter(configured))}; "
                f"{foreign}"
            )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    image_token_id = getattr(config, "image_token_id", None)
    if image_token_id is None:
        image_token_id = getattr(config, "image_token_index", None)  # older LLaVA configs
    if loaded.kind != "vision_language" or image_token_id is None:
        return
    if image_token_id >= vocab:
        raise ValueError(f"{source}: image_token_id={image_token_id} is outside the vocabulary")
    image_token = getattr(loaded.processor, "image_token", None)
    if image_token is not None:
        processor_id = tokenizer.convert_tokens_to_ids(image_token)
        if processor_id != image_token_id:
            raise ValueError(
                f"{source}: the processor's image token {image_token!r} has id {processor_id} "
                f"but the model's config says image_token_id={image_token_id}; {foreign}"
            )


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
