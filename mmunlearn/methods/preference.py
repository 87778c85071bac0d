"""Preference-style methods: NPO, SimNPO, and the "I don't know" answers (IdK, DPO)."""

from __future__ import annotations

from mmunlearn.methods.spec import RETAIN_NLL, MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "npo",
        "negative preference optimisation against the base; NLL on retain",
        "Zhang et al., arXiv 2404.05868",
        terms=(TermSpec("forget", "base", "npo", tuned=True), RETAIN_NLL),
    )
)
register_method(
    MethodSpec(
        "simnpo",
        "reference-free, length-normalised NPO; NLL on retain",
        "Fan et al., arXiv 2410.07163",
        terms=(TermSpec("forget", "labels", "simnpo", tuned=True), RETAIN_NLL),
    )
)
register_method(
    MethodSpec(
        "idk",
        'NLL on an "I don\'t know" answer to each forget question; NLL on retain',
        "TOFU, arXiv 2401.06121 (IdK)",
        terms=(TermSpec("forget:idk", "labels", "cross_entropy", tuned=True), RETAIN_NLL),
    )
)
register_method(
    MethodSpec(
        "dpo_idk",
        'DPO preferring "I don\'t know" over the forget answer, base as reference; NLL on retain',
        "Rafailov et al., arXiv 2305.18290; for unlearning: TOFU arXiv 2401.06121, NPO",
        terms=(
            TermSpec("forget:idk", "base", "dpo", tuned=True, pair_role="forget"),
            RETAIN_NLL,
        ),
    )
)
