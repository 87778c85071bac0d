"""Plain fine-tuning: how the base and the oracle are trained (a method like the others)."""

from __future__ import annotations

from mmunlearn.methods.spec import MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "finetune",
        "plain NLL on the answers (how the base and the oracle are trained)",
        "—",
        terms=(TermSpec("train", "labels", "cross_entropy", tuned=True),),
        sampler="single",
    )
)
