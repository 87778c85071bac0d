"""Who's Harry Potter (Eldan & Russinovich, arXiv 2310.02238): generic predictions.

v_generic = v_base(anchor-translated text) − α·ReLU(v_reinforced(text) − v_base(text)), on logits,
where the reinforced model is the base fine-tuned further on the forget text (the whp method's
first phase) and the anchored terms map idiosyncratic names to generic ones. The translated
text's predictions are aligned back to the original answer tokens (`align_tokens`), so anchors
may change token counts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import yaml

from mmunlearn.data.example import Example
from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets, stable_seed


@functools.lru_cache(maxsize=8)
def load_anchors(path: str) -> dict[str, str]:
    """An anchored-terms dictionary from a JSON or YAML file: {"Talen Vosk": "Mika Tess", ...}."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"whp anchors={path!r}: file not found (a JSON/YAML mapping of terms)")
    values = yaml.safe_load(file.read_text(encoding="utf-8"))
    if not isinstance(values, dict) or not values:
        raise ValueError(f"{path}: expected a non-empty mapping of anchored term → generic term")
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise ValueError(f"{path}: entry {key!r}: {value!r}; expected text → text")
    return dict(values)


def generated_anchors(entity: str, pool: Sequence[str], seed: int) -> dict[str, str]:
    """The entity's name → a seeded name from `pool`, and part → part when both names have the
    same number of parts (WHP's dictionary also maps partial names)."""
    if not pool:
        raise ValueError(
            "whp needs anchored terms: a name pool (the world's `unused_names` or holdout "
            "entities) or teacher.anchors=<JSON/YAML file>"
        )
    generic = random.Random(stable_seed(seed, "whp", entity)).choice(list(pool))
    anchors = {entity: generic}
    parts, generic_parts = entity.split(), generic.split()
    if len(parts) == len(generic_parts) > 1:
        anchors.update(zip(parts, generic_parts, strict=True))
    return anchors


def translate(text: str, anchors: dict[str, str]) -> str:
    """Replace every anchored term (whole words, longest first, in one pass) by its generic term."""
    if not anchors:
        return text
    keys = sorted(anchors, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, keys)) + r")(?!\w)")
    return pattern.sub(lambda match: anchors[match.group(0)], text)


def align_tokens(original: Sequence[int], translated: Sequence[int]) -> list[int]:
    """For each original token, the index of its counterpart in `translated`, or −1.

    Unchanged stretches map one to one, and so do replaced stretches of equal length. A replaced
    stretch of another length (an anchor whose translation tokenises differently) maps its first
    token to the replacement's first token; its other tokens have no counterpart (the prefix
    they continue does not exist in the translated text).
    """
    out = [-1] * len(original)
    matcher = difflib.SequenceMatcher(a=list(original), b=list(translated), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            out[i1:i2] = range(j1, j2)
        elif tag == "replace":
            out[i1] = j1
    return out


def align_answers(
    logits: torch.Tensor, labels: torch.Tensor, original_labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translated-answer logits (B, K', V) with their labels (B, K') → logits at the original
    answer positions (B, K, V) and a mask (B, K) of positions that have a counterpart."""
    rows, k = original_labels.shape
    out = logits.new_zeros(rows, k, logits.shape[-1])  # (B, K, V)
    found = torch.zeros(rows, k, dtype=torch.bool, device=logits.device)
    for row in range(rows):
        src = (original_labels[row] != -100).nonzero().flatten()
        dst = (labels[row] != -100).nonzero().flatten()
        mapping = align_tokens(original_labels[row, src].tolist(), labels[row, dst].tolist())
        pairs = [(i, j) for i, j in enumerate(mapping) if j >= 0]
        if not pairs:
            continue
        i, j = (torch.tensor(x, device=logits.device) for x in zip(*pairs, strict=True))
        out[row, src[i]] = logits[row, dst[j]]
        found[row, src[i]] = True
    return out, found


def generic_logits(
    anchored: torch.Tensor, base: torch.Tensor, reinforced: torch.Tensor, alpha: float
) -> torch.Tensor:
    """v_generic = v_base(anchored) − α·ReLU(v_reinforced − v_base), all (B, K, V) logits."""
    return anchored - alpha * torch.relu(reinforced - base)


@TEACHERS.register("whp")
@dataclass(frozen=True)
class WhpTeacher(Teacher):
    """WHP's generic predictions: base on anchor-translated text − α·ReLU(reinforced − base).

    alpha: α of the paper's formula. hard: targets are the argmax tokens (cross-entropy), else
    the softmax of v_generic (KL). anchors: a JSON/YAML file of anchored terms; empty: each
    entity's name → a seeded unseen name (the run's name pool). reinforce_steps: steps of the
    reinforce phase (0: an even share of the budget). reinforced: the frozen model's name.
    corpus: a plain-text file of the forget documents (the paper's setting: the books); the
    reinforce phase then trains on its passages of about `passage_words` words
    (`mmunlearn.data.corpus`) instead of the forget QA rows; empty: on the forget QA rows.
    """

    alpha: float = 5.0
    hard: bool = True
    anchors: str = ""
    reinforce_steps: int = 0
    reinforced: str = "reinforced"
    corpus: str = ""
    passage_words: int = 64
    rewrites_text: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ValueError(f"whp alpha={self.alpha} must be >= 0")
        if self.reinforce_steps < 0:
            raise ValueError(f"whp reinforce_steps={self.reinforce_steps} must be >= 0")
        if not self.reinforced:
            raise ValueError("whp reinforced='' must name the reinforced model")
        if self.passage_words < 2:
            raise ValueError(f"whp passage_words={self.passage_words} must be >= 2")
        if self.corpus:
            file = Path(self.corpus)
            if not file.is_file():
                raise ValueError(
                    f"whp teacher.corpus={self.corpus!r}: file not found (a plain-text file of "
                    "the documents to forget)"
                )
            if not file.read_text(encoding="utf-8").strip():
                raise ValueError(f"whp teacher.corpus={self.corpus!r}: the file is empty")

    def translated(self, ctx: TeacherContext, example: Example) -> Example:
        anchors = (
            load_anchors(self.anchors)
            if self.anchors
            else generated_anchors(example.entity, ctx.swap_names, ctx.seed)
        )
        return dataclasses.replace(
            example,
            question=translate(example.question, anchors),
            answer=translate(example.answer, anchors),
        )

    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        examples = [self.translated(ctx, ex) for ex in batch["examples"]]
        anchored_batch = ctx.encoder.collate(examples, [ctx.encoder.encode(ex) for ex in examples])
        base, base_labels = ctx.answer_logits(batch)  # (B, K, V)
        assert torch.equal(base_labels, labels.to(base_labels.device)), "same batch, same labels"
        reinforced, _ = ctx.answer_logits(batch, self.reinforced)
        anchored, anchored_labels = ctx.answer_logits(anchored_batch)  # (B, K', V)
        anchored, found = align_answers(anchored, anchored_labels, base_labels)
        generic = generic_logits(anchored, base, reinforced, self.alpha)  # (B, K, V)
        mask = (base_labels != -100) & found
        if self.hard:
            return TokenTargets(mask=mask, token_ids=generic.argmax(-1).masked_fill(~mask, -100))
        return TokenTargets(mask=mask, logprobs=torch.log_softmax(generic, dim=-1))
