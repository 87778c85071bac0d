"""The contract every supported model family meets, on a tiny model loaded back from disk."""

import re
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import MambaConfig

from mmunlearn.data.splits import group_by_role
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder, model_inputs
from mmunlearn.models.families import FAMILIES, concat_padded, pixel_bounds
from mmunlearn.models.forward import answer_logits
from mmunlearn.models.loading import load_model
from mmunlearn.models.lora import LORA_TARGETS
from mmunlearn.models.tiny_families import TINY_FAMILIES
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.teachers.visual_noise import VisualNoise, noised_batch
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train


@pytest.fixture(scope="module", params=TINY_FAMILIES.in_order())
def saved(request, examples, tmp_path_factory):
    """A tiny model of one family written by save_pretrained (load it with `load_model`)."""
    path = tmp_path_factory.mktemp(request.param)
    tiny_family(request.param, examples).save(path)
    return request.param, path


def usable(loaded, examples):
    """The examples this model can take: all of them, or text-only ones for a text model."""
    if loaded.kind == "vision_language":
        return examples
    return [ex for ex in examples if ex.image is None]


def mixed(loaded, examples, n=4):
    """`n` examples of different prompt lengths: images and text-only when the model sees images."""
    with_image = [ex for ex in examples if ex.image is not None]
    text_only = [ex for ex in examples if ex.image is None]
    if loaded.kind != "vision_language":
        return text_only[:n]
    return with_image[: n // 2] + text_only[: n - n // 2]


def test_the_loaded_model_is_its_family(saved):
    name, path = saved
    loaded = load_model(path)
    if name in FAMILIES:  # named after its model type; else a checkpoint's copy (smollm2: Llama)
        assert loaded.model.config.model_type == name
    assert loaded.family is FAMILIES[loaded.model.config.model_type]


def test_answer_logits_equal_the_full_forward(saved, examples):
    loaded = load_model(saved[1])
    encoder = PromptEncoder(loaded)
    chosen = mixed(loaded, examples)
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    loaded.model.eval()
    with torch.no_grad():
        logits, labels = answer_logits(loaded.model, batch)
        full = loaded.model(**model_inputs(batch)).logits  # (B, T, V): only in this test
    k = labels.shape[1]
    assert logits.shape == (len(chosen), k, full.shape[-1])
    torch.testing.assert_close(logits, full[:, -k - 1 : -1], atol=1e-5, rtol=1e-5)


def test_labels_are_the_answer_tokens_and_eos(saved, examples):
    loaded = load_model(saved[1])
    encoder = PromptEncoder(loaded)
    tokenizer = loaded.tokenizer
    image_token = getattr(loaded.model.config, "image_token_id", None)
    for ex in usable(loaded, examples)[:12]:
        enc = encoder.encode(ex)
        answer_ids = [t for t in enc.labels if t != IGNORE_INDEX]
        first = len(enc.labels) - len(answer_ids)
        assert all(t != IGNORE_INDEX for t in enc.labels[first:])  # a suffix, not scattered
        assert answer_ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(answer_ids[:-1]).strip() == ex.answer, ex.id
        if image_token is not None:
            assert image_token not in answer_ids
            assert (image_token in enc.input_ids) == (ex.image is not None)


def test_one_lora_vgid_step_changes_only_the_adapted_layers(saved, examples, tmp_path):
    loaded = load_model(saved[1])
    by_role = group_by_role(usable(loaded, examples))
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = TrainConfig(steps=1, lr=1e-2, batch_size=2, lora=True, logging_steps=1)
    result = train(loaded, build_method("vgid"), by_role, config, tmp_path, progress=False)
    after = dict(result.model.named_parameters())  # adapters merged back into the weights
    assert set(after) == set(before)
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    adapted = {
        n
        for n in before
        if n.endswith(".weight")
        and re.fullmatch(LORA_TARGETS["language_model"], n[: -len(".weight")])
    }
    assert changed and changed <= adapted, changed - adapted
    assert len(changed) == len(adapted), adapted - changed  # every adapted layer moved


def test_batched_generation_equals_one_at_a_time(saved, examples):
    loaded = load_model(saved[1])
    chosen = mixed(loaded, examples)
    batched = generate_answers(
        loaded, chosen, batch_size=len(chosen), max_new_tokens=3, progress=False
    )
    single = [
        generate_answers(loaded, [ex], batch_size=1, max_new_tokens=3, progress=False)[0]
        for ex in chosen
    ]
    assert batched == single


def test_replace_noise_fills_each_image_with_the_valid_range(saved, examples):
    loaded = load_model(saved[1])
    if loaded.kind != "vision_language":
        pytest.skip("text-only family: no pixels")
    encoder = PromptEncoder(loaded)
    low, high = pixel_bounds(loaded.processor, loaded.family)
    # the layout of the bounds is the processor's: black and white images map onto them exactly
    for colour, bound in ((0, low), (255, high)):
        image = Image.new("RGB", (32, 32), (colour, colour, colour))
        prompt = encoder.render_prompt("x", has_image=True)
        pixels = loaded.processor(text=prompt, images=[image], return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(pixels, bound.expand_as(pixels), atol=1e-4, rtol=0)
    chosen = mixed(loaded, examples)
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    ctx = TeacherContext(frozen=None, encoder=encoder)
    noised = noised_batch(ctx, batch, VisualNoise("replace"), draw=0)["pixel_values"]
    assert noised.shape == batch["pixel_values"].shape
    assert not torch.isclose(noised, batch["pixel_values"]).any()
    assert ((noised >= low - 1e-6) & (noised <= high + 1e-6)).all()
    # seeded per example: the same image noised in another batch is the same noise
    alone = encoder.collate(chosen[:1], [encoder.encode(chosen[0])])
    first = noised_batch(ctx, alone, VisualNoise("replace"), draw=0)["pixel_values"]
    torch.testing.assert_close(noised[: first.shape[0]], first)


def test_an_unsupported_family_fails_at_load_naming_the_supported_ones(tmp_path):
    MambaConfig(hidden_size=16, num_hidden_layers=1, vocab_size=10).save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"model_type='mamba' is not a supported.*llava_next.*qwen2_vl"
    ):
        load_model(tmp_path)


def test_images_of_different_sizes_batch_with_zero_padding_that_noise_leaves_alone():
    # LLaVA-NeXT-like: an image of 2 tiles and one of 3 tiles (anyres), (1, P, C, H, W) each
    small, large = torch.randn(1, 2, 3, 4, 4), torch.randn(1, 3, 3, 4, 4)
    pixels = concat_padded([small, large])  # (2, 3, 3, 4, 4)
    assert pixels.shape == (2, 3, 3, 4, 4)
    assert torch.equal(pixels[0, :2], small[0]) and torch.equal(pixels[1], large[0])
    assert not pixels[0, 2].any()
    batch = {
        "pixel_values": pixels,
        "image_rows": torch.tensor([0, 2]),
        "image_shapes": [small.shape, large.shape],
        "examples": [SimpleNamespace(id=i) for i in ("a", "text-only", "b")],
    }
    loaded = SimpleNamespace(processor=None, family=FAMILIES["llava_next"])  # bounds: ±1
    ctx = SimpleNamespace(encoder=SimpleNamespace(loaded=loaded))
    noised = noised_batch(ctx, batch, VisualNoise("replace"), draw=0)["pixel_values"]
    assert not noised[0, 2].any()  # the padding tile stays zero
    assert not torch.isclose(noised[0, :2], small[0]).any()
    assert not torch.isclose(noised[1], large[0]).any()
    assert noised.abs().max() <= 1
