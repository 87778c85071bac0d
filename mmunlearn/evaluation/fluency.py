"""Fluency: a model's perplexity on held-out general text, read as plain text (no chat template).

An unlearned model whose perplexity on text unrelated to the forget set rises well above the
base model's has lost general language ability, not just the forgotten facts.

The text is tokenised once and cut into chunks of at most `chunk_tokens` tokens, each scored on
its own: no context crosses a chunk boundary. Every chunk starts with the special tokens the
tokenizer puts before a text (`add_special_tokens=True`: Llama's and Gemma's BOS; none for GPT-2
or SmolLM2). The boundary rule: a chunk's first text token is predicted from those special
tokens alone or, where the tokenizer adds none, is not scored (nothing predicts it). Special
tokens the tokenizer puts after a text (an EOS) are left out, as each chunk ends mid-text.

Memory: the model's own forward (its head, soft-capping and all) gives full logits (B, T, V) per
batch, so a batch holds `batch_size` × `chunk_tokens` × vocabulary floats (4 × 128 × 262k ≈
0.5 GB in float32); float32 log-probs are then taken one row at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mmunlearn.models.encoding import IGNORE_INDEX
from mmunlearn.models.loading import LoadedModel

TEXT_SETTING = "--fluency-text (EvalSettings.fluency_text)"
DEFAULT_CHUNK_TOKENS = 128
DEFAULT_BATCH_SIZE = 4  # full logits per batch: keep it small (see the module docstring)


@dataclass(frozen=True)
class Perplexity:
    nll: float  # token-weighted mean negative log-likelihood, nats per scored token
    tokens: int  # scored tokens
    chunks: int  # sequences scored

    @property
    def perplexity(self) -> float:
        """exp(mean NLL), in [1, ∞); lower = the text is likelier under the model."""
        return math.exp(self.nll)


def read_fluency_text(path: str | Path) -> str:
    """The UTF-8 text at `path`; a missing, unreadable or empty file is a ValueError naming it."""
    if not Path(path).is_file():
        raise ValueError(f"{TEXT_SETTING} {str(path)!r}: no such file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{TEXT_SETTING} {str(path)!r}: not readable as UTF-8 text ({error})"
        ) from error
    if not text.strip():
        raise ValueError(f"{TEXT_SETTING} {str(path)!r}: the file holds no text")
    return text


def chunk_text(
    tokenizer: Any, text: str, chunk_tokens: int = DEFAULT_CHUNK_TOKENS
) -> list[tuple[list[int], list[int]]]:
    """`text` as (input_ids, labels) chunks of at most `chunk_tokens` tokens, special tokens
    included; labels are the input ids where scored, IGNORE_INDEX elsewhere (the boundary rule
    of the module docstring). Chunks with nothing to score are dropped."""
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = _special_prefix(tokenizer(text, add_special_tokens=True)["input_ids"], plain)
    if chunk_tokens < 2 or chunk_tokens <= len(prefix):
        raise ValueError(
            f"fluency_chunk_tokens {chunk_tokens}: expected at least {max(2, len(prefix) + 1)} "
            f"(the tokenizer puts {len(prefix)} special token(s) before each chunk)"
        )
    width = chunk_tokens - len(prefix)
    chunks = []
    for start in range(0, len(plain), width):
        window = plain[start : start + width]
        labels = [IGNORE_INDEX] * len(prefix) + window
        if not prefix:
            labels[0] = IGNORE_INDEX  # nothing before it predicts the first token
        if any(label != IGNORE_INDEX for label in labels):
            chunks.append((prefix + window, labels))
    return chunks


def _special_prefix(with_special: list[int], plain: list[int]) -> list[int]:
    """The tokens `add_special_tokens=True` puts before the plain ones."""
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            return with_special[:start]
    raise ValueError(
        "fluency: the tokenizer's ids with special tokens do not contain its plain ids; "
        "cannot tell which special tokens begin a text"
    )


@torch.inference_mode()
def compute_perplexity(
    loaded: LoadedModel,
    text: str,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> Perplexity:
    """Perplexity of `loaded.model` on `text`: exp of the mean NLL over every scored token of
    every chunk (token-weighted, so a short last chunk counts for its tokens only).

    Vision-language models run text-only (input_ids and attention_mask, no image).
    """
    chunks = chunk_text(loaded.tokenizer, text, chunk_tokens)
    if not chunks:
        raise ValueError(f"fluency: no token to score in {text[:40]!r}")
    model = loaded.model.eval()
    device = next(model.parameters()).device
    nll, tokens = 0.0, 0
    starts = range(0, len(chunks), batch_size)
    for start in tqdm(starts, desc="fluency", disable=not progress, leave=False):
        input_ids, attention_mask, labels = _right_padded(chunks[start : start + batch_size])
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            use_cache=False,
        ).logits  # (B, T, V)
        targets = labels[:, 1:].to(device)  # (B, T-1): position t predicts token t+1
        for row in range(len(targets)):
            keep = targets[row] != IGNORE_INDEX  # (T-1,)
            logprobs = torch.log_softmax(logits[row, :-1][keep], dim=-1, dtype=torch.float32)
            picked = logprobs.gather(-1, targets[row][keep].unsqueeze(-1))  # (n, 1)
            nll -= picked.double().sum().item()
            tokens += int(keep.sum())
        del logits
    return Perplexity(nll=nll / tokens, tokens=tokens, chunks=len(chunks))


def _right_padded(
    chunks: list[tuple[list[int], list[int]]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels), each (B, T). Right padding keeps every row's
    positions 0, 1, ... as in its unpadded forward; padded positions are masked and unscored,
    so the pad id (0) does not matter."""
    length = max(len(ids) for ids, _ in chunks)
    input_ids = torch.zeros(len(chunks), length, dtype=torch.long)
    attention_mask = torch.zeros(len(chunks), length, dtype=torch.long)
    labels = torch.full((len(chunks), length), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, row_labels) in enumerate(chunks):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.tensor(row_labels)
    return input_ids, attention_mask, labels
