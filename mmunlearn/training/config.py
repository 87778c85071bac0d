"""Run configuration: nested dataclasses, YAML presets, strict `key.sub=value` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmunlearn.components import build_component
from mmunlearn.losses.fused import check_backend
from mmunlearn.losses.objective import Method
from mmunlearn.methods import build_method
from mmunlearn.models.lora import full_scope_parameters, lora_target
from mmunlearn.training.samplers import SAMPLERS


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
        lora_target(self.lora_scope)  # raises ValueError naming the scope
        if self.full_scope:
            full_scope_parameters(self.full_scope)
        check_backend(self.fused_head)
        if self.cache_teacher_top_k < 0:
            raise ValueError(
                f"train.cache_teacher_top_k={self.cache_teacher_top_k} must be >= 0 "
                "(0 caches whole distributions)"
            )
        if self.cache_teacher_top_k and not self.cache_teacher:
            raise ValueError(
                f"train.cache_teacher_top_k={self.cache_teacher_top_k} applies to cached "
                "targets; set train.cache_teacher=true as well"
            )


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
    values = yaml.safe_load(Path(path).read_text()) if path else {}
    values = apply_overrides(values or {}, overrides)
    return from_dict(UnlearnConfig, values)
