"""Methods that distil the frozen base under an intervention: VGID and its halves, UNDIAL."""

from __future__ import annotations

from mmunlearn.methods.spec import RETAIN_KL, MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "vgid",
        "distil the base on a noised image + in-context forget prompt; KL to base on retain",
        "VGID, arXiv 2606.00105",
        terms=(TermSpec("forget", "vgid", "forward_kl", tuned=True), RETAIN_KL),
    )
)

# The VGID authors' released loop: KL(base on a noise image ‖ student) on forget and
# KL(base ‖ student) on retain, over every position of the sequence, summed per sequence and
# averaged over the batch (their `batchmean`), in alternating optimizer steps.
KL_SUMMED = {"name": "forward_kl", "reduction": "sum"}
register_method(
    MethodSpec(
        "vgid_noise_only",
        "distil the base on a noise image, all positions, forget/retain steps alternating",
        "VGID authors' code (github JackChen-seu/VGID), arXiv 2606.00105",
        terms=(
            TermSpec("forget", "visual_noise", KL_SUMMED, tuned=True, positions="all"),
            TermSpec("retain", "base", KL_SUMMED, weight="retain", positions="all"),
        ),
        alternate=True,
    )
)

register_method(
    MethodSpec(
        "icu_distill",
        "distil the base told in-context to forget the entity; KL to base on retain",
        "In-context unlearning, arXiv 2310.07579",
        terms=(TermSpec("forget", "icu", "forward_kl", tuned=True), RETAIN_KL),
    )
)

register_method(
    MethodSpec(
        "undial",
        "self-distil the base with the gold token's logit lowered by beta",
        "Dong et al., arXiv 2402.10052",
        terms=(TermSpec("forget", "undial", "cross_entropy", tuned=True),),
    )
)
