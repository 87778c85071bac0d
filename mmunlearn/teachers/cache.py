"""Teacher targets computed once per example and reused across epochs.

A teacher of this toolkit is deterministic: its model is frozen (the base, or the student with
adapters off) and its interventions are seeded by the example id and draw (`stable_seed`), so
the targets of one example are the same every time it comes back. `TeacherCache` keeps each
example's targets at its answer positions on the CPU, keyed by (scope, teacher settings, example
id), and assembles later batches from them instead of running the teacher again.

Exactness: a cached row equals a recomputed one up to floating-point rounding of the batch it was
first computed in (left padding to another batch's length changes the matmul shapes, which can
move the last bits); on the same batch it is bit-identical. Masked positions (padding of a
shorter answer) get a uniform target, which the masked reductions multiply by zero. It is wrong
for inputs that change from step to step (random image augmentation): the trainer refuses that
combination.

Memory: each example costs (answer tokens × vocabulary) float32 on the CPU, e.g. 10 × 32000 × 4
bytes = 1.3 MB for a LLaVA-sized vocabulary. `top_k=k` keeps only each position's k most likely
tokens (k × 8 bytes: 2.6 kB at k = 32), an approximation: those tokens keep their exact
log-probabilities and the remaining mass is spread evenly over the rest of the vocabulary, so the
target stays a distribution; `approximation_error` measures what that costs in KL.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mmunlearn.models.encoding import IGNORE_INDEX
from mmunlearn.teachers.targets import Teacher, TeacherContext, TokenTargets


class TeacherCache:
    """Per-example teacher targets, reused; `hits`/`misses` count batches served / computed."""

    def __init__(self, top_k: int = 0) -> None:
        """`top_k`: 0 keeps whole distributions (exact); k > 0 the k most likely tokens."""
        if top_k < 0:
            raise ValueError(f"top_k={top_k} must be >= 0 (0 keeps the whole distribution)")
        self.top_k = top_k
        self._rows: dict[tuple[str, str], Any] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def nbytes(self) -> int:
        """Bytes of the cached targets."""
        parts = [row[:2] if isinstance(row, tuple) else (row,) for row in self._rows.values()]
        return sum(t.numel() * t.element_size() for part in parts for t in part)

    def build(
        self,
        teacher: Teacher,
        ctx: TeacherContext,
        batch: dict[str, Any],
        labels: torch.Tensor,
        scope: str = "",
    ) -> TokenTargets:
        """`teacher.build(ctx, batch, labels)`, from the cache when every row of `batch` is in it.

        `scope` separates batches of the same examples that the teacher sees differently (the
        term's role and positions: `forget:idk` has other answers than `forget`).
        """
        settings = f"{scope}|{teacher!r}"
        keys = [(settings, example.id) for example in batch["examples"]]
        mask = labels != IGNORE_INDEX  # (B, K)
        if all(key in self._rows for key in keys):
            cached = [self._expand(self._rows[key]) for key in keys]
            if all(len(row) == int(m.sum()) for row, m in zip(cached, mask, strict=True)):
                self.hits += 1
                return self._assemble(cached, mask)
        self.misses += 1
        targets = teacher.build(ctx, batch, labels)
        values = targets.logprobs if targets.logprobs is not None else targets.token_ids
        if values is None:  # hidden states (teachers/hidden.py): recomputed at every step
            return targets
        for key, row, row_mask in zip(keys, values, mask, strict=True):
            self._rows[key] = self._compress(row[row_mask].detach().to("cpu", copy=True))
        return targets

    def _compress(self, row: torch.Tensor) -> Any:
        """(n, V) log-probs → (top log-probs (n, k), their ids (n, k) int32, V) with `top_k`."""
        if not self.top_k or not row.is_floating_point() or self.top_k >= row.shape[-1]:
            return row
        values, ids = row.topk(self.top_k, dim=-1)
        return values, ids.to(torch.int32), row.shape[-1]

    @staticmethod
    def _expand(row: Any) -> torch.Tensor:
        if not isinstance(row, tuple):
            return row
        values, ids, vocab = row
        # (n, 1); below 1 so that the other tokens keep a (tiny) finite log-probability
        kept = values.exp().sum(-1, keepdim=True).clamp(max=1.0 - 1e-6)
        rest = torch.log1p(-kept).sub(math.log(vocab - values.shape[-1]))  # per other token
        full = rest.expand(len(values), vocab).clone()  # (n, V)
        return full.scatter_(-1, ids.long(), values)

    @staticmethod
    def approximation_error(logprobs: torch.Tensor, top_k: int) -> torch.Tensor:
        """KL(full ‖ top-k target) per position, for `logprobs` (..., V)."""
        cache = TeacherCache(top_k)
        flat = logprobs.reshape(-1, logprobs.shape[-1])
        approx = cache._expand(cache._compress(flat)).view_as(logprobs)
        return (logprobs.exp() * (logprobs - approx)).sum(-1)

    @staticmethod
    def _assemble(rows: list[torch.Tensor], mask: torch.Tensor) -> TokenTargets:
        """Rows (n_i, V) or (n_i,) → targets (B, K, V) or (B, K), each row at its answer
        positions (a suffix of the row: batches are left-padded)."""
        device = mask.device
        if rows[0].is_floating_point():
            vocab = rows[0].shape[-1]
            logprobs = torch.full(
                (*mask.shape, vocab), -math.log(vocab), dtype=rows[0].dtype, device=device
            )  # (B, K, V): uniform where masked
            for i, row in enumerate(rows):
                logprobs[i][mask[i]] = row.to(device)
            return TokenTargets(mask=mask, logprobs=logprobs)
        token_ids = torch.full(mask.shape, IGNORE_INDEX, dtype=rows[0].dtype, device=device)
        for i, row in enumerate(rows):
            token_ids[i][mask[i]] = row.to(device)
        return TokenTargets(mask=mask, token_ids=token_ids)
