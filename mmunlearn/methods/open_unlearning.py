"""open-unlearning's conventions as presets, to reproduce tables made with its code.

open-unlearning (locuslab/open-unlearning) and this toolkit agree on gradient ascent, GradDiff,
NPO and DPO (token means pooled over the batch; sequence losses scaled by 2/β). They differ where
open-unlearning reads the whole padded sequence and where its defaults differ from the papers':

| preset | open-unlearning source | what differs from ours |
| --- | --- | --- |
| `kl_min_ou` | `trainer/unlearn/grad_diff.py` (`retain_loss_type: KL`), `trainer/utils.py` `compute_kl_divergence` | retain KL averaged over every position of the padded batch (prompt, padding, the last position) |
| `undial_ou` | `trainer/unlearn/undial.py`, `compute_undial_loss`, `configs/trainer/UNDIAL.yaml` | cross-entropy averaged over every position but the last; non-answer positions lower token V − 100 |
| `simnpo_ou` | `trainer/unlearn/simnpo.py`, `configs/trainer/SimNPO.yaml` | β = 4.5, margin δ = 0, forget term × 0.125 (its `gamma`) |

The views (`models.every_position`) give the student and the base the same positions
open-unlearning averages over; the batch's prompt format and padding side stay ours (left
padding, the model's chat template), so whole-sequence values match open-unlearning's formula on
the same tensors, not its numbers on its own tokenisation.
"""

from __future__ import annotations

from mmunlearn.methods.ascent import ASCENT
from mmunlearn.methods.spec import RETAIN_NLL, MethodSpec, TermSpec, register_method

register_method(
    MethodSpec(
        "kl_min_ou",
        "kl_min as open-unlearning computes it: retain KL over every position of the padded batch",
        "TOFU, arXiv 2401.06121; open-unlearning GradDiff with retain_loss_type=KL",
        terms=(
            ASCENT,
            TermSpec("retain", "base", "forward_kl", weight="retain", positions="sequence"),
        ),
    )
)
register_method(
    MethodSpec(
        "undial_ou",
        "undial as open-unlearning computes it: every position but the last, beta 10",
        "Dong et al., arXiv 2402.10052; open-unlearning UNDIAL",
        terms=(
            TermSpec(
                "forget",
                {"name": "undial", "beta": 10.0, "convention": "open_unlearning"},
                "cross_entropy",
                tuned=True,
                positions="sequence_but_last",
            ),
        ),
    )
)
register_method(
    MethodSpec(
        "simnpo_ou",
        "simnpo with open-unlearning's defaults: beta 4.5, margin 0, forget term x 0.125",
        "Fan et al., arXiv 2410.07163; open-unlearning SimNPO",
        terms=(
            TermSpec("forget", "labels", {"name": "simnpo", "beta": 4.5}, tuned=True, factor=0.125),
            RETAIN_NLL,
        ),
    )
)
