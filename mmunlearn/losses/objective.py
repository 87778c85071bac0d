"""Objective terms and methods: every method is a preset of terms + sampler (shared/DESIGN.md)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mmunlearn.data.corpus import load_corpus_examples
from mmunlearn.data.example import Example
from mmunlearn.losses.divergences import build_loss, reduce_tokens
from mmunlearn.registry import Registry
from mmunlearn.teachers import TokenTargets, build_teacher
from mmunlearn.teachers.targets import Teacher

POSITIONS = ("answer", "all")


@dataclass(frozen=True)
class Term:
    """sign · weight · reduce(loss(student, teacher(batch[role]))).

    `pair_role`: a second batch of the same rows (e.g. `forget` beside `forget:idk`) for a
    `level="pair"` loss such as DPO, which gets (logits, targets, labels) of both.
    `positions`: `answer` (the answer tokens) or `all` (every real token of the sequence after
    the first: prompt, image and answer; padding masked), for teachers that keep the student's
    token sequence (VGID authors' code parity).
    """

    role: str
    teacher: Teacher
    loss: Any
    weight: float = 1.0
    sign: int = 1  # +1 moves the student toward the target, −1 away from it (ascent)
    pair_role: str | None = None
    positions: str = "answer"

    def __post_init__(self) -> None:
        if self.sign not in (1, -1):
            raise ValueError(f"term sign={self.sign}; expected +1 or -1")
        if self.weight < 0:
            raise ValueError(f"term weight={self.weight} must be >= 0 (use sign for ascent)")
        pairwise = getattr(self.loss, "level", "token") == "pair"
        if pairwise != (self.pair_role is not None):
            raise ValueError(
                f"loss {type(self.loss).__name__} with pair_role={self.pair_role!r}: a pair loss "
                "needs a pair_role (the dispreferred batch) and only a pair loss takes one"
            )
        if self.positions not in POSITIONS:
            raise ValueError(f"term positions={self.positions!r}; expected one of {POSITIONS}")
        if self.positions == "all" and getattr(self.teacher, "rewrites_text", False):
            raise ValueError(
                f"positions='all' needs a teacher that keeps the student's tokens; "
                f"{type(self.teacher).__name__} rewrites the text (use positions='answer')"
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


def _mean_over(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return values[rows].sum() / rows.sum().clamp(min=1)


def term_value(
    term: Term,
    logits: torch.Tensor,
    targets: TokenTargets,
    labels: torch.Tensor,
    pair: Side | None = None,
) -> torch.Tensor:
    """The term's scalar before sign and weight.

    Token-level losses: reduced by the loss's `reduction` (default: the mean over valid tokens).
    Sequence-level losses (NPO, SimNPO): a mean over sequences that have an answer. Pair losses
    (DPO): a mean over rows whose two answers both exist.
    """
    level = getattr(term.loss, "level", "token")
    if level == "pair":
        assert pair is not None, "the trainer passes the pair_role batch"
        rows = targets.mask.any(-1) & pair[1].mask.any(-1)
        return _mean_over(term.loss((logits, targets, labels), pair), rows)
    if level == "sequence":
        return _mean_over(term.loss(logits, targets, labels), targets.mask.any(-1))
    reduction = getattr(term.loss, "reduction", "mean")
    return reduce_tokens(term.loss(logits, targets), targets.mask, reduction)


def term_count(term: Term, targets: TokenTargets) -> torch.Tensor:
    """What `term_value` averages over: valid answer tokens (the `mean` reduction), or sequences
    (sequence and pair losses, and the per-sequence `sum` reduction)."""
    level = getattr(term.loss, "level", "token")
    if level == "token" and getattr(term.loss, "reduction", "mean") == "mean":
        return targets.mask.sum()
    return targets.mask.any(-1).sum()


@dataclass(frozen=True)
class Method:
    """A preset: terms + sampler, or phases run in order.

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
    def batch_roles(self) -> tuple[str, ...]:
        """The batches a step needs: a data role, or `role:view` (e.g. `forget:idk`)."""
        terms = [t for phase in self.phases for t in phase.terms] if self.phases else self.terms
        roles = [r for t in terms for r in (t.role, t.pair_role) if r is not None]
        return tuple(dict.fromkeys(roles))

    @property
    def roles(self) -> tuple[str, ...]:
        """The data roles the sampler must provide."""
        return tuple(dict.fromkeys(role.partition(":")[0] for role in self.batch_roles))

    def with_sampler(self, sampler: str) -> Method:
        """The method with `sampler` in place of its own, in every phase too."""
        phases = tuple(phase.with_sampler(sampler) for phase in self.phases)
        return dataclasses.replace(self, sampler=sampler, phases=phases)


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
    pair_role: str | None = None  # the dispreferred batch of a pair loss (DPO)


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
    "dpo_idk": Preset(
        'DPO preferring "I don\'t know" over the forget answer, base as reference; NLL on retain',
        "Rafailov et al., arXiv 2305.18290; for unlearning: TOFU arXiv 2401.06121, NPO",
        "base",
        "dpo",
        1,
        "nll",
        forget_role="forget:idk",
        pair_role="forget",
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
            pair_role=preset.pair_role,
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


@METHODS.register("vgid_noise_only")
def vgid_noise_only(
    teacher: dict | None = None,
    loss: dict | None = None,
    forget_weight: float = 1.0,
    retain_weight: float = 1.0,
) -> Method:
    """The VGID authors' released loop: KL(base on a noise image ‖ student) on forget and
    KL(base ‖ student) on retain, over every position of the sequence, summed per sequence and
    averaged over the batch (their `batchmean`), in alternating optimizer steps."""
    kl = {"name": "forward_kl", "reduction": "sum"}
    forget = Term(
        "forget",
        build_teacher(merged({"name": "visual_noise"}, teacher)),
        build_loss(merged(kl, loss)),
        forget_weight,
        positions="all",
    )
    retain = Term("retain", build_teacher("base"), build_loss(kl), retain_weight, positions="all")
    return Method(
        "vgid_noise_only",
        "distil the base on a noise image, all positions, forget/retain steps alternating",
        "VGID authors' code (github JackChen-seu/VGID), arXiv 2606.00105",
        (forget, retain),
        alternate=True,
    )


@METHODS.register("whp")
def whp(
    teacher: dict | None = None,
    loss: dict | None = None,
    forget_weight: float = 1.0,
    retain_weight: float = 1.0,
) -> Method:
    """Phase 1 fine-tunes a copy of the base on the forget answers (the reinforced model, kept
    frozen); phase 2 trains the base toward the whp teacher's generic predictions on forget
    (hard: cross-entropy on their argmax; `teacher.hard=false`: forward KL to their softmax).
    No retain term, as in the paper; `retain_weight` is unused.

    With `teacher.corpus=<text file>` phase 1 is the paper's document-level reinforcement: its
    `forget` rows are the file's passages (`mmunlearn.data.corpus`: first sentence as prompt,
    the rest as answer, `meta.kind="document"`), given to that phase alone through
    `Method.rows`; phase 2 and evaluation keep the run's forget QA rows. The engine needs no
    document mode: a passage is an ordinary row to the sampler, collator and loss."""
    whp_teacher = build_teacher(merged({"name": "whp"}, teacher))
    documents = (
        {"forget": tuple(load_corpus_examples(whp_teacher.corpus, whp_teacher.passage_words))}
        if whp_teacher.corpus
        else {}
    )
    reinforce = Method(
        "whp/reinforce",
        f"NLL on the forget {'corpus passages' if documents else 'answers'}, on a copy of the base",
        "",
        (Term("forget", build_teacher("labels"), build_loss("cross_entropy")),),
        steps=whp_teacher.reinforce_steps,
        keep_as=whp_teacher.reinforced,
        rows=documents,
    )
    default_loss = "cross_entropy" if whp_teacher.hard else "forward_kl"
    unlearn = Method(
        "whp/unlearn",
        "fine-tune on the generic predictions",
        "",
        (
            Term(
                "forget",
                whp_teacher,
                build_loss(merged({"name": default_loss}, loss)),
                forget_weight,
            ),
        ),
    )
    return Method(
        "whp",
        "reinforce a copy on forget, then fine-tune on base(anchored) - a*ReLU(reinforced - base)",
        "Who's Harry Potter, Eldan & Russinovich, arXiv 2310.02238",
        (),
        phases=(reinforce, unlearn),
    )


def build_method(name: str, **options: Any) -> Method:
    return METHODS.get(name)(**options)
