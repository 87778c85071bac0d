"""PDU, primal-dual unlearning (Entesari et al., "Constrained Entropic Unlearning: A Primal-Dual
Framework for Large Language Models", arXiv 2506.05314): flatten the logits on forget subject to
the retain NLL staying below a bound ε,

    min_θ mean_t (max_v z_v − mean_v z_v)²  s.t.  NLL_retain(θ) ≤ ε,

through L = L_forget + λ·(NLL_retain − ε) with λ ≥ 0 raised by dual ascent after each batch.
The engine's term weights are constants: λ is state of the retain term's loss
(`constrained_nll`, its update rule declared there), so `retain_weight` is unused and
`--set` reaches λ's settings only through that loss's defaults (ε = 0, η = 1, λ₀ = 1: a plain
GradDiff-like start whose λ grows while the retain NLL exceeds ε).
"""

from __future__ import annotations

from mmunlearn.methods.spec import MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "pdu",
        "flatten the logits on forget (max - mean)^2; lambda*(retain NLL - eps), lambda by "
        "dual ascent each step",
        "Entesari et al., arXiv 2506.05314 (PDU)",
        terms=(
            TermSpec("forget", "labels", "logit_margin", tuned=True),
            TermSpec("retain", "labels", "constrained_nll", weight=""),
        ),
    )
)
