"""FLAT's loss per divergence in float64, against the authors' activation/conjugate pairs."""

import math

import pytest
import torch

from mmunlearn.losses.flat import DIVERGENCES, FLAT, mean_token_probability
from mmunlearn.values import TokenTargets

TEMPLATE_LABELS = torch.tensor([[2, 0, -100], [1, 1, 3]])
FORGET_LABELS = torch.tensor([[4, 4, 1], [-100, -100, 0]])


def side(logits, labels):
    return logits, TokenTargets(labels != -100, token_ids=labels), labels


@pytest.fixture()
def pair():
    gen = torch.Generator().manual_seed(7)
    return (torch.randn(2, 3, 5, generator=gen, dtype=torch.float64) for _ in "ab")


def mean_probability64(logits, labels):
    probs = torch.softmax(logits.double(), -1)
    rows = []
    for b in range(2):
        picked = [probs[b, t, y] for t, y in enumerate(labels[b].tolist()) if y != -100]
        rows.append(sum(picked) / len(picked))
    return torch.stack(rows)


def authors(div):
    """The authors' get_contrastive_loss: activation(P_e) − conjugate(P_f), per question."""
    if div == "kl":
        return lambda x: -x, lambda x: -torch.exp(x - 1.0)
    if div == "total_variation":
        return lambda x: -torch.tanh(x) / 2.0, lambda x: -torch.tanh(x) / 2.0
    if div == "jensen_shannon":
        return (
            lambda x: torch.log(1.0 + torch.exp(-x)) - math.log(2.0),
            lambda x: -(x + torch.log(1.0 + torch.exp(-x))) + math.log(2.0),
        )
    return lambda x: -x, lambda x: -(x * x / 4.0 + x)  # pearson


def test_mean_token_probability_by_hand(pair):
    template, _ = pair
    torch.testing.assert_close(
        mean_token_probability(template, TEMPLATE_LABELS).double(),
        mean_probability64(template, TEMPLATE_LABELS),
    )


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_flat_matches_the_authors_variational_form_in_float64(divergence, pair):
    template, forget = pair
    p_e = mean_probability64(template, TEMPLATE_LABELS)
    p_f = mean_probability64(forget, FORGET_LABELS)
    activation, conjugate = authors(divergence)
    expected = activation(p_e) - conjugate(p_f)
    got = FLAT(divergence)(side(template, TEMPLATE_LABELS), side(forget, FORGET_LABELS))
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=1e-5)


def test_flat_raises_the_template_and_lowers_the_forget_answer():
    labels = torch.tensor([[1]])
    template = torch.zeros(1, 1, 5, requires_grad=True)
    forget = torch.zeros(1, 1, 5, requires_grad=True)
    FLAT("kl")(side(template, labels), side(forget, torch.tensor([[3]]))).sum().backward()
    assert template.grad[0, 0, 1] < 0 < forget.grad[0, 0, 3]


def test_flat_refuses_an_unknown_divergence():
    with pytest.raises(ValueError, match="total_variation"):
        FLAT("hellinger")
