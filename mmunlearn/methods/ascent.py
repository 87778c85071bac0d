"""Methods that push the student away from the forget answers: gradient ascent and its
retain-regularised forms, and the two-phase sequential schedule."""

from __future__ import annotations

from mmunlearn.losses.divergences import Loss
from mmunlearn.methods.spec import (
    RETAIN_KL,
    RETAIN_NLL,
    MethodSpec,
    Phase,
    TermSpec,
    register_method,
)

ASCENT = TermSpec("forget", "labels", "cross_entropy", sign=-1, tuned=True)

register_method(
    MethodSpec(
        "ga",
        "gradient ascent on the forget answers' NLL",
        "Jang et al., arXiv 2210.01504",
        terms=(ASCENT,),
    )
)
register_method(
    MethodSpec(
        "grad_diff",
        "gradient ascent on forget, NLL on retain",
        "Liu et al., arXiv 2203.12817 (TOFU's GradDiff)",
        terms=(ASCENT, RETAIN_NLL),
    )
)
register_method(
    MethodSpec(
        "kl_min",
        "gradient ascent on forget, KL to the base on retain",
        "TOFU, arXiv 2401.06121",
        terms=(ASCENT, RETAIN_KL),
    )
)


def negative_teacher(loss: Loss) -> str:
    """Negative fine-tuning: a token loss ascends the data's answers; a sequence loss (NPO)
    takes the model as its reference."""
    return "labels" if loss.level == "token" else "base"


def negative_sign(loss: Loss) -> int:
    return -1 if loss.level == "token" else 1


register_method(
    MethodSpec(
        "sequential",
        "stabilise on retain, then negative fine-tuning on forget (two phases)",
        "sequential unlearning (stabilise, then forget), cf. MELU arXiv 2509.05316",
        phases=(
            Phase("stabilise", "NLL on retain", (RETAIN_NLL,)),
            Phase(
                "forget",
                "negative fine-tuning on forget (gradient ascent; `--set loss.name=npo` for NPO "
                "against the phase-1 model), NLL on retain",
                (
                    TermSpec(
                        "forget", negative_teacher, "cross_entropy", negative_sign, tuned=True
                    ),
                    RETAIN_NLL,
                ),
            ),
        ),
    )
)
