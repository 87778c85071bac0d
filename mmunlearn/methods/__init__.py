"""The method catalogue: every method is one declarative `MethodSpec` of the engine's terms.

Each module of this package registers its methods when imported, and every module is imported
here, so adding a method is one file (or one `register_method(MethodSpec(...))` anywhere: a
test registers its own). `mmunlearn list methods` and docs/methods.md list the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from mmunlearn.losses.divergences import LOSSES
from mmunlearn.losses.objective import Method, Term
from mmunlearn.methods.spec import (
    METHODS,
    RETAIN_KL,
    RETAIN_NLL,
    MethodSpec,
    Phase,
    TermSpec,
    merged,
    register_method,
)
from mmunlearn.methods.views import VIEWS, idk_view
from mmunlearn.registry import Registry
from mmunlearn.teachers import TEACHERS

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def build_method(name: str, **options: Any) -> Method:
    """Method `name` for a run's options: `teacher`, `loss` (merged into its tuned term's),
    `forget_weight`, `retain_weight`."""
    return METHODS.get(name).build(**options)


def _registered_name(registry: Registry, component: object) -> str:
    return next(name for name, cls in registry.items() if cls is type(component))


def describe_term(term: Term) -> str:
    """`forget: −cross_entropy(labels)`, in the registry's names."""
    sign = "−" if term.sign < 0 else ""
    pair = f" vs {term.pair_role}" if term.pair_role else ""
    where = [f"{term.positions} positions"] if term.positions != "answer" else []
    where += [f"layer {term.layer}"] if term.layer is not None else []
    where += [f"× {term.weight:g}"] if term.weight != 1 else []
    where += (
        ["summed per sequence"]
        if term.loss.level == "token" and term.loss.reduction == "sum"
        else []
    )
    suffix = f" [{', '.join(where)}]" if where else ""
    loss, teacher = _registered_name(LOSSES, term.loss), _registered_name(TEACHERS, term.teacher)
    return f"{term.role}{pair}: {sign}{loss}({teacher}){suffix}"


def describe_schedule(method: Method) -> str:
    if method.phases:
        return " → ".join(
            f"{phase.name.rpartition('/')[2]}"
            + (f" (kept as `{phase.keep_as}`)" if phase.keep_as else "")
            for phase in method.phases
        )
    return method.sampler + (", alternating steps" if method.alternate else "")


def method_table() -> str:
    """The registered methods as a markdown table (docs/methods.md is this, checked by a test).

    `*` marks the term that a run's `teacher` and `loss` options reach."""
    lines = [
        "| method | terms (default settings) | sampler / phases | paper |",
        "| --- | --- | --- | --- |",
    ]
    for name, spec in METHODS.items():
        method = spec.build()

        def terms(built: tuple[Term, ...], specs: tuple[TermSpec, ...]) -> str:
            marked = [
                describe_term(t) + (" *" if s.tuned else "")
                for t, s in zip(built, specs, strict=True)
            ]
            return "; ".join(marked)

        if method.phases:
            cell = "<br>".join(
                f"{phase.name.rpartition('/')[2]}: {terms(phase.terms, phase_spec.terms)}"
                for phase, phase_spec in zip(method.phases, spec.phases, strict=True)
            )
        else:
            cell = terms(method.terms, spec.terms)
        lines.append(f"| `{name}` | {cell} | {describe_schedule(method)} | {method.paper} |")
    return "\n".join(lines) + "\n"


def method_doc() -> str:
    """docs/methods.md: the method table, generated (`python -m mmunlearn.methods`)."""
    return (
        "# Methods\n\n"
        "Generated from the method registry by `python -m mmunlearn.methods > docs/methods.md`;\n"
        "tests/methods/test_docs.py fails when it differs. Each method is one `MethodSpec` in\n"
        "`mmunlearn/methods/`; a term reads `role: loss(teacher)` in registered names (− for\n"
        "ascent); `--set teacher.*` and `loss.*` reach the term marked `*`.\n\n" + method_table()
    )


__all__ = [
    "METHODS",
    "RETAIN_KL",
    "RETAIN_NLL",
    "VIEWS",
    "Method",
    "MethodSpec",
    "Phase",
    "Term",
    "TermSpec",
    "build_method",
    "idk_view",
    "merged",
    "method_doc",
    "method_table",
    "register_method",
]
