"""A method as one declarative spec: terms (or phases), sampler, alternation, kept teachers.

`MethodSpec.build` turns the spec and a run's options (`teacher`, `loss`, `forget_weight`,
`retain_weight`) into the engine's `Method`. The run's `teacher` and `loss` options go to the
spec's one `tuned` term, merged into its defaults and built by `mmunlearn.components`, so a
misspelled or inapplicable field fails there with its config path (`teacher.noise.knd`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.losses.divergences import Loss, build_loss
from mmunlearn.losses.objective import Method, Term
from mmunlearn.registry import Registry
from mmunlearn.teachers import Teacher, build_teacher

ComponentSpec = str | Mapping[str, Any]  # a registered name, or {"name": ..., field: value}
WEIGHTS = ("forget", "retain", "")


@dataclass(frozen=True)
class TermSpec:
    """One objective term as data (`Term`, with its components named instead of built).

    `teacher`, `loss`: a registered name or a mapping of fields. One of them may instead be a
    function of the other, built first, where a default depends on what the user chose (WHP's
    loss follows `teacher.hard`). `sign`: +1 toward the target, −1 away (ascent), or a function
    of the built loss. `weight`: the run option that scales the term — `forget`
    (`forget_weight`), `retain` (`retain_weight`) or "" (1). `tuned`: the run's `teacher` and
    `loss` options are merged into this term's (one term per method). `pair_role`, `positions`,
    `layer`: as in `Term` (the dispreferred batch of a pair loss; the student view read).
    `factor`: a fixed multiple of the weight (open-unlearning's SimNPO forget coefficient).
    """

    role: str
    teacher: ComponentSpec | Callable[[Loss], ComponentSpec]
    loss: ComponentSpec | Callable[[Teacher], ComponentSpec]
    sign: int | Callable[[Loss], int] = 1
    weight: str = "forget"
    tuned: bool = False
    pair_role: str | None = None
    positions: str = "answer"
    layer: int | None = None
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError(f"term factor={self.factor} must be > 0")
        if self.weight not in WEIGHTS:
            raise ValueError(f"term weight={self.weight!r}; expected one of {WEIGHTS}")
        if callable(self.teacher) and callable(self.loss):
            raise ValueError("a term's teacher and loss cannot both depend on the other")


@dataclass(frozen=True)
class Phase:
    """One phase of a phased method: its terms, and what it trains.

    `steps`: a fixed step count (0: an even share of what the fixed phases leave). `keep_as`:
    train a copy and keep it, frozen, as the named teacher model of later phases (WHP's
    `reinforced`). `rows`: rows of its own for some roles (WHP's corpus passages as `forget`).
    `steps`, `keep_as` and `rows` may be functions of the method's tuned teacher (its options).
    """

    name: str
    description: str
    terms: tuple[TermSpec, ...]
    steps: int | Callable[[Teacher], int] = 0
    keep_as: str | Callable[[Teacher], str] = ""
    rows: Callable[[Teacher], dict[str, tuple[Example, ...]]] | None = None
    alternate: bool = False


@dataclass(frozen=True)
class MethodSpec:
    """A method: `terms` under `sampler` (optimizer steps `alternate` between the forget terms
    and the others, the VGID authors' loop), or `phases` run in order."""

    name: str
    description: str
    paper: str
    terms: tuple[TermSpec, ...] = ()
    sampler: str = "one_to_one_random"
    phases: tuple[Phase, ...] = ()
    alternate: bool = False

    def __post_init__(self) -> None:
        if bool(self.terms) == bool(self.phases):
            raise ValueError(f"method {self.name!r}: give either terms or phases")
        tuned = [t for t in self.term_specs if t.tuned]
        if len(tuned) > 1:
            raise ValueError(f"method {self.name!r}: {len(tuned)} tuned terms; at most one")

    @property
    def term_specs(self) -> tuple[TermSpec, ...]:
        return tuple(t for phase in self.phases for t in phase.terms) or self.terms

    def build(
        self,
        teacher: ComponentSpec | None = None,
        loss: ComponentSpec | None = None,
        forget_weight: float = 1.0,
        retain_weight: float = 1.0,
    ) -> Method:
        """The engine's `Method` for a run's options (config paths `teacher`, `loss`)."""
        tuned = next((t for t in self.term_specs if t.tuned), None)
        if tuned is None and (teacher or loss):
            raise ValueError(f"method {self.name!r} takes no teacher or loss options")
        weights = {"forget": forget_weight, "retain": retain_weight, "": 1.0}
        built: dict[int, Term] = {}
        if tuned is not None:
            built[id(tuned)] = _build_term(tuned, weights, teacher, loss, "teacher", "loss")
        tuned_teacher = built[id(tuned)].teacher if tuned is not None else None

        def term(spec: TermSpec) -> Term:
            if id(spec) not in built:
                where = f"methods.{self.name}.{spec.role}"
                built[id(spec)] = _build_term(
                    spec, weights, None, None, f"{where}.teacher", f"{where}.loss"
                )
            return built[id(spec)]

        if not self.phases:
            terms = tuple(term(t) for t in self.terms)
            return Method(
                self.name,
                self.description,
                self.paper,
                terms,
                self.sampler,
                alternate=self.alternate,
            )
        phases = tuple(
            Method(
                f"{self.name}/{phase.name}",
                phase.description,
                "",
                tuple(term(t) for t in phase.terms),
                self.sampler,
                alternate=phase.alternate,
                steps=_resolve(phase.steps, tuned_teacher),
                keep_as=_resolve(phase.keep_as, tuned_teacher),
                rows=phase.rows(tuned_teacher) if phase.rows else {},
            )
            for phase in self.phases
        )
        return Method(self.name, self.description, self.paper, (), self.sampler, phases=phases)

    __call__ = build


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register `spec` under its name (a module of `mmunlearn.methods`, or any importer's)."""
    return METHODS.register(spec.name)(spec)


def merged(default: ComponentSpec, override: ComponentSpec | None) -> dict[str, Any]:
    """`override` merged into `default`, nested mappings key by key (a name is `{"name": ...}`)."""
    out = {"name": default} if isinstance(default, str) else dict(default)
    override = {"name": override} if isinstance(override, str) else (override or {})
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _resolve(value: Any, argument: Any) -> Any:
    return value(argument) if callable(value) else value


def _build_term(
    spec: TermSpec,
    weights: dict[str, float],
    teacher_options: ComponentSpec | None,
    loss_options: ComponentSpec | None,
    teacher_path: str,
    loss_path: str,
) -> Term:
    if callable(spec.teacher):  # the teacher follows the loss: build the loss first
        loss = build_loss(merged(spec.loss, loss_options), loss_path)
        teacher = build_teacher(merged(spec.teacher(loss), teacher_options), teacher_path)
    else:
        teacher = build_teacher(merged(spec.teacher, teacher_options), teacher_path)
        loss = build_loss(merged(_resolve(spec.loss, teacher), loss_options), loss_path)
    return Term(
        spec.role,
        teacher,
        loss,
        weights[spec.weight] * spec.factor,
        _resolve(spec.sign, loss),
        pair_role=spec.pair_role,
        positions=spec.positions,
        layer=spec.layer,
    )


# The retain terms most methods share.
RETAIN_KL = TermSpec("retain", "base", "forward_kl", weight="retain")
RETAIN_NLL = TermSpec("retain", "labels", "cross_entropy", weight="retain")
