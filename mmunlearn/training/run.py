"""Run one training job (fine-tuning or unlearning) through the Trainer and save the result."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import TrainingArguments

from mmunlearn.data.example import Example
from mmunlearn.io import atomic_write_json
from mmunlearn.losses.objective import Method
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel
from mmunlearn.models.lora import LORA_TARGETS
from mmunlearn.teachers.simple import LabelsTeacher
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.samplers import SAMPLERS
from mmunlearn.training.trainer import (
    ItemDataset,
    RoleCollator,
    UnlearnTrainer,
    frozen_model,
    frozen_teacher,
)
from mmunlearn.training.trajectory import TrajectoryCallback

log = logging.getLogger(__name__)


def add_lora(model: torch.nn.Module, config: TrainConfig) -> PeftModel:
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS[config.lora_scope],
    )
    return get_peft_model(model, lora)


def environment() -> dict[str, Any]:
    packages = ("torch", "transformers", "peft", "accelerate", "mmunlearn")
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions}


def train(
    loaded: LoadedModel,
    method: Method,
    by_role: dict[str, list[Example]],
    config: TrainConfig,
    output_dir: str | Path,
    swap_names: tuple[str, ...] = (),
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    resume: bool = False,
    progress: bool = True,
    eval_examples: list[Example] | None = None,
    teacher_models: dict[str, torch.nn.Module] | None = None,
) -> LoadedModel:
    """Train `loaded.model` with `method` and write the merged model + processor to `output_dir`.

    `teacher_models`: further frozen models teachers may ask for by name (WHP's `reinforced`).
    """
    output_dir = Path(output_dir)
    if method.phases:
        return train_phases(
            loaded, method, by_role, config, output_dir, swap_names, progress, eval_examples
        )
    torch.manual_seed(config.seed)
    encoder = PromptEncoder(loaded)
    items = SAMPLERS.get(method.sampler)(by_role, config.seed, config.steps * config.batch_size)
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=2,
        report_to="none",
        remove_unused_columns=False,
        seed=config.seed,
        data_seed=config.seed,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    model = add_lora(loaded.model, config) if config.lora else loaded.model
    context = None
    if not all(isinstance(term.teacher, LabelsTeacher) for term in method.terms):
        frozen = frozen_teacher(model, use_adapter_off=config.lora, device=args.device)
        models = {k: frozen_model(m, args.device) for k, m in (teacher_models or {}).items()}
        context = TeacherContext(
            frozen=frozen, encoder=encoder, swap_names=swap_names, seed=config.seed, models=models
        )
    trainer = UnlearnTrainer(
        model=model,
        args=args,
        train_dataset=ItemDataset(items),
        data_collator=RoleCollator(encoder, augment, method.batch_roles),
        terms=method.terms,
        teacher_context=context,
        alternate=method.alternate,
    )
    trajectory = None
    if config.eval_every and eval_examples:
        trajectory = TrajectoryCallback(
            loaded.processor, loaded.kind, eval_examples, config.eval_every
        )
        trainer.add_callback(trajectory)
    checkpoint = resume and any((output_dir / "checkpoints").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if checkpoint else None)
    if config.lora:
        model = model.merge_and_unload()
    result = LoadedModel(model, loaded.processor, loaded.kind)
    if trainer.is_world_process_zero():
        save_atomically(result, output_dir / "model")
        atomic_write_json(output_dir / "train_log.json", trainer.state.log_history)
        if trajectory is not None:
            atomic_write_json(output_dir / "trajectory.json", trajectory.points)
    return result


def train_phases(
    loaded: LoadedModel,
    method: Method,
    by_role: dict[str, list[Example]],
    config: TrainConfig,
    output_dir: Path,
    swap_names: tuple[str, ...],
    progress: bool,
    eval_examples: list[Example] | None,
) -> LoadedModel:
    """Each phase continues from the previous one's model (whose frozen copy is its teacher).

    A phase with `steps` runs that many; the others split the rest of the budget evenly. A phase
    with `keep_as` trains a copy instead and hands it, frozen, to later phases' teachers.
    """
    fixed = sum(phase.steps for phase in method.phases)
    shared = sum(1 for phase in method.phases if not phase.steps)
    per_phase = max(1, (config.steps - fixed) // shared) if shared else 0
    kept: dict[str, torch.nn.Module] = {}
    for i, phase in enumerate(method.phases):
        steps = phase.steps or per_phase
        log.info("phase %d/%d: %s (%d steps)", i + 1, len(method.phases), phase.name, steps)
        start = loaded
        if phase.keep_as:
            start = LoadedModel(copy.deepcopy(loaded.model), loaded.processor, loaded.kind)
        result = train(
            start,
            phase,
            by_role,
            dataclasses.replace(config, steps=steps),
            output_dir / f"phase{i + 1}",
            swap_names,
            progress=progress,
            eval_examples=None if phase.keep_as else eval_examples,
            teacher_models=kept,
        )
        if phase.keep_as:
            kept[phase.keep_as] = result.model
        else:
            loaded = result
    save_atomically(loaded, output_dir / "model")
    return loaded


def save_atomically(loaded: LoadedModel, directory: Path) -> None:
    """Write to a sibling temp dir, then rename: a crash never leaves a half-written model."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    loaded.save(tmp)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)


def write_run_info(
    output_dir: Path, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    info = {"config": config, "environment": environment(), **(extra or {})}
    atomic_write_json(output_dir / "run.json", json.loads(json.dumps(info, default=str)))
