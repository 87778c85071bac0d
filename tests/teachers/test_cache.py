import dataclasses

import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.teachers import build_teacher
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.training.trainer import frozen_model


class CountingTeacher:
    """A teacher that counts its calls (the cache must not call it for a cached batch)."""

    def __init__(self, teacher):
        self.teacher, self.calls = teacher, 0

    def __repr__(self) -> str:
        return repr(self.teacher)

    def build(self, ctx, batch, labels):
        self.calls += 1
        return self.teacher.build(ctx, batch, labels)


def setup(loaded, examples):
    encoder = PromptEncoder(loaded)
    ctx = TeacherContext(frozen=frozen_model(loaded.model), encoder=encoder)
    forget = group_by_role(examples)["forget"]
    return encoder, ctx, forget


def batch_of(encoder, rows):
    return encoder.collate(rows, [encoder.encode(ex) for ex in rows])


def test_a_cached_batch_is_not_recomputed_and_equals_the_teacher(loaded, examples):
    encoder, ctx, forget = setup(loaded, examples)
    teacher = CountingTeacher(build_teacher("vgid"))
    cache = TeacherCache()
    batch = batch_of(encoder, forget[:4])
    first = cache.build(teacher, ctx, batch, batch["labels"][:, -3:], "forget")
    again = cache.build(teacher, ctx, batch, batch["labels"][:, -3:], "forget")
    assert teacher.calls == 1 and (cache.misses, cache.hits) == (1, 1) and len(cache) == 4
    mask = first.mask
    assert torch.equal(again.mask, mask)
    assert torch.equal(again.logprobs[mask], first.logprobs[mask])


def test_rows_from_other_batches_match_recomputed_targets(loaded, examples):
    """Rows cached in two batches, served in a third of other composition and padding."""
    encoder, ctx, forget = setup(loaded, examples)
    teacher = build_teacher("vgid")
    cache = TeacherCache()
    for rows in (forget[:3], forget[3:6]):
        batch = batch_of(encoder, rows)
        labels = batch["labels"][:, -batch["labels"].ne(-100).sum(-1).max() :]
        cache.build(teacher, ctx, batch, labels, "forget")
    mixed = batch_of(encoder, [forget[5], forget[0], forget[4]])
    labels = mixed["labels"][:, -mixed["labels"].ne(-100).sum(-1).max() :]
    served = cache.build(teacher, ctx, mixed, labels, "forget")
    assert cache.hits == 1
    fresh = teacher.build(ctx, mixed, labels)
    torch.testing.assert_close(served.logprobs[fresh.mask], fresh.logprobs[fresh.mask])
    assert torch.isfinite(served.logprobs).all()  # masked positions: uniform, never NaN


def test_other_settings_or_scope_are_other_entries(loaded, examples):
    encoder, ctx, forget = setup(loaded, examples)
    cache = TeacherCache()
    batch = batch_of(encoder, forget[:2])
    labels = batch["labels"][:, -2:]
    vgid = build_teacher("vgid")
    cache.build(vgid, ctx, batch, labels, "forget")
    cache.build(dataclasses.replace(vgid, prompt=""), ctx, batch, labels, "forget")
    cache.build(vgid, ctx, batch, labels, "retain")
    assert (cache.misses, cache.hits, len(cache)) == (3, 0, 6)


def test_hard_targets_are_cached_too(loaded, examples):
    encoder, ctx, forget = setup(loaded, examples)
    teacher = build_teacher("labels")
    cache = TeacherCache()
    batch = batch_of(encoder, forget[:3])
    labels = batch["labels"][:, -4:]
    first = cache.build(teacher, ctx, batch, labels)
    again = cache.build(teacher, ctx, batch, labels)
    assert cache.hits == 1
    assert torch.equal(again.token_ids[again.mask], first.token_ids[first.mask])


def test_top_k_rows_keep_their_top_tokens_exactly_and_stay_distributions():
    torch.manual_seed(0)
    logprobs = torch.log_softmax(3 * torch.randn(5, 50, dtype=torch.float64), -1).float()
    cache = TeacherCache(top_k=8)
    approx = cache._expand(cache._compress(logprobs))
    top = logprobs.topk(8, -1)
    assert torch.equal(approx.gather(-1, top.indices), top.values)
    torch.testing.assert_close(approx.logsumexp(-1), torch.zeros(5), atol=1e-5, rtol=0)
    error = TeacherCache.approximation_error(logprobs, 8)
    assert (error >= -1e-6).all() and error.max() > 0  # an approximation, and never negative
    assert TeacherCache.approximation_error(logprobs, 49).max() < error.min()  # more k, closer
    assert TeacherCache.approximation_error(logprobs, 50).abs().max() < 1e-6  # all kept: exact


def test_a_top_k_cache_serves_close_targets_in_a_fraction_of_the_bytes(loaded, examples):
    encoder, ctx, forget = setup(loaded, examples)
    teacher = build_teacher("vgid")
    full, top = TeacherCache(), TeacherCache(top_k=4)
    batch = batch_of(encoder, forget[:4])
    labels = batch["labels"][:, -batch["labels"].ne(-100).sum(-1).max() :]
    for cache in (full, top):
        cache.build(teacher, ctx, batch, labels, "forget")
    exact = full.build(teacher, ctx, batch, labels, "forget")
    approx = top.build(teacher, ctx, batch, labels, "forget")
    assert top.hits == 1 and top.nbytes() < full.nbytes() / 4
    mask = exact.mask
    values, ids = exact.logprobs[mask].topk(4, -1)
    assert torch.equal(approx.logprobs[mask].gather(-1, ids), values)


def test_top_k_needs_a_cache():
    from mmunlearn.training.config import TrainConfig

    with pytest.raises(ValueError, match="cache_teacher=true"):
        TrainConfig(cache_teacher_top_k=8)
    with pytest.raises(ValueError, match="top_k"):
        TeacherCache(top_k=-1)
