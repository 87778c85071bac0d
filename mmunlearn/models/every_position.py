"""The whole-sequence student view of open-unlearning's retain KL and UNDIAL loss.

open-unlearning (locuslab/open-unlearning, `src/trainer/utils.py`) averages its retain KL over
every position of the padded batch — prompt, answer and padding, and the last position too,
whose logits predict no token — and its UNDIAL cross-entropy over every position but the last.
Our student view reads the logits that predict labelled tokens (`models.forward.answer_logits`:
position t predicts token t+1), so this view appends one masked filler token to each row: every
original position then predicts a labelled token (its successor, or the filler), and causal
attention keeps their logits exactly what they were without the filler.
"""

from __future__ import annotations

from typing import Any

import torch

from mmunlearn.models.encoding import IGNORE_INDEX

FILLER_ID = 0  # never attended to (attention mask 0) and never a target of the original tokens
# (B, T) tensors that grow with the filler, and the value each gets there
_GROWS = {"input_ids": FILLER_ID, "attention_mask": 0, "mm_token_type_ids": 0}


def with_every_position(batch: dict[str, Any], last: bool = True) -> dict[str, Any]:
    """The batch relabelled so every position of every row is a target position.

    `last=True` (the retain KL's view): the T original positions, the filler appended after the
    last. `last=False` (UNDIAL's view): the T − 1 positions that predict an original token.
    `answer_labels` keeps the data's labels aligned with the new ones (IGNORE_INDEX outside the
    answer), for targets that treat answer and non-answer positions apart.
    """
    labels = batch["labels"]
    grown = dict(batch)
    if last:
        for key, fill in _GROWS.items():
            if key in batch:
                grown[key] = torch.nn.functional.pad(batch[key], (0, 1), value=fill)
        if "position_ids" in batch:
            ids = batch["position_ids"]
            grown["position_ids"] = torch.cat([ids, ids[..., -1:]], dim=-1)
        labels = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)
    targets = grown["input_ids"].clone()  # (B, T') every next token is a target...
    targets[:, 0] = IGNORE_INDEX  # ...except the first, which no position predicts
    if (targets[:, 1:] == IGNORE_INDEX).any():
        raise ValueError(f"a token id equals the ignore index {IGNORE_INDEX}")
    return {**grown, "labels": targets, "answer_labels": labels}
