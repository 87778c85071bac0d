"""Objective terms and methods: every method is a preset of terms + sampler (shared/DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmunlearn.losses.divergences import build_loss
from mmunlearn.registry import Registry
from mmunlearn.teachers import build_teacher


@dataclass(frozen=True)
class Term:
    """sign · weight · masked_mean(loss(student, teacher(batch[role])))."""

    role: str
    teacher: Any
    loss: Any
    weight: float = 1.0
    sign: int = 1  # +1 moves the student toward the target, −1 away from it (ascent)

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise ValueError(f"term sign={self.sign}; expected +1 or -1")
        if self.weight < 0:
            raise ValueError(f"term weight={self.weight} must be >= 0 (use sign for ascent)")

    @property
    def name(self) -> str:
        return f"{self.role}/{type(self.teacher).__name__}"


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    paper: str
    terms: tuple[Term, ...]
    sampler: str = "one_to_one_random"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(term.role for term in self.terms))


METHODS: Registry[Callable[..., Method]] = Registry("method")


def merged(default: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(default)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@METHODS.register("vgid")
def vgid(
    teacher: dict | None = None, forget_weight: float = 1.0, retain_weight: float = 1.0
) -> Method:
    return Method(
        name="vgid",
        description="distil the base on a noised image + in-context forget prompt; KL to base on retain",
        paper="VGID, arXiv 2606.00105",
        terms=(
            Term(
                "forget",
                build_teacher(merged({"name": "vgid"}, teacher)),
                build_loss("forward_kl"),
                forget_weight,
            ),
            Term("retain", build_teacher("base"), build_loss("forward_kl"), retain_weight),
        ),
    )


@METHODS.register("icu_distill")
def icu_distill(
    teacher: dict | None = None, forget_weight: float = 1.0, retain_weight: float = 1.0
) -> Method:
    return Method(
        name="icu_distill",
        description="distil the base told in-context to forget the entity; KL to base on retain",
        paper="In-context unlearning, arXiv 2310.07579",
        terms=(
            Term(
                "forget",
                build_teacher(merged({"name": "icu"}, teacher)),
                build_loss("forward_kl"),
                forget_weight,
            ),
            Term("retain", build_teacher("base"), build_loss("forward_kl"), retain_weight),
        ),
    )


@METHODS.register("finetune")
def finetune(
    teacher: dict | None = None, forget_weight: float = 1.0, retain_weight: float = 1.0
) -> Method:
    return Method(
        name="finetune",
        description="plain NLL on the answers (how the base and the oracle are trained)",
        paper="—",
        terms=(Term("train", build_teacher("labels"), build_loss("cross_entropy")),),
        sampler="single",
    )


def build_method(name: str, **options: Any) -> Method:
    return METHODS.get(name)(**options)
