import pytest
import torch

from mmunlearn.losses.divergences import (
    LOSSES,
    CrossEntropy,
    ForwardKL,
    GeneralisedJSD,
    ReverseKL,
    build_loss,
    masked_mean,
    reduce_tokens,
)
from mmunlearn.teachers.hidden import HiddenTargets
from mmunlearn.teachers.targets import TokenTargets


def soft(logits: torch.Tensor) -> TokenTargets:
    return TokenTargets(
        mask=torch.ones(logits.shape[:2], dtype=torch.bool), logprobs=torch.log_softmax(logits, -1)
    )


@pytest.fixture()
def pair():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 5, generator=gen), torch.randn(2, 3, 5, generator=gen)


def test_divergence_of_a_distribution_with_itself_is_zero(pair):
    student, _ = pair
    for loss in (ForwardKL(), ReverseKL(), GeneralisedJSD(0.3)):
        assert loss(student, soft(student)).abs().max() < 1e-6


def test_forward_and_reverse_kl_match_float64_formulas(pair):
    student, teacher = pair
    p, q = torch.softmax(teacher.double(), -1), torch.softmax(student.double(), -1)
    forward = (p * (p.log() - q.log())).sum(-1)
    reverse = (q * (q.log() - p.log())).sum(-1)
    torch.testing.assert_close(
        ForwardKL()(student, soft(teacher)).double(), forward, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(
        ReverseKL()(student, soft(teacher)).double(), reverse, atol=1e-5, rtol=1e-5
    )


def test_jsd_matches_float64_formula(pair):
    student, teacher = pair
    beta = 0.3
    p, q = torch.softmax(teacher.double(), -1), torch.softmax(student.double(), -1)
    m = beta * p + (1 - beta) * q
    expected = beta * (p * (p / m).log()).sum(-1) + (1 - beta) * (q * (q / m).log()).sum(-1)
    torch.testing.assert_close(
        GeneralisedJSD(beta)(student, soft(teacher)).double(), expected, atol=1e-5, rtol=1e-5
    )


def test_cross_entropy_on_hard_targets_is_nll(pair):
    student, _ = pair
    ids = torch.tensor([[0, 1, 2], [3, 4, -100]])
    values = CrossEntropy()(student, TokenTargets(mask=ids != -100, token_ids=ids))
    expected = -torch.log_softmax(student, -1)[0, 1, 1]
    torch.testing.assert_close(values[0, 1], expected)


def test_masked_positions_do_not_matter(pair):
    student, teacher = pair
    mask = torch.tensor([[True, True, False], [True, False, False]])
    changed = student.clone()
    changed[~mask] = 100.0
    a = masked_mean(ForwardKL()(student, soft(teacher)), mask)
    b = masked_mean(ForwardKL()(changed, soft(teacher)), mask)
    torch.testing.assert_close(a, b)


def test_masked_mean_divides_by_valid_tokens():
    values = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    mask = torch.tensor([[True, False], [True, True]])
    assert masked_mean(values, mask).item() == pytest.approx((1 + 5 + 7) / 3)


def test_soft_losses_refuse_hard_targets(pair):
    student, _ = pair
    hard = TokenTargets(
        mask=torch.ones(2, 3, dtype=torch.bool), token_ids=torch.zeros(2, 3, dtype=torch.long)
    )
    with pytest.raises(ValueError, match="soft teacher"):
        ForwardKL()(student, hard)


def test_every_registered_loss_runs_with_defaults(pair):
    student, teacher = pair
    labels = torch.tensor([[0, 1, 2], [3, 4, -100]])
    for name in LOSSES.names():
        loss = build_loss(name)
        if getattr(loss, "level", "token") == "pair":
            values = loss((student, soft(teacher), labels), (teacher, soft(student), labels))
            assert values.shape == (2,) and torch.isfinite(values).all(), name
        elif getattr(loss, "level", "token") == "sequence":
            values = loss(student, soft(teacher), labels)
            assert values.shape == (2,) and torch.isfinite(values).all(), name
        else:
            values = loss(student, token_targets(loss, teacher, labels))
            assert values.shape == (2, 3) and torch.isfinite(values).all(), name


def token_targets(loss, teacher: torch.Tensor, labels: torch.Tensor) -> TokenTargets:
    """What a token loss reads: hidden states (`reads="hidden"`: the logits stand in for them),
    else soft targets, or hard ones for the losses that refuse soft targets (ascent variants)."""
    if loss.reads == "hidden":
        return HiddenTargets(mask=labels != -100, hidden=torch.log_softmax(teacher, -1))
    try:
        loss(teacher, soft(teacher))
    except ValueError:
        return TokenTargets(mask=labels != -100, token_ids=labels)
    return soft(teacher)


def test_unknown_loss_suggests_the_closest_name():
    with pytest.raises(KeyError, match="did you mean 'forward_kl'"):
        build_loss("forwrd_kl")


def test_sum_reduction_sums_each_sequence_then_averages_sequences():
    values = torch.tensor([[1.0, 3.0], [5.0, 7.0], [9.0, 9.0]])
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    assert reduce_tokens(values, mask, "sum").item() == pytest.approx((1 + (5 + 7)) / 2)
    assert reduce_tokens(values, mask, "mean").item() == pytest.approx((1 + 5 + 7) / 3)


def test_reduction_is_an_option_of_every_token_loss():
    for name in ("forward_kl", "reverse_kl", "jsd", "cross_entropy"):
        assert build_loss({"name": name, "reduction": "sum"}).reduction == "sum"
    with pytest.raises(ValueError, match="reduction='total'"):
        build_loss({"name": "forward_kl", "reduction": "total"})
