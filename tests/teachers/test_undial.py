import math

import torch

from mmunlearn.teachers.undial import undial_targets


def test_undial_target_on_a_five_token_vocabulary_by_hand():
    logits = torch.tensor([[[2.0, 1.0, 0.0, -1.0, 0.5]]])  # (1, 1, 5); gold token 0
    labels = torch.tensor([[0]])
    beta = 3.0
    got = undial_targets(torch.log_softmax(logits, -1), labels, beta).exp()[0, 0]
    adjusted = [2.0 - 3.0, 1.0, 0.0, -1.0, 0.5]
    total = sum(math.exp(z) for z in adjusted)
    expected = torch.tensor([math.exp(z) / total for z in adjusted])
    torch.testing.assert_close(got, expected)
    assert got.argmax() == 1  # the gold token is no longer the most likely


def test_undial_with_zero_beta_is_the_base():
    logprobs = torch.log_softmax(torch.randn(2, 3, 5), -1)
    labels = torch.tensor([[0, 1, 2], [3, 4, -100]])
    torch.testing.assert_close(undial_targets(logprobs, labels, 0.0), logprobs)
