"""Shared-prefix answer logits equal the plain forward's, and so do their gradients."""

import pytest
import torch

from mmunlearn.models import prefix
from mmunlearn.models.forward import answer_logits
from mmunlearn.models.prefix import image_groups, prefix_answer_logits
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora

SHARING = ["llava", "llava_next", "idefics3"]  # families that take our position ids


@pytest.fixture(autouse=True)
def _always_share(monkeypatch):
    """Tiny models' prompts are too short for sharing to pay (`prefix.SAVING`); share anyway."""
    monkeypatch.setattr(prefix, "SAVING", float("inf"))


def same_image_batch(loaded, examples):
    """Two questions about one image, one about another, and a text-only question."""
    people = {}
    for ex in examples:
        if ex.image is not None and ex.role == "forget":
            people.setdefault(ex.image, []).append(ex)
    first, second = list(people.values())[:2]
    text = next(ex for ex in examples if ex.image is None)
    chosen = [first[0], second[0], first[1], text]
    encoder = loaded_encoder(loaded)
    return encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])


def loaded_encoder(loaded):
    from mmunlearn.models.encoding import PromptEncoder

    return PromptEncoder(loaded)


@pytest.mark.parametrize("family", SHARING)
def test_logits_and_gradients_equal_the_plain_forward(family, examples):
    loaded = tiny_family(family, examples)
    batch = same_image_batch(loaded, examples)
    assert [0, 2] in image_groups(batch)
    model = add_lora(loaded.model, TrainConfig(lora=True)).train()
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    results = []
    for forward in (answer_logits, prefix_answer_logits):
        model.zero_grad(set_to_none=True)
        logits, labels = forward(model, batch)
        (logits.float().logsumexp(-1) * (labels != -100)).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((logits.detach(), labels, grads))
    assert len(calls) == 3  # the plain forward, then the prefix pass and the suffix pass
    (plain, plain_labels, plain_grads), (shared, shared_labels, shared_grads) = results
    assert torch.equal(plain_labels, shared_labels)
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in plain_grads.values())
    for name, grad in plain_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5, rtol=1e-4)


def test_a_batch_without_shared_images_takes_the_plain_forward(examples):
    loaded = tiny_family("llava", examples)
    batch = same_image_batch(loaded, examples)
    keep = [0, 1, 3]  # drop the second question about the first image
    encoder = loaded_encoder(loaded)
    chosen = [batch["examples"][i] for i in keep]
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    assert all(len(g) == 1 for g in image_groups(batch))
    loaded.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            prefix_answer_logits(loaded.model, batch)[0],
            answer_logits(loaded.model, batch)[0],
            rtol=0,
            atol=0,
        )


def test_short_shared_prefixes_take_the_plain_forward(examples, monkeypatch):
    monkeypatch.setattr(prefix, "SAVING", 0.01)
    loaded = tiny_family("llava", examples)
    calls = []
    loaded.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    with torch.no_grad():
        prefix_answer_logits(loaded.model, same_image_batch(loaded, examples))
    assert len(calls) == 1


def test_noised_copies_of_one_image_are_different_images(examples):
    loaded = tiny_family("llava", examples)
    batch = same_image_batch(loaded, examples)
    batch["pixel_values"] = batch["pixel_values"].clone()
    batch["pixel_values"][0] += 0.1  # row 0's image
    assert all(len(g) == 1 for g in image_groups(batch))
