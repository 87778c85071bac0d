"""Membership-inference attacks on answer scores, their AUC, and MUSE's privacy leak.

Each attack maps one answer's token scores to a membership score: HIGHER = "more likely a
training member". The AUC of forget (members of the base's training set) against holdout
(never trained) questions then says how well an attacker tells them apart: 1.0 for a model
that still memorises the forget set, ≈ 0.5 for one that never saw it (the oracle).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from mmunlearn.evaluation.scoring import AnswerScore

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


def _mean_lowest(values: Sequence[float], k: float) -> float:
    """Mean of the ⌈k·n⌉ smallest values (at least one): answers are short, so k% of 2 tokens
    is 1 token."""
    if not 0 < k <= 1:
        raise ValueError(f"min-k fraction k={k}; expected 0 < k <= 1")
    count = max(1, math.ceil(k * len(values)))
    return sum(sorted(values)[:count]) / count


def loss_score(score: AnswerScore) -> float:
    """LOSS attack (Yeom et al., 2018): −mean NLL of the answer tokens."""
    return score.mean_logprob


def zlib_score(score: AnswerScore, text: str) -> float:
    """zlib attack (Carlini et al., 2021): −(mean NLL) / (zlib-compressed length of `text` in
    bytes). The compressed length stands for the text's intrinsic surprise."""
    return score.mean_logprob / len(zlib.compress(text.encode("utf-8")))


def min_k_score(score: AnswerScore, k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al., arXiv 2310.16789): the mean log-prob of the k% least likely
    answer tokens. Members have few very unlikely tokens."""
    return _mean_lowest(score.logprobs, k)


def min_k_plus_plus_score(score: AnswerScore, k: float = 0.2) -> float:
    """Min-K%++ (Zhang et al., arXiv 2404.02936): each token's log-prob standardised by the
    model's own distribution at that position, (log p(x_t) − μ_t) / σ_t, then the mean of the
    k% lowest. A token with σ_t = 0 (a one-hot distribution) counts as 0."""
    z = [
        (lp - mu) / sd if sd > 0 else 0.0
        for lp, mu, sd in zip(score.logprobs, score.means, score.stds, strict=True)
    ]
    return _mean_lowest(z, k)


def attack_scores(score: AnswerScore, text: str, k: float = 0.2) -> dict[str, float]:
    """Every attack's membership score for one answer (`text` feeds the zlib attack)."""
    return {
        "loss": loss_score(score),
        "zlib": zlib_score(score, text),
        "min_k": min_k_score(score, k),
        "min_k_plus_plus": min_k_plus_plus_score(score, k),
    }


def auc(members: Sequence[float], non_members: Sequence[float]) -> float:
    """ROC AUC by the rank statistic (Mann–Whitney U): the probability that a random member
    scores higher than a random non-member, ties counting one half. In [0, 1]; 0.5 = chance.

    AUC = (R₁ − n₁(n₁+1)/2) / (n₁·n₀), R₁ the sum of the members' ranks with tied values given
    their average rank.
    """
    from scipy.stats import rankdata

    if not members or not non_members:
        raise ValueError(
            f"auc: needs members and non-members; got {len(members)} and {len(non_members)}"
        )
    ranks = rankdata(list(members) + list(non_members))  # average ranks for ties
    n1, n0 = len(members), len(non_members)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def privleak(auc_model: float, auc_oracle: float) -> float:
    """MUSE's PrivLeak (Shi et al., arXiv 2407.06460): (AUC_model − AUC_oracle) / AUC_oracle.

    ≈ 0 is best (the model leaks membership exactly like a model that never saw the forget
    set); large positive = under-unlearned (forget still looks like training data); negative =
    over-unlearned (forget looks LESS like training data than unseen data does, itself a tell).
    """
    if auc_oracle <= 0:
        raise ValueError(f"privleak: oracle AUC={auc_oracle}; expected > 0")
    return (auc_model - auc_oracle) / auc_oracle
