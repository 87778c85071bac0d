"""Methods that reshape each forget answer token's loss: reweighted ascent (WGA, SatImp) and
cross-entropy to the model's own distribution without the gold token (CE-U)."""

from __future__ import annotations

from mmunlearn.methods.spec import RETAIN_NLL, MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "wga",
        "gradient ascent with each token weighted by sg[p(y_t)^beta]; NLL on retain",
        "Wang et al., arXiv 2502.19301 (WGA)",
        terms=(TermSpec("forget", "labels", "wga", sign=-1, tuned=True), RETAIN_NLL),
    )
)
# open-unlearning's SatImp config weighs the forget term by 0.1: `--set forget_weight=0.1`
register_method(
    MethodSpec(
        "satimp",
        "gradient ascent with each token weighted by sg[p^beta1 (1-p)^beta2]; NLL on retain",
        "Yang et al., arXiv 2505.11953 (SatImp)",
        terms=(TermSpec("forget", "labels", "satimp", sign=-1, tuned=True), RETAIN_NLL),
    )
)
register_method(
    MethodSpec(
        "ce_u",
        "cross-entropy to the model's own distribution with the gold token removed "
        "(first answer token skipped); no retain term",
        "Yang, arXiv 2503.01224 (CE-U)",
        terms=(TermSpec("forget", {"name": "labels", "skip_first_tokens": 1}, "ce_u", tuned=True),),
    )
)
