"""A LLaVA-style student on the tiny world, and one VGID step (forget + retain, LoRA) of the
engine and of the naive loop on copies of it: shared by b2, b3, b4, b5 and b6."""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import naive_reference as naive
import torch

from benchmarks.common import DEVICE, LR, Memory, Shape, Sizes
from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel
from mmunlearn.models.tiny import TinyLlavaConfig
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.icu import reencoded
from mmunlearn.teachers.targets import TeacherContext, to_device
from mmunlearn.teachers.visual_noise import noised_batch
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora
from mmunlearn.training.trainer import RoleCollator, UnlearnTrainer, frozen_teacher


@functools.cache
def world_examples(kind: str) -> list:
    """The tests' tiny world or the demo's default one, written once per process."""
    from mmunlearn.data.jsonl import load_examples
    from mmunlearn.data.world import WorldConfig, build_world, save_world
    from mmunlearn.testing import TINY_WORLD

    directory = Path(tempfile.mkdtemp(prefix=f"bench-world-{kind}-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    save_world(build_world(TINY_WORLD if kind == "tiny" else WorldConfig()), directory)
    return load_examples(directory)


def llava(examples: list, s: Sizes, shape: Shape) -> LoadedModel:
    from mmunlearn.testing import tiny_llava

    config = TinyLlavaConfig(
        image_size=s.image_size,
        patch_size=s.patch,
        vision_width=32,
        vision_layers=1,
        text_width=shape.width,
        text_layers=shape.layers,
        heads=4,
    )
    loaded = tiny_llava(examples, seed=0, config=config)
    # the words of the world use the first few hundred ids; the output head has `vocab` rows
    vocab = max(shape.vocab, len(loaded.tokenizer))
    loaded.model.resize_token_embeddings(vocab, mean_resizing=False)
    return loaded


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)  # the same adapter initialisation on both sides
    return add_lora(model, TrainConfig(lora=True)).to(DEVICE)


def vgid_inputs(examples: list, encoder: PromptEncoder, rows: int) -> dict[str, Any]:
    by_role = group_by_role(examples)
    forget = [ex for ex in by_role["forget"] if ex.image is not None][:rows]
    retain = [ex for ex in by_role["retain"] if ex.image is not None][:rows]
    items = [{"forget": f, "retain": r} for f, r in zip(forget, retain, strict=True)]
    batches = RoleCollator(encoder, batch_roles=("forget", "retain"))(items)
    return {role: to_device(batch, DEVICE) for role, batch in batches.items()}


def engine_trainer(
    model: torch.nn.Module,
    encoder: PromptEncoder,
    terms: tuple,
    adapters_off: bool,
    directory: str,
    cache: TeacherCache | None = None,
    share_prefix: bool = False,
) -> UnlearnTrainer:
    from transformers import TrainingArguments

    ctx = TeacherContext(
        frozen=frozen_teacher(model, use_adapter_off=adapters_off, device=DEVICE),
        encoder=encoder,
        share_prefix=share_prefix,
    )
    args = TrainingArguments(directory, report_to="none", use_cpu=DEVICE.type == "cpu")
    return UnlearnTrainer(
        model=model,
        args=args,
        terms=terms,
        teacher_context=ctx,
        teacher_cache=cache,
        share_prefix=share_prefix,
    )


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def optimizer_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor
) -> None:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class VgidSides:
    """The engine's and the naive loop's VGID step on copies of one base model."""

    def __init__(
        self,
        s: Sizes,
        shape: Shape | None,
        directory: Path,
        variants: tuple[str, ...],
        base: LoadedModel | None = None,
        rows: int | None = None,
    ) -> None:
        self.examples = world_examples("tiny")
        base = base or llava(self.examples, s, shape)
        self.encoder = PromptEncoder(base, max_length=2048)
        self.inputs = vgid_inputs(self.examples, self.encoder, rows or s.batch)
        self.terms = build_method("vgid").terms
        self.models, self.steps, self.trainers = {}, {}, {}
        for variant in variants:
            model = base.model if variant == variants[-1] else copy.deepcopy(base.model)
            if variant == "naive":
                teacher = naive.deep_copied_teacher(model).to(DEVICE)
                student = with_lora(model).train()
                self.steps[variant] = self._naive_step(student, teacher)
            else:
                student = with_lora(model).train()
                trainer = engine_trainer(
                    student,
                    self.encoder,
                    self.terms,
                    variant != "deep_copy",
                    str(directory / variant),
                )
                self.steps[variant] = self._engine_step(trainer, student)
                self.trainers[variant] = trainer
            self.models[variant] = student

    def _engine_step(self, trainer: UnlearnTrainer, student: torch.nn.Module) -> Callable:
        optimizer = torch.optim.AdamW(trainable(student).values(), lr=LR)

        def step() -> float:
            loss = trainer.compute_loss(student, self.inputs)
            optimizer_step(student, optimizer, loss)
            return loss.item()

        return step

    def _naive_step(self, student: torch.nn.Module, teacher: torch.nn.Module) -> Callable:
        optimizer = torch.optim.AdamW(trainable(student).values(), lr=LR)
        vgid = self.terms[0].teacher
        ctx = TeacherContext(frozen=None, encoder=self.encoder)

        def step() -> float:
            forget, retain = self.inputs["forget"], self.inputs["retain"]
            # the teacher's inputs: the engine's own helpers, so both sides see the same pixels
            noised = noised_batch(ctx, reencoded(ctx, forget, vgid.prompt), vgid.noise, 0)
            loss = naive.distillation_loss(student, teacher, forget, to_device(noised, DEVICE))
            loss = loss + naive.distillation_loss(student, teacher, retain, retain)
            optimizer_step(student, optimizer, loss)
            return loss.item()

        return step


def parameter_bytes(*models: torch.nn.Module) -> int:
    """Bytes of the distinct parameter storages of `models` (shared weights counted once)."""
    seen = {}
    for model in models:
        for p in model.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
    return sum(seen.values())


def step_memory(s: Sizes, shape: Shape, variant: str) -> dict[str, float]:
    """Memory of building `variant`'s side (and its copies) and of one step (b2, b3 workers)."""
    memory = Memory()
    with tempfile.TemporaryDirectory() as tmp:
        sides = VgidSides(s, shape, Path(tmp), (variant,))
        memory.mark()
        sides.steps[variant]()
        return memory.result()
