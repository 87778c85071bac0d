import math

import pytest
from scipy.stats import ks_2samp

from mmunlearn.evaluation.likelihood import (
    answer_probability,
    forget_quality,
    log_truth_ratio,
    pick_option,
    truth_ratio,
    truth_score,
)


def test_answer_probability_is_the_geometric_mean_token_probability():
    # Two tokens with p = 0.5 and 0.125: (0.5 * 0.125) ** (1/2) = 0.25.
    mean = (math.log(0.5) + math.log(0.125)) / 2
    assert answer_probability(mean) == pytest.approx(0.25)


def test_pick_option_takes_the_highest_mean_log_prob():
    # A short option with a lower total but a higher per-token mean wins over a long one.
    assert pick_option([-1.5, -0.4, -2.0, -0.9]) == 1
    assert pick_option([-0.5, -0.5]) == 0  # ties: the first
    with pytest.raises(ValueError, match="no options"):
        pick_option([])


def test_truth_ratio_by_hand():
    # Perturbed probabilities 0.1 and 0.3 (mean 0.2), paraphrased 0.8: R = 0.2 / 0.8 = 0.25.
    perturbed, paraphrased = [math.log(0.1), math.log(0.3)], math.log(0.8)
    assert truth_ratio(perturbed, paraphrased) == pytest.approx(0.25)
    assert log_truth_ratio(perturbed, paraphrased) == pytest.approx(math.log(0.25))
    assert truth_score(0.25) == pytest.approx(0.75)
    assert truth_score(3.0) == 0.0
    # Indifferent model: every answer equally likely, R = 1.
    assert truth_ratio([-2.0, -2.0, -2.0], -2.0) == pytest.approx(1.0)


def test_log_truth_ratio_survives_underflow():
    assert log_truth_ratio([-1.0], -2000.0) == pytest.approx(1999.0)


def test_forget_quality_ks_by_hand():
    # Fully separated samples of three: D = 1, exact two-sided p = 2 / C(6, 3) = 0.1.
    result = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert result["ks_statistic"] == pytest.approx(1.0)
    assert result["p_value"] == pytest.approx(2 / math.comb(6, 3))
    # Identical samples: D = 0, p = 1.
    same = forget_quality([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same == {"ks_statistic": 0.0, "p_value": 1.0}
    # D by hand: ECDFs of {1, 2, 3, 4} and {3, 4, 5, 6} differ most at 2 (0.5 vs 0).
    partial = forget_quality([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
    assert partial["ks_statistic"] == pytest.approx(0.5)
    ref = ks_2samp([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]).pvalue
    assert partial["p_value"] == pytest.approx(ref)


def test_forget_quality_needs_samples():
    with pytest.raises(ValueError, match="non-empty"):
        forget_quality([], [1.0])
