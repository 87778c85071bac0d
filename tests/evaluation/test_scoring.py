import math

import pytest
import torch

from mmunlearn.evaluation.scoring import Query, score_answers, token_statistics
from mmunlearn.models.encoding import IGNORE_INDEX


def test_token_statistics_by_hand():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.9, 0.05, 0.05]]]))  # (1, 2, 3)
    labels = torch.tensor([[1, IGNORE_INDEX]])
    token, mean, std = token_statistics(logits, labels)
    assert token[0, 0].item() == pytest.approx(math.log(0.25))
    assert token[0, 1].item() == 0.0  # ignored position
    p = [0.5, 0.25, 0.25]
    mu = sum(q * math.log(q) for q in p)
    sd = math.sqrt(sum(q * math.log(q) ** 2 for q in p) - mu**2)
    assert mean[0, 0].item() == pytest.approx(mu, rel=1e-5)
    assert std[0, 0].item() == pytest.approx(sd, rel=1e-4)


def test_scores_do_not_depend_on_batching(loaded, examples):
    chosen = [ex for ex in examples if ex.role == "forget"][:6]
    queries = [Query(ex, option) for ex in chosen for option in ex.options[:2]]
    batched = score_answers(loaded, queries, batch_size=12, progress=False)
    single = score_answers(loaded, queries, batch_size=1, progress=False)
    for a, b in zip(batched, single, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert len(a.logprobs) == len(a.means) == len(a.stds) >= 2  # answer + EOS
        assert all(lp <= 0 for lp in a.logprobs)


def test_options_sharing_an_image_score_as_without_prefix_sharing(loaded, examples, monkeypatch):
    """The options of one image question share its prefix; sharing it changes no score."""
    from mmunlearn.models import prefix

    monkeypatch.setattr(prefix, "SAVING", float("inf"))  # share even tiny prompts
    calls = []
    loaded.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    chosen = [ex for ex in examples if ex.image is not None and len(ex.options) >= 3][:4]
    queries = [Query(ex, option) for ex in chosen for option in ex.options[:3]]
    shared = score_answers(loaded, queries, batch_size=12, progress=False)
    assert len(calls) == 2  # one batch: a prefix pass and a suffix pass
    plain = score_answers(loaded, queries, batch_size=12, progress=False, share_prefix=False)
    for a, b in zip(shared, plain, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
        assert a.means == pytest.approx(b.means, abs=1e-5)
