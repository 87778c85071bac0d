"""What every teacher builder returns, and the context it runs in."""

from __future__ import annotations

import abc
import contextlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from mmunlearn.models.encoding import PromptEncoder, merge_batches
from mmunlearn.models.forward import answer_logits
from mmunlearn.models.prefix import prefix_answer_logits
from mmunlearn.registry import Registry
from mmunlearn.values import TokenTargets  # below every layer; importable from here too

ModelAccess = Callable[[], contextlib.AbstractContextManager[torch.nn.Module]]


@dataclass
class TeacherContext:
    """Everything a teacher needs besides the batch: the frozen model, the encoder, a name pool.

    `models` holds further frozen models by name (WHP's `reinforced`); `frozen` is `base`.
    `share_prefix`: encode an image's prefix once for the rows of a batch that share it
    (`mmunlearn.models.prefix`; same logits up to rounding). `batch_draws`: a teacher's several
    intervention draws go through the model as one batch (False: one forward per draw; None:
    batched on a GPU only — on a CPU one batch of all draws gained nothing, scripts/bench.py b5).
    """

    frozen: ModelAccess
    encoder: PromptEncoder
    swap_names: tuple[str, ...] = ()
    seed: int = 0
    models: dict[str, ModelAccess] = field(default_factory=dict)
    share_prefix: bool = False
    batch_draws: bool | None = None

    def model(self, name: str) -> ModelAccess:
        if name == "base":
            return self.frozen
        if name not in self.models:
            known = ", ".join(["base", *sorted(self.models)])
            raise KeyError(
                f"no frozen model {name!r} in this run (has: {known}); the whp teacher's "
                "reinforced model comes from the whp method's reinforce phase"
            )
        return self.models[name]

    def answer_logits(
        self, batch: dict[str, Any], model: str = "base"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A frozen model's float32 logits (B, K, V) at the answer positions, and labels (B, K)."""
        with torch.inference_mode(), self.model(model)() as frozen:
            device = next(frozen.parameters()).device
            forward = prefix_answer_logits if self.share_prefix else answer_logits
            logits, labels = forward(frozen, to_device(batch, device))
            return logits.float(), labels

    def logprobs(
        self, batch: dict[str, Any], expected_labels: torch.Tensor, model: str = "base"
    ) -> torch.Tensor:
        """Frozen-model log-probs (B, K, V) at the answer positions of `batch`.

        `batch` may carry a longer prompt than the student saw; because both are left-padded the
        answers end at the last position, and we check the K answer tokens agree exactly.
        """
        logits, labels = self.answer_logits(batch, model)
        k = expected_labels.shape[1]
        logits, labels = logits[:, -k:], labels[:, -k:]
        if not torch.equal(labels, expected_labels.to(labels.device)):
            raise RuntimeError(
                "teacher and student answer tokens differ: the teacher's prompt changed how "
                "the answer tokenises; use a prompt that ends on a token boundary"
            )
        return torch.log_softmax(logits, dim=-1)

    def mean_logprobs(
        self, batches: list[dict[str, Any]], expected_labels: torch.Tensor, model: str = "base"
    ) -> torch.Tensor:
        """log of the mean probability (B, K, V) over `batches`, the draws of an intervention
        on the same rows: with `batch_draws`, one forward over all their rows."""
        batched = torch.cuda.is_available() if self.batch_draws is None else self.batch_draws
        if len(batches) == 1 or not batched:
            return mean_of_draws([self.logprobs(b, expected_labels, model) for b in batches])
        merged = merge_batches(batches, self.encoder.tokenizer.pad_token_id)
        rows = len(expected_labels)
        logprobs = self.logprobs(merged, expected_labels.repeat(len(batches), 1), model)
        return mean_of_draws(list(logprobs.split(rows)))  # D × (B, K, V)


class Teacher(abc.ABC):
    """What every teacher is: `build`, and its capabilities declared here once (the engine,
    the trainer and the recipes read these flags and probe for nothing else). A new teacher
    subclasses this in its own file and registers itself: `@TEACHERS.register("name")`.
    """

    # reads a frozen model; False: the data's own tokens (nothing to cache, no model needed)
    needs_model: ClassVar[bool] = True
    # only has an effect through images: refused on a text-only model, where it equals the base
    needs_images: ClassVar[bool] = False
    # renders other tokens than the student sees (a prompt, renamed entities), so its targets
    # exist at the answer positions only; a subclass may make it a property of its settings
    rewrites_text: ClassVar[bool] = False

    @abc.abstractmethod
    def build(
        self, ctx: TeacherContext, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        """Targets (B, K) at the answer positions `labels` (B, K) of `batch`; no gradients."""


TEACHERS: Registry[type[Teacher]] = Registry("teacher", base=Teacher)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def stable_seed(*parts: object) -> int:
    """A seed that depends only on `parts` (not on Python's per-process hash salt)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode()) & 0x7FFFFFFF


def mean_of_draws(draws: list[torch.Tensor]) -> torch.Tensor:
    """log of the mean probability over draws, computed in log space."""
    if len(draws) == 1:
        return draws[0]  # what the formula gives, without stacking a (1, B, K, V) copy
    stacked = torch.stack(draws)  # (D, B, K, V)
    return torch.logsumexp(stacked, dim=0) - torch.log(torch.tensor(float(len(draws))))
