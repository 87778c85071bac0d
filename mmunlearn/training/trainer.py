"""A thin `transformers.Trainer` whose loss is the objective (terms over roles).

The Trainer gives gradient accumulation, mixed precision, checkpoint/resume, progress bars and
`accelerate launch` (DDP / FSDP / DeepSpeed) for free.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedModel, Trainer

from mmunlearn.data.example import Example
from mmunlearn.errors import UserValueError
from mmunlearn.losses.fused import (
    check_fused_setup,
    fusable,
    fused_term_value,
    resolve_backend,
)
from mmunlearn.losses.objective import Term, answer_hidden_states, term_count, term_value
from mmunlearn.methods.views import VIEWS
from mmunlearn.models.encoding import PromptEncoder, with_all_positions
from mmunlearn.models.every_position import with_every_position
from mmunlearn.models.forward import answer_logits, hidden_states_out, output_head
from mmunlearn.models.prefix import prefix_answer_logits
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.targets import TeacherContext, TokenTargets

Augment = Callable[[torch.Tensor], torch.Tensor]


class NonFiniteLoss(UserValueError, FloatingPointError):
    """A loss term or gradient became NaN or infinite: the run stops at that step (a setting
    such as the learning rate is the usual cause, hence a user error)."""


class ItemDataset(Dataset):
    """Training items (role → Example) produced by a sampler."""

    def __init__(self, items: list[dict[str, Example]]) -> None:
        if not items:
            raise ValueError("the sampler produced no training items (is a split empty?)")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Example]:
        return self.items[index]


class RoleCollator:
    """Items → {batch role: left-padded batch}; `role:view` batches are views of a role's rows
    (e.g. `forget:idk`); optional image augmentation (base training)."""

    def __init__(
        self,
        encoder: PromptEncoder,
        augment: Augment | None = None,
        batch_roles: tuple[str, ...] | None = None,
    ) -> None:
        self.encoder = encoder
        self.augment = augment
        self.batch_roles = batch_roles

    def __call__(self, items: list[dict[str, Example]]) -> dict[str, dict[str, Any]]:
        batches = {}
        for role in self.batch_roles or tuple(items[0]):
            source, _, view = role.partition(":")
            examples = [item[source] for item in items]
            if view:
                examples = [VIEWS.get(view)(ex) for ex in examples]
            batch = self.encoder.collate(examples, [self.encoder.encode(ex) for ex in examples])
            if self.augment is not None and "pixel_values" in batch:
                batch["pixel_values"] = self.augment(batch["pixel_values"])
            batches[role] = batch
        return batches


def frozen_model(model: torch.nn.Module, device: torch.device | None = None) -> Callable[[], Any]:
    """Access to `model`, frozen in place and placed on `device`, as a context manager."""
    model = model.eval().requires_grad_(False).to(device or "cpu")

    @contextlib.contextmanager
    def access() -> Iterator[torch.nn.Module]:
        yield model

    return access


def frozen_teacher(
    model: torch.nn.Module, use_adapter_off: bool, device: torch.device | None = None
) -> Callable[[], Any]:
    """How the teacher is obtained: the student with adapters off (LoRA), or a frozen copy
    placed on `device` (where the Trainer will put the student)."""
    if use_adapter_off:

        @contextlib.contextmanager
        def adapters_off() -> Iterator[torch.nn.Module]:
            with model.disable_adapter():
                yield model

        return adapters_off
    return frozen_model(copy.deepcopy(model), device)


def nonfinite_gradient(model: torch.nn.Module) -> str | None:
    """`name holds NaN` (or inf) for the first parameter whose gradient is not finite, else
    None: checked before the optimizer applies the gradient, with one sync in the usual case."""
    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    if not named:
        return None
    norms = torch.stack(torch._foreach_norm([grad for _, grad in named]))
    if torch.isfinite(norms).all():
        return None
    for (name, grad), norm in zip(named, norms, strict=True):
        # a huge but finite gradient can overflow its norm: look at the entries
        if not torch.isfinite(norm) and not torch.isfinite(grad).all():
            return f"{name} holds {'NaN' if grad.isnan().any() else 'inf'}"
    return None


class UnlearnTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        terms: tuple[Term, ...],
        teacher_context: TeacherContext | None,
        alternate: bool = False,
        teacher_cache: TeacherCache | None = None,
        share_prefix: bool = False,
        fused_head: str = "off",
        **kwargs: Any,
    ):
        """`teacher_cache`: reuse each example's teacher targets across epochs (see
        `mmunlearn.teachers.cache`); None computes them at every step. `share_prefix`: the
        student encodes an image's prefix once for the rows of a batch that share it
        (`mmunlearn.models.prefix`). `fused_head`: token-level terms are computed from hidden
        states, one chunk of logits at a time (`mmunlearn.losses.fused`)."""
        super().__init__(*args, **kwargs)
        self.terms = terms
        self.forward = prefix_answer_logits if share_prefix else answer_logits
        self.fused_head = resolve_backend(fused_head)
        self.head = output_head(self.model) if self.fused_head != "off" else None
        if self.head is not None:
            check_fused_setup(
                fused_head,
                shards_parameters=self._shards_parameters(),
                processes=self.accelerator.num_processes,
                head_trainable=any(p.requires_grad for p in self.head.projection.parameters()),
            )
        self.teacher_context = teacher_context
        self.alternate = alternate
        self.teacher_cache = teacher_cache
        self._term_logs: dict[str, list[float]] = {}

    def _shards_parameters(self) -> bool:
        """FSDP, or DeepSpeed ZeRO-3: parameters exist whole only inside the model's forward."""
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        return self.is_fsdp_enabled or (plugin is not None and plugin.zero_stage == 3)

    def active_terms(self) -> tuple[Term, ...]:
        """All terms; with `alternate`, the forget terms on even optimizer steps and the others
        on odd ones (every micro-batch of one accumulated step sees the same half)."""
        if not self.alternate:
            return self.terms
        forget_step = self.state.global_step % 2 == 0
        return tuple(t for t in self.terms if (t.source == "forget") == forget_step)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        # (role, positions, layer) → the student's answer logits (or, with the fused head, its
        # final hidden states; with a layer, that layer's hidden states), labels and batch: one
        # student forward per batch and view, shared by its terms
        View = tuple[str, str, int | None]
        student: dict[View, tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = {}
        fused, head = self.head is not None, self.head
        logits_of: dict[View, torch.Tensor] = {}

        def side(
            role: str, term: Term, hidden: bool = False
        ) -> tuple[torch.Tensor, TokenTargets, torch.Tensor]:
            # the term's student view: its positions, and logits or a layer's hidden states
            key = (role, term.positions, term.layer)
            if key not in student:
                batch = inputs[role]
                if term.positions == "all":
                    batch = with_all_positions(batch)
                elif term.positions in ("sequence", "sequence_but_last"):
                    batch = with_every_position(batch, last=term.positions == "sequence")
                if term.layer is not None:
                    student[key] = (*answer_hidden_states(model, batch, term.layer), batch)
                else:
                    with hidden_states_out(model) if fused else contextlib.nullcontext():
                        student[key] = (*self.forward(model, batch), batch)
            output, labels, batch = student[key]
            if fused and not hidden and term.layer is None:
                if key not in logits_of:
                    logits_of[key] = head(output)  # a sequence or pair loss: whole logits
                output = logits_of[key]
            targets = self._targets(term, role, batch, labels.detach())
            return output, targets, labels

        total = torch.zeros((), device=self.args.device)
        for term in self.active_terms():
            if fused and fusable(term):
                hidden, targets, _ = side(term.role, term, hidden=True)
                value = fused_term_value(term, hidden, head, targets, self.fused_head)
            else:
                logits, targets, labels = side(term.role, term)
                pair = side(term.pair_role, term) if term.pair_role else None
                value = term_value(term, logits, targets, labels, pair)
            scalar = value.item()
            if not math.isfinite(scalar * term.weight):
                raise NonFiniteLoss(
                    f"training diverged at step {self.state.global_step + 1}: loss term "
                    f"{term.name!r} = {scalar} (weight {term.weight}); " + self._what_to_change()
                )
            self._term_logs.setdefault(f"loss/{term.name}", []).append(scalar)
            value = self._global_mean(value, term_count(term, targets))
            total = total + term.sign * term.weight * value
        return (total, None) if return_outputs else total

    def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: ANN001
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._check_gradients(model)
        return loss

    def _check_gradients(self, model: torch.nn.Module) -> None:
        found = nonfinite_gradient(model)
        if found is not None:
            raise NonFiniteLoss(
                f"training diverged at step {self.state.global_step + 1}: the gradient of "
                f"{found}; " + self._what_to_change()
            )

    def _what_to_change(self) -> str:
        return (
            f"stopped, no model written. Lower train.lr (now {self.args.learning_rate:g}) or the "
            "term weights, or check the data"
        )

    def _targets(
        self, term: Term, role: str, batch: dict[str, Any], labels: torch.Tensor
    ) -> TokenTargets:
        # whole-sequence views target padding, which depends on the batch: never cached
        padded = term.positions in ("sequence", "sequence_but_last")
        if self.teacher_cache is None or not term.teacher.needs_model or padded:
            return term.teacher.build(self.teacher_context, batch, labels)
        scope = f"{role}@{term.positions}"
        return self.teacher_cache.build(term.teacher, self.teacher_context, batch, labels, scope)

    def _global_mean(self, value: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Rescale this process's mean so that DDP's gradient average equals the mean over the
        whole global batch (processes hold different numbers of answer tokens): the result is the
        same as one process with the same global batch."""
        processes = self.accelerator.num_processes
        if processes == 1:
            return value
        count = count.detach().to(value.device, torch.float32)
        total = self.accelerator.reduce(count.clone(), reduction="sum")
        return value * count * processes / total.clamp(min=1.0)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        # transformers writes checkpoints in the checkpoint-original key layout (e.g. LLaVA's
        # `language_model.model.*`) but reads them back with a non-strict `load_state_dict`, which
        # silently skips every renamed key: a resumed run would restart from the base weights.
        # `from_pretrained` applies the renaming; we copy its weights over, strictly.
        model = self.model if model is None else model
        weights = Path(resume_from_checkpoint) / "model.safetensors"
        if not isinstance(model, PreTrainedModel) or not weights.is_file() or self.is_fsdp_enabled:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        restored = type(model).from_pretrained(
            resume_from_checkpoint, dtype=model.dtype, local_files_only=True
        )
        model.load_state_dict(restored.state_dict(), strict=True)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        for key, values in self._term_logs.items():
            logs[key] = round(sum(values) / len(values), 5)
        self._term_logs = {}
        super().log(logs, *args, **kwargs)
