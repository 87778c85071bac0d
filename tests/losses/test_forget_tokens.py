"""WGA, SatImp, CE-U and PDU's logit-margin loss against float64 formulas written by hand, and
against open-unlearning's own expressions (reproduced here on the already-shifted logits)."""

import pytest
import torch
import torch.nn.functional as F

from mmunlearn.losses.divergences import reduce_tokens
from mmunlearn.losses.forget_tokens import (
    CrossEntropyUnlearning,
    LogitMarginFlattening,
    SaturationImportanceNLL,
    WeightedNLL,
)
from mmunlearn.teachers import build_teacher
from mmunlearn.values import TokenTargets

LABELS = torch.tensor([[1, 3, 0], [-100, 4, 2]])


@pytest.fixture()
def logits():
    return torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def hard(labels: torch.Tensor = LABELS) -> TokenTargets:
    return TokenTargets(mask=labels != -100, token_ids=labels)


def gold_probability64(logits: torch.Tensor) -> torch.Tensor:
    """p(y_t) by hand, 1.0 where masked (a weight that does not matter there)."""
    probs = torch.softmax(logits.double(), -1)
    out = torch.ones(2, 3, dtype=torch.float64)
    for b, t in [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2)]:
        out[b, t] = probs[b, t, LABELS[b, t]]
    return out


def test_wga_is_probability_weighted_nll_in_float64(logits):
    p = gold_probability64(logits)
    beta = 1.0
    expected = p**beta * -p.log()
    got = WeightedNLL(beta)(logits, hard()).double()
    mask = LABELS != -100
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-6, rtol=1e-5)
    # β = 0 is plain ascent's NLL
    torch.testing.assert_close(WeightedNLL(0.0)(logits, hard())[mask].double(), -p.log()[mask])


def test_wga_weight_is_detached(logits):
    """The gradient is w·∇NLL (w a constant), not ∇(w·NLL)."""
    x = logits.float().requires_grad_()
    WeightedNLL(2.0)(x, hard())[0, 0].backward()
    p = torch.softmax(x.detach(), -1)[0, 0]
    expected = p[1] ** 2 * (p - F.one_hot(torch.tensor(1), 5))  # w · ∂(−log p_y)/∂z
    torch.testing.assert_close(x.grad[0, 0], expected, atol=1e-6, rtol=1e-5)


def test_satimp_weights_saturation_and_importance_in_float64(logits):
    p = gold_probability64(logits)
    b1, b2 = 5.0, 1.0
    expected = p**b1 * (1 - p) ** b2 * -p.log()
    got = SaturationImportanceNLL(b1, b2)(logits, hard()).double()
    mask = LABELS != -100
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-7, rtol=1e-5)


def open_unlearning_weighted(logits, labels, beta1, beta2=None):
    """open-unlearning's compute_wga_loss / compute_satimp_loss on shifted logits."""
    lm_loss = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="none")(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    )
    weight = (-lm_loss).exp().detach() ** beta1
    if beta2 is not None:
        weight = weight * (1 - (-lm_loss).exp().detach()) ** beta2
    return -(weight * lm_loss)[labels.reshape(-1) != -100].mean()


def test_wga_and_satimp_terms_equal_open_unlearnings_forget_loss(logits):
    mask = LABELS != -100
    wga = -reduce_tokens(WeightedNLL(1.0)(logits, hard()), mask)  # the term's sign is −1
    torch.testing.assert_close(wga.double(), open_unlearning_weighted(logits, LABELS, 1.0))
    satimp = -reduce_tokens(SaturationImportanceNLL(5.0, 1.0)(logits, hard()), mask)
    torch.testing.assert_close(
        satimp.double(), open_unlearning_weighted(logits, LABELS, 5.0, 1.0), atol=1e-7, rtol=1e-5
    )


def test_ce_u_is_cross_entropy_to_the_distribution_without_the_gold_token(logits):
    got = CrossEntropyUnlearning()(logits, hard()).double()
    for b, t in [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2)]:
        z, y = logits[b, t].double(), LABELS[b, t]
        rest = [v for v in range(5) if v != y]
        target = torch.zeros(5, dtype=torch.float64)
        target[rest] = torch.softmax(z[rest], -1)  # renormalised over the other tokens
        expected = -(target * torch.log_softmax(z, -1)).sum()
        torch.testing.assert_close(got[b, t], expected, atol=1e-6, rtol=1e-5)


def test_ce_u_gradient_lowers_the_gold_logit_by_its_probability(logits):
    x = logits.float().requires_grad_()
    CrossEntropyUnlearning()(x, hard())[0, 1].backward()
    q = torch.softmax(x.detach()[0, 1], -1)
    assert x.grad[0, 1, 3] == pytest.approx(q[3].item(), rel=1e-5)  # ∂/∂z_y = q_y − 0


def test_ce_u_equals_open_unlearning_with_the_first_answer_token_skipped(logits):
    """open-unlearning's compute_batch_ceu: the first answer token of each row is not trained,
    then F.cross_entropy to the gold-removed softmax, averaged over the tokens left."""
    teacher = build_teacher({"name": "labels", "skip_first_tokens": 1})
    targets = teacher.build(None, {}, LABELS)
    assert targets.mask.tolist() == [[False, True, True], [False, False, True]]
    ours = reduce_tokens(CrossEntropyUnlearning()(logits, targets), targets.mask)

    labels = LABELS.masked_fill(((LABELS != -100).cumsum(-1) <= 1) & (LABELS != -100), -100)
    valid = labels != -100
    valid_logits, valid_labels = logits[valid], labels[valid]
    target = F.softmax(valid_logits.detach().scatter(-1, valid_labels[:, None], -torch.inf), -1)
    theirs = F.cross_entropy(valid_logits, target)
    torch.testing.assert_close(ours.double(), theirs, atol=1e-6, rtol=1e-5)


def test_labels_teacher_without_skipping_keeps_every_answer_token():
    targets = build_teacher("labels").build(None, {}, LABELS)
    assert torch.equal(targets.token_ids, LABELS) and torch.equal(targets.mask, LABELS != -100)
    with pytest.raises(ValueError, match="skip_first_tokens"):
        build_teacher({"name": "labels", "skip_first_tokens": -1})


def test_logit_margin_is_max_minus_mean_squared_and_zero_when_flat(logits):
    got = LogitMarginFlattening()(logits, hard()).double()
    expected = (logits.max(-1).values - logits.mean(-1)) ** 2
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    flat = torch.full((2, 3, 5), 1.7)
    assert LogitMarginFlattening()(flat, hard()).abs().max() == 0


@pytest.mark.parametrize(
    "loss", [WeightedNLL(), SaturationImportanceNLL(), CrossEntropyUnlearning()]
)
def test_token_forget_losses_need_hard_targets(loss, logits):
    soft = TokenTargets(mask=LABELS != -100, logprobs=torch.log_softmax(logits, -1))
    with pytest.raises(ValueError, match="labels"):
        loss(logits, soft)


def test_negative_powers_are_refused():
    with pytest.raises(ValueError, match="weight_power"):
        WeightedNLL(-1.0)
    with pytest.raises(ValueError, match="importance_power"):
        SaturationImportanceNLL(importance_power=-0.5)
