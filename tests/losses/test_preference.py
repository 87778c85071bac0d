import math

import pytest
import torch

from mmunlearn.losses.preference import DPO, NPO, SimNPO, sequence_logprob
from mmunlearn.teachers.targets import TokenTargets

LABELS = torch.tensor([[1, 3, 0], [4, -100, -100]])


@pytest.fixture()
def logits():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 5, generator=gen, dtype=torch.float64), torch.randn(
        2, 3, 5, generator=gen, dtype=torch.float64
    )


def reference(logits: torch.Tensor) -> TokenTargets:
    return TokenTargets(mask=LABELS != -100, logprobs=torch.log_softmax(logits, -1))


def seq_logprob64(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.double(), -1)
    return torch.stack(
        [
            logp[0, 0, 1] + logp[0, 1, 3] + logp[0, 2, 0],
            logp[1, 0, 4],
        ]
    )


def test_sequence_logprob_sums_the_answer_tokens_by_hand(logits):
    student, _ = logits
    torch.testing.assert_close(
        sequence_logprob(torch.log_softmax(student, -1), LABELS), seq_logprob64(student)
    )


def test_npo_matches_the_float64_formula(logits):
    student, ref = logits
    beta = 0.1
    delta = seq_logprob64(student) - seq_logprob64(ref)
    expected = -(2 / beta) * torch.log(torch.sigmoid(-beta * delta))
    torch.testing.assert_close(
        NPO(beta)(student, reference(ref), LABELS).double(), expected, atol=1e-5, rtol=1e-5
    )


def test_npo_at_small_beta_is_gradient_ascent(logits):
    student, ref = logits
    beta = 1e-4
    student = student.float().requires_grad_()
    npo = NPO(beta)(student, reference(ref.float()), LABELS).sum()
    (npo_grad,) = torch.autograd.grad(npo, student)
    ga = sequence_logprob(torch.log_softmax(student, -1), LABELS).sum()  # = −(summed NLL)
    (ga_grad,) = torch.autograd.grad(ga, student)
    torch.testing.assert_close(npo_grad, ga_grad, atol=1e-4, rtol=1e-3)
    value = NPO(beta)(student, reference(ref.float()), LABELS).detach().double()
    delta = seq_logprob64(student.detach()) - seq_logprob64(ref)
    torch.testing.assert_close(value - 2 * math.log(2) / beta, delta, atol=1e-2, rtol=0)


def test_simnpo_matches_the_float64_formula(logits):
    student, _ = logits
    beta, gamma = 2.5, 0.3
    lengths = torch.tensor([3.0, 1.0], dtype=torch.float64)
    expected = -(2 / beta) * torch.log(
        torch.sigmoid(-(beta / lengths) * seq_logprob64(student) - gamma)
    )
    got = SimNPO(beta, gamma)(student, reference(student), LABELS).double()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_npo_needs_a_reference_model():
    hard = TokenTargets(mask=LABELS != -100, token_ids=LABELS)
    with pytest.raises(ValueError, match="base"):
        NPO()(torch.zeros(2, 3, 5), hard, LABELS)


def test_dpo_matches_the_float64_formula_by_hand(logits):
    student, ref = logits
    gen = torch.Generator().manual_seed(2)
    student_l, ref_l = (torch.randn(2, 3, 5, generator=gen, dtype=torch.float64) for _ in "ab")
    labels_l = torch.tensor([[2, 2, -100], [0, 1, 4]])
    beta = 0.1

    def logp(x, labels):  # Σ_t log softmax(x)[t, y_t] over valid tokens, by hand
        logp = torch.log_softmax(x.double(), -1)
        return torch.stack(
            [
                sum(logp[row, t, y] for t, y in enumerate(labels[row].tolist()) if y != -100)
                for row in range(2)
            ]
        )

    chosen = logp(student, LABELS) - logp(ref, LABELS)
    rejected = logp(student_l, labels_l) - logp(ref_l, labels_l)
    paper = -torch.log(torch.sigmoid(beta * (chosen - rejected)))
    side_l = (student_l, TokenTargets(labels_l != -100, torch.log_softmax(ref_l, -1)), labels_l)
    got = DPO(beta)((student, reference(ref), LABELS), side_l).double()
    torch.testing.assert_close(got, (2 / beta) * paper, atol=1e-5, rtol=1e-5)
    got = DPO(beta, scale="1")((student, reference(ref), LABELS), side_l).double()
    torch.testing.assert_close(got, paper, atol=1e-5, rtol=1e-5)


def test_dpo_prefers_raising_the_chosen_answer():
    """The gradient raises log π(y_w) and lowers log π(y_l)."""
    labels = torch.tensor([[1]])
    ref = TokenTargets(labels != -100, torch.log_softmax(torch.zeros(1, 1, 5), -1))
    chosen = torch.zeros(1, 1, 5, requires_grad=True)
    rejected = torch.zeros(1, 1, 5, requires_grad=True)
    loss = DPO()((chosen, ref, labels), (rejected, ref, torch.tensor([[3]]))).sum()
    loss.backward()
    assert chosen.grad[0, 0, 1] < 0 < rejected.grad[0, 0, 3]


def test_npo_scale_option_drops_the_two_over_beta(logits):
    student, ref = logits
    two_over_beta = NPO(0.5)(student, reference(ref), LABELS)
    torch.testing.assert_close(
        NPO(0.5, scale="1")(student, reference(ref), LABELS) * 4, two_over_beta
    )
    with pytest.raises(ValueError, match="scale"):
        SimNPO(scale="beta")
