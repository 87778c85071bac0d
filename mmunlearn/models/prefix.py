"""Answer logits with each shared image prefix encoded once per batch.

Several questions about one image (MLLMU-Bench asks about five per portrait) share their first
tokens: the chat header, the image's hundreds of tokens (576 for LLaVA-1.5) and any common start
of the question, such as VGID's in-context "Forget {entity} ." prompt. `prefix_answer_logits`
runs the model once over each distinct prefix, keeps its key/value cache, repeats the cache for
every row that shares it and runs the rows' own suffixes on top. Gradients flow through the
repeated cache, so a student trained this way gets the same gradients as with the plain forward:
the logits equal `answer_logits`'s up to floating-point rounding (tests/models/test_prefix.py).

Rows share a prefix when their image tensors are equal (the same image, or the same noised
image: see `VisualNoise.seed_by`). The prefix is the rows' longest common token prefix, cut so
that it keeps every image token and leaves each row's answer positions to the suffix. A batch
with no two rows sharing an image, or whose prefixes are too short to save half the positions,
goes through the plain forward unchanged. Families whose model
computes its own positions (Qwen2-VL's multimodal RoPE) always take the plain forward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.models.encoding import IGNORE_INDEX, answer_length, image_keys
from mmunlearn.models.forward import answer_logits

# Two passes are worth it only when they run at most this share of the plain pass's positions
# (measured: with 16 image tokens, sharing them was slower than one pass).
SAVING = 0.5


def image_tensors(batch: dict[str, Any], key: str) -> list[torch.Tensor]:
    """Each image's own slice of `batch[key]` (images are concatenated along dim 0)."""
    tensors, start = [], 0
    for shape in batch["image_shapes"]:
        tensors.append(batch[key][start : start + shape[0]])
        start += shape[0]
    return tensors


def image_groups(batch: dict[str, Any]) -> list[list[int]]:
    """Rows grouped by equal image tensors (rows without an image are groups of one)."""
    rows = len(batch["input_ids"])
    if "image_rows" not in batch:
        return [[row] for row in range(rows)]
    pixels = dict(
        zip(batch["image_rows"].tolist(), image_tensors(batch, "pixel_values"), strict=True)
    )
    groups: list[list[int]] = []
    for row in range(rows):
        for group in groups:
            first = group[0]
            if row in pixels and first in pixels and torch.equal(pixels[row], pixels[first]):
                group.append(row)
                break
        else:
            groups.append([row])
    return groups


def _prefix_length(rows: list[list[int]], keep: int, image_token_id: int | None) -> int:
    """The rows' longest common prefix, leaving `keep` tokens of every row to its suffix and
    taking every image token along (0 when it cannot)."""
    common = min(len(r) for r in rows) - keep
    for i in range(max(common, 0)):
        if any(r[i] != rows[0][i] for r in rows[1:]):
            common = i
            break
    if common <= 0:
        return 0
    if image_token_id is not None and any(image_token_id in r[common:] for r in rows):
        return 0
    return common


def _cheaper_split(
    group: list[int],
    tokens: list[list[int]],
    prompts: list[tuple[int, ...]],
    keep: int,
    image_token_id: int | None,
) -> list[list[int]]:
    """One image's rows as one group, or split by identical prompt (the options of one
    multiple-choice question share their whole prompt), whichever encodes fewer tokens."""

    def cost(groups: list[list[int]]) -> int:
        total = 0
        for g in groups:
            shared = _prefix_length([tokens[r] for r in g], keep, image_token_id)
            total += shared + sum(len(tokens[r]) - shared for r in g)
        return total

    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for row in group:
        by_prompt.setdefault(prompts[row], []).append(row)
    split = list(by_prompt.values())
    return split if len(split) > 1 and cost(split) < cost([group]) else [group]


@dataclass(frozen=True)
class SharePlan:
    """Which rows share which prefix: `groups[g]` encode their first `lengths[g]` tokens once."""

    tokens: list[list[int]]  # each row's real tokens
    groups: list[list[int]]
    lengths: list[int]
    answer: int  # K: the batch's longest answer


def share_plan(batch: dict[str, Any], image_token_id: int | None) -> SharePlan | None:
    """How `batch`'s rows share prefixes, or None when the one-pass forward is the better way."""
    if "position_ids" not in batch:  # the model computes its own (multimodal) positions
        return None
    groups = [g for g in image_groups(batch) if len(g) > 1]
    if not groups:
        return None
    k = answer_length(batch["labels"])
    real = batch["attention_mask"].bool()  # (B, T)
    tokens = [batch["input_ids"][row][real[row]].tolist() for row in range(len(real))]
    labels = [batch["labels"][row][real[row]].tolist() for row in range(len(real))]
    prompts = [
        tuple(t for t, y in zip(row, row_labels, strict=True) if y == IGNORE_INDEX)
        for row, row_labels in zip(tokens, labels, strict=True)
    ]
    groups = [
        g for group in groups for g in _cheaper_split(group, tokens, prompts, k + 1, image_token_id)
    ]
    shared = {row for group in groups for row in group}
    groups += [[row] for row in range(len(tokens)) if row not in shared]
    lengths = [_prefix_length([tokens[r] for r in g], k + 1, image_token_id) for g in groups]
    if not all(lengths) or _padded_cost(tokens, groups, lengths) > SAVING * real.numel():
        return None
    return SharePlan(tokens, groups, lengths, k)


def prefix_answer_logits(
    model: torch.nn.Module, batch: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`answer_logits(model, batch)`, encoding each prefix shared by several rows once."""
    plan = share_plan(batch, getattr(model.config, "image_token_id", None))
    if plan is None:
        return answer_logits(model, batch)
    device = batch["input_ids"].device
    groups, lengths = plan.groups, plan.lengths
    prefix = _left_padded(
        [plan.tokens[g[0]][:n] for g, n in zip(groups, lengths, strict=True)], device
    )
    out = model(
        input_ids=prefix["input_ids"],
        attention_mask=prefix["attention_mask"],
        position_ids=prefix["position_ids"],
        **_group_images(batch, groups),
        use_cache=True,
        logits_to_keep=1,
    )
    group_of = torch.empty(len(plan.tokens), dtype=torch.long)
    prefix_of = [0] * len(plan.tokens)
    for index, (group, n) in enumerate(zip(groups, lengths, strict=True)):
        for row in group:
            group_of[row], prefix_of[row] = index, n
    group_of = group_of.to(device)
    cache = out.cache if "cache" in out else out.past_key_values  # renamed in transformers 5.x
    cache.reorder_cache(group_of)  # (G, ...) → (B, ...): every row gets its group's prefix
    suffix = _left_padded([t[n:] for t, n in zip(plan.tokens, prefix_of, strict=True)], device)
    offsets = torch.tensor(prefix_of, device=device).unsqueeze(1)  # (B, 1)
    out = model(
        input_ids=suffix["input_ids"],
        attention_mask=torch.cat(
            [prefix["attention_mask"][group_of], suffix["attention_mask"]], dim=1
        ),
        position_ids=suffix["position_ids"] + offsets,
        **{_cache_argument(model): cache},
        use_cache=True,
        logits_to_keep=plan.answer + 1,
    )
    logits = out.logits[:, :-1]  # (B, K, V)
    return logits, batch["labels"][:, -plan.answer :]


def _cache_argument(model: torch.nn.Module) -> str:
    """The forward argument taking a key/value cache: `cache` in recent transformers."""
    forward = getattr(model, "get_base_model", lambda: model)().forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def _padded_cost(tokens: list[list[int]], groups: list[list[int]], lengths: list[int]) -> int:
    """Positions the two passes run: (groups × longest prefix) + (rows × longest suffix)."""
    suffix = max(len(tokens[r]) - n for g, n in zip(groups, lengths, strict=True) for r in g)
    return len(groups) * max(lengths) + len(tokens) * suffix


def _left_padded(rows: list[list[int]], device: torch.device) -> dict[str, torch.Tensor]:
    length = max(len(r) for r in rows)
    input_ids = torch.zeros((len(rows), length), dtype=torch.long)  # (N, L); pad id unused
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, length - len(r) :] = torch.tensor(r)
        attention_mask[i, length - len(r) :] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "position_ids": position_ids.to(device),
    }


def _group_images(batch: dict[str, Any], groups: list[list[int]]) -> dict[str, torch.Tensor]:
    """The image tensors of each group's first row, in group order (groups without an image
    have none: the prefix pass then needs no image inputs for them)."""
    if "image_rows" not in batch:
        return {}
    position = {row: i for i, row in enumerate(batch["image_rows"].tolist())}
    chosen = [position[g[0]] for g in groups if g[0] in position]
    inputs = {}
    for key in image_keys(batch):
        images = image_tensors(batch, key)
        inputs[key] = torch.cat([images[i] for i in chosen])
    return inputs
