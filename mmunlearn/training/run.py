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
from transformers import TrainerState, TrainingArguments

from mmunlearn.data.example import Example
from mmunlearn.data.splits import trainable
from mmunlearn.errors import UserValueError
from mmunlearn.io import atomic_write_json
from mmunlearn.losses.objective import Method
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.families import family_of
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.lora import lora_target, train_in_full
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.training.config import TrainConfig, reporters
from mmunlearn.training.samplers import SAMPLERS, Item, group_by_image
from mmunlearn.training.selection import BestKeeper
from mmunlearn.training.trainer import (
    ItemDataset,
    RoleCollator,
    UnlearnTrainer,
    frozen_model,
    frozen_teacher,
)
from mmunlearn.training.trajectory import Measure, TrajectoryCallback

log = logging.getLogger(__name__)


def add_lora(model: torch.nn.Module, config: TrainConfig) -> PeftModel:
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=lora_target(config.lora_scope),
        fan_in_fan_out=family_of(model.config).fan_in_fan_out,
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as error:  # peft: the pattern matched no module of this model
        raise ValueError(f"train.lora_scope={config.lora_scope!r}: {error}") from None


def checkpointing_arguments(enabled: bool) -> dict[str, Any]:
    """TrainingArguments for activation (gradient) checkpointing; non-reentrant, so it works with
    frozen inputs (LoRA) without forcing input gradients. Newer transformers renamed the option."""
    if not enabled:
        return {}
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def world_size() -> int:
    """Processes in this run (`accelerate launch` / `torchrun` set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


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
    measure: Measure | None = None,
    teacher_models: dict[str, torch.nn.Module] | None = None,
) -> LoadedModel:
    """Train `loaded.model` with `method` and write the merged model + processor to `output_dir`.

    `measure`: what `config.eval_every` records into `trajectory.json` (the recipes pass
    forget/retain ROUGE-L, `mmunlearn.evaluation.trajectory`); None records nothing.
    `teacher_models`: further frozen models teachers may ask for by name (WHP's `reinforced`).
    """
    output_dir = Path(output_dir)
    if method.phases and config.keep_best:
        raise ValueError(
            f"train.keep_best={config.keep_best!r}: method {method.name!r} trains in phases, "
            "whose steps are not one run's checkpoints; set train.keep_best= (empty)"
        )
    if method.phases:
        return train_phases(
            loaded, method, by_role, config, output_dir, swap_names, progress, measure, resume
        )
    if config.bf16 and not torch.cuda.is_available():
        raise ValueError(
            "train.bf16=true needs a CUDA GPU and none is available; set train.bf16=false"
        )
    if config.cache_teacher and augment is not None:
        raise ValueError(
            "train.cache_teacher=true reuses each example's teacher targets, but image "
            "augmentation changes the inputs at every step; set train.cache_teacher=false"
        )
    if config.share_image_prefix and config.gradient_checkpointing:
        raise ValueError(
            "train.share_image_prefix=true keeps each image prefix's key/value cache for the "
            "rows that share it, which gradient checkpointing turns off; set one of them false"
        )
    if config.full_scope and config.lora and any(t.teacher.needs_model for t in method.terms):
        raise ValueError(
            f"train.full_scope={config.full_scope!r} with train.lora=true: the teacher is the "
            "student with its adapters off, so weights trained in full would move the teacher "
            "too; set train.lora=false or train.full_scope=''"
        )
    torch.manual_seed(config.seed)
    encoder = PromptEncoder(loaded)
    items = draw_items(method, by_role, config)
    processes = world_size()
    if config.batch_size % processes:
        raise ValueError(
            f"train.batch_size={config.batch_size} (the global batch) must be divisible by the "
            f"{processes} processes of this run"
        )
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size // processes,
        learning_rate=config.lr,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=2,
        report_to=reporters(config.report_to),
        remove_unused_columns=False,
        seed=config.seed,
        data_seed=config.seed,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        bf16=config.bf16,
        # grouped batches keep their order; the sampler has already shuffled
        train_sampling_strategy="sequential" if config.share_image_prefix else "random",
        **checkpointing_arguments(config.gradient_checkpointing),
    )
    model = add_lora(loaded.model, config) if config.lora else loaded.model
    if config.full_scope:
        trained = train_in_full(model, config.full_scope, config.lora)
        log.info("%d parameter tensors train in full (%s)", len(trained), config.full_scope)
    context = None
    if any(term.teacher.needs_model for term in method.terms):
        frozen = frozen_teacher(model, use_adapter_off=config.lora, device=args.device)
        models = {k: frozen_model(m, args.device) for k, m in (teacher_models or {}).items()}
        context = TeacherContext(
            frozen=frozen,
            encoder=encoder,
            swap_names=swap_names,
            seed=config.seed,
            models=models,
            share_prefix=config.share_image_prefix,
        )
    trainer = UnlearnTrainer(
        model=model,
        args=args,
        train_dataset=ItemDataset(items),
        data_collator=RoleCollator(encoder, augment, method.batch_roles),
        terms=method.terms,
        teacher_context=context,
        alternate=method.alternate,
        teacher_cache=TeacherCache(config.cache_teacher_top_k) if config.cache_teacher else None,
        share_prefix=config.share_image_prefix,
        fused_head=config.fused_head,
    )
    trajectory = keeper = None
    if config.keep_best and measure is None:
        raise ValueError(
            f"train.keep_best={config.keep_best!r} needs a measure of the validation half; this "
            "run has none"
        )
    if config.eval_every and measure is not None:
        if config.keep_best:
            keeper = BestKeeper(config.keep_best, config.best_tolerance, output_dir)
        trajectory = TrajectoryCallback(
            loaded.processor,
            loaded.kind,
            measure,
            config.eval_every,
            output_dir / "trajectory.json",
            keeper=keeper,
            log=trainer.log,
        )
        trainer.add_callback(trajectory)
    checkpoint = last_complete_checkpoint(output_dir / "checkpoints") if resume else None
    state = checkpoint_state(checkpoint, config.steps) if checkpoint is not None else None
    if checkpoint is not None:
        log.info("resuming from %s", checkpoint)
        if trajectory is not None:
            trajectory.restore(state.global_step)
    if state is not None and state.global_step == config.steps:
        # killed after the last checkpoint (while saving the model): its weights are the result
        log.info("%s is the run's last step: nothing left to train", checkpoint)
        trainer._load_from_checkpoint(str(checkpoint))
        trainer.state = state
    else:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if keeper is not None:
        keeper.load_best(model, trainer.state.global_step)
    if config.lora:
        model = model.merge_and_unload()
    result = LoadedModel(model, loaded.processor, loaded.kind)
    if trainer.is_world_process_zero():
        save_atomically(result, output_dir / "model")
        atomic_write_json(output_dir / "train_log.json", trainer.state.log_history)
    return result


def draw_items(
    method: Method, by_role: dict[str, list[Example]], config: TrainConfig
) -> list[Item]:
    """The run's training items: `method`'s sampler over the rows it may train on.

    Held-out neighbour and general rows (`data.splits.is_heldout`) are dropped here, before any
    sampler sees them; a method's own rows (`method.rows`) then replace the run's rows of
    their role.
    """
    kept = trainable(by_role)
    held = sum(len(rows) - len(kept[role]) for role, rows in by_role.items())
    if held:
        log.info("%d held-out neighbour/general rows left out of training", held)
    for role, rows in method.rows.items():
        log.info(
            "%s: %d rows of its own in place of the run's %r rows", method.name, len(rows), role
        )
    kept |= {role: list(rows) for role, rows in method.rows.items()}
    items = SAMPLERS.get(method.sampler)(kept, config.seed, config.steps * config.batch_size)
    if config.share_image_prefix:
        items = group_by_image(items, "forget", config.seed)
    return items


def last_complete_checkpoint(directory: Path) -> Path | None:
    """The newest `checkpoint-N` the Trainer finished writing (None if there is none).

    The Trainer writes a checkpoint in place and `trainer_state.json` last, so a run killed while
    saving leaves a folder without it; resuming from that folder would fail or load half a state.
    """
    complete = [
        path
        for path in directory.glob("checkpoint-*")
        if path.name.removeprefix("checkpoint-").isdigit()
        and (path / "trainer_state.json").is_file()
    ]
    return max(complete, key=lambda path: int(path.name.split("-")[1]), default=None)


def checkpoint_state(checkpoint: Path, steps: int) -> TrainerState:
    """The Trainer state saved in `checkpoint`; a run of another length is refused."""
    path = checkpoint / "trainer_state.json"
    try:
        state = TrainerState.load_from_json(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserValueError(
            f"{path}: not valid JSON ({error}); the checkpoint is damaged"
        ) from None
    if state.max_steps != steps or state.global_step > steps:
        raise UserValueError(
            f"{checkpoint}: written by a run of {state.max_steps} steps (at step "
            f"{state.global_step}); this run has train.steps={steps}. Resume with "
            f"train.steps={state.max_steps}, or start afresh"
        )
    return state


def train_phases(
    loaded: LoadedModel,
    method: Method,
    by_role: dict[str, list[Example]],
    config: TrainConfig,
    output_dir: Path,
    swap_names: tuple[str, ...],
    progress: bool,
    measure: Measure | None,
    resume: bool = False,
) -> LoadedModel:
    """Each phase continues from the previous one's model (whose frozen copy is its teacher).

    A phase with `steps` runs that many; the others split the rest of the budget evenly. A phase
    with `keep_as` trains a copy instead and hands it, frozen, to later phases' teachers. With
    `resume`, a phase whose model was saved is loaded instead of trained again.
    """
    fixed = sum(phase.steps for phase in method.phases)
    shared = sum(1 for phase in method.phases if not phase.steps)
    per_phase = max(1, (config.steps - fixed) // shared) if shared else 0
    kept: dict[str, torch.nn.Module] = {}
    for i, phase in enumerate(method.phases):
        steps = phase.steps or per_phase
        phase_dir = output_dir / f"phase{i + 1}"
        if resume and (phase_dir / "model" / "config.json").is_file():
            log.info(
                "phase %d/%d: %s already done, loading it", i + 1, len(method.phases), phase.name
            )
            result = load_model(phase_dir / "model")
        else:
            log.info("phase %d/%d: %s (%d steps)", i + 1, len(method.phases), phase.name, steps)
            start = loaded
            if phase.keep_as:
                start = LoadedModel(copy.deepcopy(loaded.model), loaded.processor, loaded.kind)
            result = train(
                start,
                phase,
                by_role,
                dataclasses.replace(config, steps=steps),
                phase_dir,
                swap_names,
                resume=resume,
                progress=progress,
                measure=None if phase.keep_as else measure,
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
