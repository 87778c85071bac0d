"""PDU's retain constraint: λ·(NLL − ε) with the token-mean NLL, and its dual ascent rule."""

import pytest
import torch

from mmunlearn.losses.constrained import ConstrainedNLL
from mmunlearn.losses.objective import Term, term_value
from mmunlearn.teachers import build_teacher
from mmunlearn.values import TokenTargets

LABELS = torch.tensor([[1, 3, 0], [-100, -100, 2]])


def nll64(logits):
    logp = torch.log_softmax(logits.double(), -1)
    picked = [logp[0, 0, 1], logp[0, 1, 3], logp[0, 2, 0], logp[1, 2, 2]]
    return -sum(picked) / 4  # the token mean over the batch


@pytest.fixture()
def logits():
    return torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(11), dtype=torch.float64)


def value(loss, logits):
    term = Term("retain", build_teacher("labels"), loss)
    targets = TokenTargets(LABELS != -100, token_ids=LABELS)
    return term_value(term, logits, targets, LABELS)


def test_the_term_is_lambda_times_the_token_mean_nll_minus_the_bound(logits):
    loss = ConstrainedNLL(retain_bound=0.5, dual_step=0.1, initial_multiplier=2.0)
    expected = 2.0 * (nll64(logits) - 0.5)
    torch.testing.assert_close(value(loss, logits).double(), expected, atol=1e-6, rtol=1e-5)


def test_lambda_rises_by_dual_ascent_and_stays_nonnegative(logits):
    nll = nll64(logits).item()
    loss = ConstrainedNLL(retain_bound=0.5, dual_step=0.1, initial_multiplier=2.0)
    value(loss, logits)
    assert loss.multiplier.value == pytest.approx(2.0 + 0.1 * (nll - 0.5), rel=1e-5)
    second = value(loss, logits)  # uses the updated λ
    torch.testing.assert_close(
        second.double(), (2.0 + 0.1 * (nll - 0.5)) * (nll64(logits) - 0.5), atol=1e-6, rtol=1e-5
    )
    below = ConstrainedNLL(retain_bound=nll + 100, dual_step=1.0, initial_multiplier=1.0)
    value(below, logits)
    assert below.multiplier.value == 0.0 and below.multiplier.updates == 1


def test_an_evaluation_without_autograd_leaves_lambda(logits):
    loss = ConstrainedNLL()
    with torch.no_grad():
        value(loss, logits)
    assert loss.multiplier.value == 1.0 and loss.multiplier.updates == 0


def test_each_build_has_its_own_lambda_and_settings_compare_equal():
    a, b = ConstrainedNLL(), ConstrainedNLL()
    assert a == b and a.multiplier is not b.multiplier
    with pytest.raises(ValueError, match="dual_step"):
        ConstrainedNLL(dual_step=-1.0)
