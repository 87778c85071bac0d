"""Several intervention draws through one forward give the targets one forward per draw gives."""

import dataclasses

import pytest
import torch

from mmunlearn.models.encoding import PromptEncoder, answer_length
from mmunlearn.teachers.entity_swap import EntitySwapTeacher
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.teachers.vgid import VgidTeacher
from mmunlearn.teachers.visual_noise import VisualNoise, VisualNoiseTeacher
from mmunlearn.testing import tiny_family
from mmunlearn.training.trainer import frozen_model


@pytest.mark.parametrize("family", ["llava", "llava_next", "qwen2_vl", "idefics3", "gpt2"])
def test_batched_draws_equal_one_forward_per_draw(family, examples):
    loaded = tiny_family(family, examples)
    encoder = PromptEncoder(loaded)
    forget = [ex for ex in examples if ex.role == "forget"]
    if loaded.kind == "vision_language":
        chosen = [ex for ex in forget if ex.image is not None][:2] + [
            ex for ex in forget if ex.image is None
        ][:1]
        teachers = [
            VisualNoiseTeacher(VisualNoise(kind="gaussian", std=0.5), draws=3),
            VgidTeacher(draws=3, swap_names=True),
        ]
    else:
        chosen = [ex for ex in forget if ex.image is None][:3]
        teachers = [EntitySwapTeacher(draws=3)]
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    labels = batch["labels"][:, -answer_length(batch["labels"]) :]
    ctx = TeacherContext(
        frozen=frozen_model(loaded.model),
        encoder=encoder,
        swap_names=("Zorin Vale", "Mika Tess"),
        batch_draws=True,
    )
    calls = []
    loaded.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    for teacher in teachers:
        calls.clear()
        merged = teacher.build(ctx, batch, labels).logprobs
        assert len(calls) == 1
        looped = teacher.build(dataclasses.replace(ctx, batch_draws=False), batch, labels).logprobs
        assert len(calls) == 1 + teacher.draws
        torch.testing.assert_close(merged, looped, atol=1e-5, rtol=1e-5)
