"""Likelihood metrics on teacher-forced answer scores: multiple choice, answer probability, truth
ratio and TOFU's forget quality. Pure functions on `AnswerScore`s and floats."""

from __future__ import annotations

import math
from collections.abc import Sequence


def answer_probability(mean_logprob: float) -> float:
    """TOFU's answer probability P(a | q)^(1/|a|) = exp(mean_t log p(a_t | q, a_<t)), in [0, 1].

    Higher: the model still assigns its probability mass to the answer (remembers more). For a
    forget set, lower is better; the oracle's value is the target. The 1/|a| power (the
    geometric mean over answer tokens, EOS included) makes answers of different lengths
    comparable. `mean_logprob` is `AnswerScore.mean_logprob`. Reference: Maini et al., TOFU
    (arXiv 2401.06121), "Probability".
    """
    return math.exp(mean_logprob)


def pick_option(mean_logprobs: Sequence[float]) -> int:
    """Index of the likeliest option by length-normalised log-likelihood (mean per token).

    Multiple-choice accuracy by option likelihood, zero-shot: no few-shot prompt, no letter
    labels; each option is scored as the answer to the plain question and the option with the
    highest mean token log-prob wins (ties: the first). The per-token mean is the length
    normalisation, so a one-token option does not beat a two-token one for being short.
    Accuracy is in [0, 1], higher = remembers more, chance = 1 / number of options.
    Reference: the likelihood scoring of lm-evaluation-harness ("acc_norm" normalises by
    characters; we normalise by tokens) and MLLMU-Bench's multiple-choice task.
    """
    if not mean_logprobs:
        raise ValueError("pick_option: no options to choose from")
    return max(range(len(mean_logprobs)), key=lambda i: (mean_logprobs[i], -i))


def truth_ratio(perturbed: Sequence[float], paraphrased: float) -> float:
    """TOFU's truth ratio R = mean_j P(â_j | q)^(1/|â_j|) / P(ã | q)^(1/|ã|), in (0, ∞).

    â_j are perturbed (wrong) answers, ã a paraphrased (correct) answer. R < 1: the model
    prefers the truth (remembers); R ≈ 1: it cannot tell them apart (the forget set's target for
    a model that never saw the facts). The synthetic world has no paraphrased ANSWERS (answers
    are single names, years, cities), so callers pass the answer itself as ã, and the wrong
    multiple-choice options as â_j. Arguments are mean token log-probs (`AnswerScore.
    mean_logprob`); computed in log space, so P(ã | q) underflowing to 0 gives a large finite R.
    Reference: Maini et al., TOFU (arXiv 2401.06121).
    """
    if not perturbed:
        raise ValueError("truth_ratio: needs at least one perturbed answer")
    return math.exp(log_truth_ratio(perturbed, paraphrased))


def log_truth_ratio(perturbed: Sequence[float], paraphrased: float) -> float:
    """ln R of `truth_ratio`: log of the mean perturbed probability minus the paraphrased one."""
    top = max(perturbed)
    log_mean = top + math.log(sum(math.exp(m - top) for m in perturbed) / len(perturbed))
    return log_mean - paraphrased


def truth_score(ratio: float) -> float:
    """TOFU's truth-ratio utility max(0, 1 − R), in [0, 1]; higher = prefers the truth more."""
    return max(0.0, 1.0 - ratio)


def forget_quality(model_ratios: Sequence[float], oracle_ratios: Sequence[float]) -> dict:
    """TOFU's forget quality: the p-value of a two-sample Kolmogorov–Smirnov test between the
    truth ratios of the forget questions under the model and under the oracle (retrained
    without the forget set). In [0, 1]; higher is better: a high p-value means the two
    distributions cannot be told apart (TOFU reads p > 0.05 as "forgot"). The statistic D is
    the largest gap between the two empirical CDFs. scipy's `ks_2samp` (exact for small samples,
    two-sided). Reference: Maini et al., TOFU (arXiv 2401.06121).
    """
    from scipy.stats import ks_2samp

    if not model_ratios or not oracle_ratios:
        raise ValueError("forget_quality: both samples must be non-empty")
    result = ks_2samp(list(model_ratios), list(oracle_ratios))
    return {"ks_statistic": float(result.statistic), "p_value": float(result.pvalue)}
