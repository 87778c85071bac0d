import math
import zlib

import pytest

from mmunlearn.evaluation.mia import (
    attack_scores,
    auc,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    zlib_score,
)
from mmunlearn.evaluation.scoring import AnswerScore


def test_auc_separable_identical_and_flipped():
    assert auc([3.0, 4.0, 5.0], [0.0, 1.0, 2.0]) == 1.0
    assert auc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.5  # all tied: one half each
    assert auc([0.0, 1.0], [2.0, 3.0, 4.0]) == 0.0


def test_auc_by_hand_with_a_tie():
    # Pairs (member, non-member): (2 vs 1) win, (2 vs 2) tie, (0 vs 1) loss, (0 vs 2) loss.
    assert auc([2.0, 0.0], [1.0, 2.0]) == pytest.approx((1 + 0.5 + 0 + 0) / 4)


def test_auc_needs_both_groups():
    with pytest.raises(ValueError, match="members and non-members"):
        auc([], [1.0])


def _score(logprobs, means=None, stds=None):
    n = len(logprobs)
    return AnswerScore(tuple(logprobs), tuple(means or [0.0] * n), tuple(stds or [1.0] * n))


def test_min_k_takes_the_lowest_fraction_and_at_least_one_token():
    score = _score([-0.1, -3.0, -0.5, -2.0, -0.2])
    assert min_k_score(score, k=0.4) == pytest.approx((-3.0 - 2.0) / 2)  # ceil(0.4 * 5) = 2
    assert min_k_score(score, k=0.1) == pytest.approx(-3.0)  # ceil(0.5) = 1
    assert min_k_score(score, k=1.0) == pytest.approx(sum(score.logprobs) / 5)
    with pytest.raises(ValueError, match="0 < k <= 1"):
        min_k_score(score, k=0.0)


def test_min_k_plus_plus_standardises_each_token_first():
    # z = (lp - mu) / sd: (-1 - -2)/0.5 = 2, (-4 - -1)/1 = -3, (-2 - -2)/2 = 0; sd = 0 counts as 0.
    score = _score([-1.0, -4.0, -2.0, -5.0], [-2.0, -1.0, -2.0, -5.0], [0.5, 1.0, 2.0, 0.0])
    assert min_k_plus_plus_score(score, k=0.5) == pytest.approx((-3.0 + 0.0) / 2)
    assert min_k_plus_plus_score(score, k=0.25) == pytest.approx(-3.0)


def test_zlib_divides_the_mean_log_prob_by_the_compressed_length():
    score = _score([-1.0, -3.0])
    size = len(zlib.compress(b"Dunmere"))
    assert zlib_score(score, "Dunmere") == pytest.approx(-2.0 / size)


def test_attack_scores_are_higher_for_a_better_memorised_answer():
    memorised, unseen = _score([-0.01, -0.02]), _score([-2.0, -4.0])
    high, low = attack_scores(memorised, "Dunmere"), attack_scores(unseen, "Dunmere")
    assert all(high[a] > low[a] for a in ("loss", "zlib", "min_k"))
    assert high["loss"] == pytest.approx(-0.015)


def test_privleak_relative_to_the_oracle():
    assert privleak(0.75, 0.5) == pytest.approx(0.5)
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(0.25, 0.5) == pytest.approx(-0.5)
    assert math.isclose(privleak(1.0, 0.8), 0.25)
