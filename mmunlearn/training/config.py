"""Run configuration: nested dataclasses, YAML presets, strict `key.sub=value` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import SchedulerType

from mmunlearn.components import build_component
from mmunlearn.losses.fused import check_backend
from mmunlearn.losses.objective import Method
from mmunlearn.methods import build_method
from mmunlearn.models.lora import full_scope_parameters, lora_target
from mmunlearn.training.samplers import SAMPLERS
from mmunlearn.training.selection import RULES


@dataclass
class TrainConfig:
    steps: int = 40
    lr: float = 3e-4
    batch_size: int = 16  # the global batch: split evenly across the processes of a run
    warmup_steps: int = 0
    weight_decay: float = 0.0
    scheduler: str = "constant"
    lora: bool = False
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_scope: str = "language_model"  # or projector, vision_tower, all, a+b, re:<pattern>
    # parameters trained in full, the rest frozen (LoRA adapters excepted): "" = all without
    # LoRA, none with it; or a scope as above (e.g. projector+vision_tower: LLaVA's stage 1)
    full_scope: str = ""
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory
    bf16: bool = False  # bfloat16 mixed precision; needs a CUDA GPU
    save_steps: int = 0  # 0: only the final model; >0: resumable checkpoints every N steps
    logging_steps: int = 10
    eval_every: int = 0  # >0: forget/retain ROUGE-L every N steps → trajectory.json
    # a selection rule (training/selection.py, e.g. forget_within_retain): the model saved is the
    # measured step that wins on the validation half, not the last; needs eval_every > 0
    keep_best: str = ""
    best_tolerance: float = 0.05  # the rule's allowed retain drop from step 0
    # where losses and evaluation points go: none, or tensorboard / wandb / mlflow (installed),
    # comma-separated
    report_to: str = "none"
    cache_teacher: bool = False  # teacher targets once per example, reused (teachers/cache.py)
    cache_teacher_top_k: int = 0  # >0: cache only each position's k likeliest tokens (approximate)
    # batches group the questions about one forget image; each image's prefix is encoded once
    # per batch by student and teacher (models/prefix.py)
    share_image_prefix: bool = False
    # off | chunked | liger: token-level terms from hidden states, one chunk of logits at a
    # time (losses/fused.py); liger: Liger's CUDA kernels where they apply, else chunked
    fused_head: str = "off"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"train.steps={self.steps} must be >= 1")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size={self.batch_size} must be >= 1")
        if not 0 < self.lr < float("inf"):
            raise ValueError(f"train.lr={self.lr} must be a finite number > 0")
        if not 0 <= self.weight_decay < float("inf"):
            raise ValueError(f"train.weight_decay={self.weight_decay} must be a finite number >= 0")
        for name in ("warmup_steps", "save_steps", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name}={getattr(self, name)} must be >= 0")
        if self.logging_steps < 1:
            raise ValueError(f"train.logging_steps={self.logging_steps} must be >= 1")
        schedulers = [kind.value for kind in SchedulerType]
        if self.scheduler not in schedulers:
            close = difflib.get_close_matches(self.scheduler, schedulers, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"train.scheduler={self.scheduler!r} is not a learning-rate schedule{hint} "
                f"(known: {', '.join(schedulers)})"
            )
        lora_target(self.lora_scope)  # raises ValueError naming the scope
        if self.full_scope:
            full_scope_parameters(self.full_scope)
        check_backend(self.fused_head)
        if self.cache_teacher_top_k < 0:
            raise ValueError(
                f"train.cache_teacher_top_k={self.cache_teacher_top_k} must be >= 0 "
                "(0 caches whole distributions)"
            )
        if self.keep_best:
            try:
                RULES.get(self.keep_best)
            except KeyError as error:
                raise KeyError(f"train.keep_best: {error.args[0]}") from None
            if self.eval_every < 1:
                raise ValueError(
                    f"train.keep_best={self.keep_best!r} chooses among the steps measured every "
                    "train.eval_every steps; set train.eval_every to 1 or more"
                )
        if self.best_tolerance < 0:
            raise ValueError(f"train.best_tolerance={self.best_tolerance} must be >= 0")
        reporters(self.report_to)  # raises naming the logger that is unknown or not installed
        if self.cache_teacher_top_k and not self.cache_teacher:
            raise ValueError(
                f"train.cache_teacher_top_k={self.cache_teacher_top_k} applies to cached "
                "targets; set train.cache_teacher=true as well"
            )


# train.report_to name -> the module that must be importable for it (any one of them)
REPORTERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}
REPORTERS["mlflow"] = ("mlflow",)


def reporters(report_to: str) -> list[str]:
    """`train.report_to` as the Trainer's list; "none" is the empty list. A name that is not a
    known logger, or whose package is not installed, is a ValueError naming it."""
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    if names == ["none"]:
        return []
    for name in names:
        if name not in REPORTERS:
            raise ValueError(
                f"train.report_to={report_to!r}: {name!r} is not a logger; expected none or a "
                f"comma-separated list of {', '.join(REPORTERS)}"
            )
        if not any(importlib.util.find_spec(module) for module in REPORTERS[name]):
            raise ValueError(
                f"train.report_to={report_to!r}: {name} is not installed (pip install "
                f"{REPORTERS[name][0]}), or set train.report_to=none"
            )
    return names


@dataclass
class UnlearnConfig:
    method: str = "vgid"
    teacher: dict[str, Any] = field(default_factory=dict)  # merged into the method's forget teacher
    loss: dict[str, Any] = field(default_factory=dict)  # merged into the method's forget loss
    sampler: str = ""  # empty: the method's own; e.g. `modular` (MELU) for any method
    forget_weight: float = 1.0
    retain_weight: float = 1.0
    train: TrainConfig = field(default_factory=TrainConfig)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a nested dict; unknown keys are errors (with did-you-mean).

    The same builder as every component's (`mmunlearn.components`): nested sections from the
    fields' types, numbers from YAML strings converted, errors naming the config path.
    """
    return build_component(cls, values, where.rstrip("."))


def method_of(config: UnlearnConfig) -> Method:
    """The method a run's configuration describes, with its sampler: the check of `method`,
    `sampler`, `teacher.*` and `loss.*` (config paths named) before any data or model loads."""
    method = build_method(
        config.method,
        teacher=config.teacher,
        loss=config.loss,
        forget_weight=config.forget_weight,
        retain_weight=config.retain_weight,
    )
    if config.sampler:
        try:
            SAMPLERS.get(config.sampler)
        except KeyError as error:
            raise KeyError(f"sampler: {error.args[0]}") from None
        method = method.with_sampler(config.sampler)
    return method


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file of settings; malformed YAML or a top level that is not a mapping is a
    ValueError naming the file (and the line)."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or error
        raise ValueError(f"--config {path}: not valid YAML{line}: {problem}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"--config {path}: not UTF-8 text ({error})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(
            f"--config {path}: holds a {type(values).__name__}; expected a mapping of settings "
            "(method: ..., train: {steps: ...}; see `mmunlearn list config`)"
        )
    return values


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` strings (values parsed as YAML) to a nested dict."""
    for override in overrides:
        if "=" not in override:
            raise ValueError(f"override {override!r} must look like key.sub=value")
        path, raw = override.split("=", 1)
        node = values
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise KeyError(f"override {override!r}: {key!r} is not a section")
        node[keys[-1]] = yaml.safe_load(raw)
    return values


def load_config(path: str | Path | None, overrides: list[str]) -> UnlearnConfig:
    values = read_yaml_mapping(Path(path)) if path else {}
    values = apply_overrides(values, overrides)
    return from_dict(UnlearnConfig, values)
