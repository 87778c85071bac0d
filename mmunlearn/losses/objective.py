"""The engine: objective terms, their values, and the shape of a method (shared/DESIGN.md).

A term is sign · weight · reduce(loss(student view, teacher(batch[role]))). The catalogue of
methods (which terms, sampler and phases each one is) lives in `mmunlearn.methods`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.losses.divergences import Loss, reduce_tokens
from mmunlearn.teachers.hidden import HiddenStateTeacher, layer_hidden_states
from mmunlearn.values import TokenTargets

if TYPE_CHECKING:
    from mmunlearn.teachers.targets import Teacher

POSITIONS = ("answer", "all", "sequence", "sequence_but_last")
WHOLE_SEQUENCE = POSITIONS[1:]  # views that keep the student's tokens and read beyond the answer


@dataclass(frozen=True)
class Term:
    """sign · weight · reduce(loss(student, teacher(batch[role]))).

    `pair_role`: a second batch of the same rows (e.g. `forget` beside `forget:idk`) for a
    `level="pair"` loss such as DPO, which gets (logits, targets, labels) of both.
    The student view the loss reads: `positions` — `answer` (the answer tokens); `all` (every
    real token of the sequence after the first: prompt, image and answer; padding masked), for
    teachers that keep the student's token sequence (VGID authors' code parity); `sequence`
    (every position of the padded batch, padding and the last included: open-unlearning's
    retain KL) or `sequence_but_last` (every position that predicts a token of the padded row:
    open-unlearning's UNDIAL), see `models.every_position`. `layer` — None reads logits; an
    index reads the hidden states (B, K, H) after that layer at the same positions
    (`hidden_states[layer]` in transformers' numbering: 0 the embeddings, −1 the last), for
    representation losses (`Loss.reads == "hidden"`, e.g. RMU's steering).
    """

    role: str
    teacher: Teacher
    loss: Loss
    weight: float = 1.0
    sign: int = 1  # +1 moves the student toward the target, −1 away from it (ascent)
    pair_role: str | None = None
    positions: str = "answer"
    layer: int | None = None

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise ValueError(f"term sign={self.sign}; expected +1 or -1")
        if self.weight < 0:
            raise ValueError(f"term weight={self.weight} must be >= 0 (use sign for ascent)")
        pairwise = self.loss.level == "pair"
        if pairwise != (self.pair_role is not None):
            raise ValueError(
                f"loss {type(self.loss).__name__} with pair_role={self.pair_role!r}: a pair loss "
                "needs a pair_role (the dispreferred batch) and only a pair loss takes one"
            )
        if self.positions not in POSITIONS:
            raise ValueError(f"term positions={self.positions!r}; expected one of {POSITIONS}")
        if self.positions in WHOLE_SEQUENCE and self.teacher.rewrites_text:
            raise ValueError(
                f"positions={self.positions!r} needs a teacher that keeps the student's tokens; "
                f"{type(self.teacher).__name__} rewrites the text (use positions='answer')"
            )
        if (self.layer is not None) != (self.loss.reads == "hidden"):
            raise ValueError(
                f"loss {type(self.loss).__name__} reads the student's {self.loss.reads} and the "
                f"term has layer={self.layer!r}: a hidden-state loss needs a layer, and only one "
                "takes it"
            )
        if self.layer is not None and self.loss.level != "token":
            raise ValueError(f"layer={self.layer}: hidden states go to token-level losses only")
        if isinstance(self.teacher, HiddenStateTeacher) and self.teacher.layer != self.layer:
            raise ValueError(
                f"{type(self.teacher).__name__} gives hidden states at layer "
                f"{self.teacher.layer} and the term reads the student at layer {self.layer}: "
                "they must be the same layer"
            )

    @property
    def name(self) -> str:
        pair = f"+{self.pair_role}" if self.pair_role else ""
        return f"{self.role}{pair}/{type(self.teacher).__name__}"

    @property
    def source(self) -> str:
        """The data role the term's batch comes from (`forget` for `forget:idk`)."""
        return self.role.partition(":")[0]


Side = tuple[torch.Tensor, TokenTargets, torch.Tensor]  # logits (B, K, V), targets, labels (B, K)


def answer_hidden_states(
    model: torch.nn.Module, batch: dict[str, Any], layer: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The student view for hidden-state terms: the hidden states (B, K, H) after `layer` at the
    positions whose logits predict the last K tokens (those of `answer_logits`), and the tokens.
    The same function gives a hidden-state teacher the frozen model's (`teachers.hidden`)."""
    return layer_hidden_states(model, batch, layer)


def _mean_over(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return values[rows].sum() / rows.sum().clamp(min=1)


def term_value(
    term: Term,
    logits: torch.Tensor,
    targets: TokenTargets,
    labels: torch.Tensor,
    pair: Side | None = None,
) -> torch.Tensor:
    """The term's scalar before sign and weight (`logits`: what its view reads).

    Token-level losses: reduced by the loss's `reduction` (default: the mean over valid tokens).
    Sequence-level losses (NPO, SimNPO): a mean over sequences that have an answer. Pair losses
    (DPO): a mean over rows whose two answers both exist.
    """
    level = term.loss.level
    if level == "pair":
        assert pair is not None, "the trainer passes the pair_role batch"
        rows = targets.mask.any(-1) & pair[1].mask.any(-1)
        return _mean_over(term.loss((logits, targets, labels), pair), rows)
    if level == "sequence":
        return _mean_over(term.loss(logits, targets, labels), targets.mask.any(-1))
    return reduce_tokens(term.loss(logits, targets), targets.mask, term.loss.reduction)


def term_count(term: Term, targets: TokenTargets) -> torch.Tensor:
    """What `term_value` averages over: valid answer tokens (the `mean` reduction), or sequences
    (sequence and pair losses, and the per-sequence `sum` reduction)."""
    if term.loss.level == "token" and term.loss.reduction == "mean":
        return targets.mask.sum()
    return targets.mask.any(-1).sum()


@dataclass(frozen=True)
class Method:
    """What the trainer runs: terms + sampler, or phases run in order (built from a
    `mmunlearn.methods.MethodSpec`).

    `alternate`: optimizer steps alternate between the forget terms (even steps) and the other
    terms (odd steps), each its own step (the VGID authors' loop). `steps`: a phase's fixed step
    count (0: an even share of what the fixed phases leave). `keep_as`: the phase trains a copy
    of the model and keeps it, frozen, as the named teacher model of later phases (WHP's
    reinforced model) instead of continuing from it. `rows`: rows that replace the run's rows
    of their role while this method (phase) trains, e.g. WHP's reinforce phase on passages of
    a forget corpus as `forget` rows; the run's data, later phases and evaluation never see them.
    """

    name: str
    description: str
    paper: str
    terms: tuple[Term, ...]
    sampler: str = "one_to_one_random"
    phases: tuple[Method, ...] = ()  # run in order; `terms` then unused
    alternate: bool = False
    steps: int = 0
    keep_as: str = ""
    rows: dict[str, tuple[Example, ...]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"method {self.name!r}: steps={self.steps} must be >= 0")
        empty = [role for role, rows in self.rows.items() if not rows]
        if empty:
            raise ValueError(f"method {self.name!r}: rows for role(s) {empty} are empty")

    @property
    def all_terms(self) -> tuple[Term, ...]:
        """Every term of the method, over its phases."""
        return tuple(t for phase in self.phases for t in phase.terms) or self.terms

    @property
    def batch_roles(self) -> tuple[str, ...]:
        """The batches a step needs: a data role, or `role:view` (e.g. `forget:idk`)."""
        roles = [r for t in self.all_terms for r in (t.role, t.pair_role) if r is not None]
        return tuple(dict.fromkeys(roles))

    @property
    def roles(self) -> tuple[str, ...]:
        """The data roles the sampler must provide."""
        return tuple(dict.fromkeys(role.partition(":")[0] for role in self.batch_roles))

    def with_sampler(self, sampler: str) -> Method:
        """The method with `sampler` in place of its own, in every phase too."""
        phases = tuple(phase.with_sampler(sampler) for phase in self.phases)
        return dataclasses.replace(self, sampler=sampler, phases=phases)
