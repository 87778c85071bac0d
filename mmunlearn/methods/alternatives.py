"""Methods that prefer another answer to each forget question over the forget answer, without
ascent: AltPO (plausible wrong alternatives, DPO) and FLAT (a template answer, f-divergence)."""

from __future__ import annotations

from mmunlearn.methods.spec import RETAIN_NLL, MethodSpec, TermSpec, register_method

# AltPO (Mekala et al., arXiv 2409.13474): −(2/β)·log σ(β·[(log π(ỹ|x) − log π_ref(ỹ|x)) −
# (log π(y|x) − log π_ref(y|x))]) with ỹ an alternate answer, plus NLL on retain (the authors'
# `dpo` loss type on alternates). The authors generate the alternates with the model; the
# `alternate` view takes the record's first wrong option.
register_method(
    MethodSpec(
        "altpo",
        "DPO preferring a plausible wrong answer over the forget answer, base as reference; "
        "NLL on retain",
        "Mekala et al., arXiv 2409.13474 (AltPO)",
        terms=(
            TermSpec("forget:alternate", "base", "dpo", tuned=True, pair_role="forget"),
            RETAIN_NLL,
        ),
    )
)
register_method(
    MethodSpec(
        "flat",
        'maximise an f-divergence between the "I don\'t know" and the forget answers; '
        "no retain term, no reference model",
        "Wang et al., arXiv 2410.11143 (FLAT)",
        terms=(TermSpec("forget:idk", "labels", "flat", tuned=True, pair_role="forget"),),
    )
)
