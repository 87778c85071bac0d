"""Objective terms and methods: every method is a preset of terms + sampler (shared/DESIGN.md)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.losses.divergences import build_loss, masked_mean
from mmunlearn.registry import Registry
from mmunlearn.teachers import TokenTargets, build_teacher
from mmunlearn.teachers.targets import Teacher


@dataclass(frozen=True)
class Term:
    """sign · weight · masked_mean(loss(student, teacher(batch[role])))."""

    role: str
    teacher: Teacher
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


def term_value(
    term: Term, logits: torch.Tensor, targets: TokenTargets, labels: torch.Tensor
) -> torch.Tensor:
    """The term's scalar before sign and weight.

    Token-level losses: a mean over valid answer tokens. Sequence-level losses (NPO, SimNPO): a
    mean over sequences that have an answer.
    """
    if getattr(term.loss, "level", "token") == "sequence":
        rows = targets.mask.any(-1)
        return term.loss(logits, targets, labels)[rows].mean()
    return masked_mean(term.loss(logits, targets), targets.mask)


def term_count(term: Term, targets: TokenTargets) -> torch.Tensor:
    """What `term_value` averages over: valid answer tokens, or sequences for sequence losses."""
    if getattr(term.loss, "level", "token") == "sequence":
        return targets.mask.any(-1).sum()
    return targets.mask.sum()


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    paper: str
    terms: tuple[Term, ...]
    sampler: str = "one_to_one_random"
    phases: tuple[Method, ...] = ()  # run in order, the steps split evenly; `terms` then unused

    @property
    def batch_roles(self) -> tuple[str, ...]:
        """The batches a step needs: a data role, or `role:view` (e.g. `forget:idk`)."""
        terms = [t for phase in self.phases for t in phase.terms] if self.phases else self.terms
        return tuple(dict.fromkeys(term.role for term in terms))

    @property
    def roles(self) -> tuple[str, ...]:
        """The data roles the sampler must provide."""
        return tuple(dict.fromkeys(role.partition(":")[0] for role in self.batch_roles))


def idk_view(example: Example) -> Example:
    """The example answered with its first "I don't know"-style alternative (IdK methods)."""
    if not example.alt_answers:
        raise ValueError(f"example {example.id!r} has no alt_answers; the IdK view needs one")
    return dataclasses.replace(example, answer=example.alt_answers[0])


VIEWS: Registry[Callable[[Example], Example]] = Registry("data view")
VIEWS.register("idk")(idk_view)


METHODS: Registry[Callable[..., Method]] = Registry("method")


def merged(default: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(default)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Preset:
    """A method as data: forget teacher/loss/sign, which retain term, and the sampler."""

    description: str
    paper: str
    forget_teacher: str
    forget_loss: str
    forget_sign: int = 1
    retain: str | None = "kl"  # "kl": KL(base ‖ student); "nll": the retain answers; None
    forget_role: str = "forget"  # or a view of it, e.g. "forget:idk"
    sampler: str = "one_to_one_random"


RETAIN_TERMS = {"kl": ("base", "forward_kl"), "nll": ("labels", "cross_entropy")}

PRESETS = {
    "vgid": Preset(
        "distil the base on a noised image + in-context forget prompt; KL to base on retain",
        "VGID, arXiv 2606.00105",
        "vgid",
        "forward_kl",
    ),
    "icu_distill": Preset(
        "distil the base told in-context to forget the entity; KL to base on retain",
        "In-context unlearning, arXiv 2310.07579",
        "icu",
        "forward_kl",
    ),
    "ga": Preset(
        "gradient ascent on the forget answers' NLL",
        "Jang et al., arXiv 2210.01504",
        "labels",
        "cross_entropy",
        -1,
        retain=None,
    ),
    "grad_diff": Preset(
        "gradient ascent on forget, NLL on retain",
        "Liu et al., arXiv 2203.12817 (TOFU's GradDiff)",
        "labels",
        "cross_entropy",
        -1,
        "nll",
    ),
    "kl_min": Preset(
        "gradient ascent on forget, KL to the base on retain",
        "TOFU, arXiv 2401.06121",
        "labels",
        "cross_entropy",
        -1,
        "kl",
    ),
    "npo": Preset(
        "negative preference optimisation against the base; NLL on retain",
        "Zhang et al., arXiv 2404.05868",
        "base",
        "npo",
        1,
        "nll",
    ),
    "simnpo": Preset(
        "reference-free, length-normalised NPO; NLL on retain",
        "Fan et al., arXiv 2410.07163",
        "labels",
        "simnpo",
        1,
        "nll",
    ),
    "idk": Preset(
        'NLL on an "I don\'t know" answer to each forget question; NLL on retain',
        "TOFU, arXiv 2401.06121 (IdK)",
        "labels",
        "cross_entropy",
        1,
        "nll",
        forget_role="forget:idk",
    ),
    "undial": Preset(
        "self-distil the base with the gold token's logit lowered by beta",
        "Dong et al., arXiv 2402.10052",
        "undial",
        "cross_entropy",
        1,
        retain=None,
    ),
    "finetune": Preset(
        "plain NLL on the answers (how the base and the oracle are trained)",
        "—",
        "labels",
        "cross_entropy",
        1,
        retain=None,
        sampler="single",
    ),
}


def _build_preset(
    name: str,
    preset: Preset,
    teacher: dict | None = None,
    loss: dict | None = None,
    forget_weight: float = 1.0,
    retain_weight: float = 1.0,
) -> Method:
    role = "train" if preset.sampler == "single" else preset.forget_role
    terms = [
        Term(
            role,
            build_teacher(merged({"name": preset.forget_teacher}, teacher)),
            build_loss(merged({"name": preset.forget_loss}, loss)),
            forget_weight,
            preset.forget_sign,
        )
    ]
    if preset.retain is not None:
        retain_teacher, retain_loss = RETAIN_TERMS[preset.retain]
        terms.append(
            Term("retain", build_teacher(retain_teacher), build_loss(retain_loss), retain_weight)
        )
    return Method(name, preset.description, preset.paper, tuple(terms), preset.sampler)


for _name, _preset in PRESETS.items():
    METHODS.register(_name)(functools.partial(_build_preset, _name, _preset))


@METHODS.register("sequential")
def sequential(
    teacher: dict | None = None,
    loss: dict | None = None,
    forget_weight: float = 1.0,
    retain_weight: float = 1.0,
) -> Method:
    """Phase 1 stabilises on retain (NLL); phase 2 is negative fine-tuning on forget (gradient
    ascent; `--set loss.name=npo` for NPO against the phase-1 model) with NLL on retain."""
    stabilise = Method(
        "sequential/stabilise",
        "NLL on retain",
        "",
        (Term("retain", build_teacher("labels"), build_loss("cross_entropy"), retain_weight),),
    )
    forget_loss = build_loss(merged({"name": "cross_entropy"}, loss))
    ascent = getattr(forget_loss, "level", "token") == "token"
    forget_teacher = build_teacher(merged({"name": "labels" if ascent else "base"}, teacher))
    negative = Method(
        "sequential/forget",
        "negative fine-tuning on forget, NLL on retain",
        "",
        (
            Term("forget", forget_teacher, forget_loss, forget_weight, -1 if ascent else 1),
            Term("retain", build_teacher("labels"), build_loss("cross_entropy"), retain_weight),
        ),
    )
    return Method(
        "sequential",
        "stabilise on retain, then negative fine-tuning on forget (two phases)",
        "sequential unlearning (stabilise, then forget), cf. MELU arXiv 2509.05316",
        (),
        phases=(stabilise, negative),
    )


def build_method(name: str, **options: Any) -> Method:
    return METHODS.get(name)(**options)
