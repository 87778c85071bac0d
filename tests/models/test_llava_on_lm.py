"""A LLaVA on a pretrained LM: here the tiny Llama with SmolLM2-135M-Instruct's exact template
and special tokens (family `smollm2`), saved to disk as the real checkpoint is."""

import pytest
import torch

from mmunlearn.models.encoding import PromptEncoder, model_inputs
from mmunlearn.models.llava_on_lm import IMAGE_TOKEN, VisionTowerConfig, build_llava_on_lm
from mmunlearn.models.loading import load_model
from mmunlearn.testing import tiny_family

VISION = VisionTowerConfig(image_size=32, patch_size=16, width=16, layers=1, heads=2)


@pytest.fixture(scope="module")
def lm_dir(examples, tmp_path_factory):
    path = tmp_path_factory.mktemp("smollm2")
    tiny_family("smollm2", examples).save(path)
    return path


@pytest.fixture(scope="module")
def vlm(lm_dir):
    torch.manual_seed(0)
    return build_llava_on_lm(lm_dir, VISION)


def image_row(examples):
    return next(ex for ex in examples if ex.image is not None)


def test_the_prompt_is_the_lms_chatml_turn_with_the_image_before_the_question(
    vlm, lm_dir, examples
):
    lm = load_model(lm_dir)
    row = image_row(examples)
    encoded = PromptEncoder(vlm).encode(row)
    text = vlm.tokenizer.decode(encoded.input_ids)
    expected = lm.tokenizer.apply_chat_template(
        [
            {"role": "user", "content": f"{IMAGE_TOKEN * VISION.image_tokens}\n{row.question}"},
            {"role": "assistant", "content": row.answer},
        ],
        tokenize=False,
    )
    assert expected.startswith(text)  # the LM's template: default system prompt, ChatML turns
    assert text.endswith(f"<|im_start|>assistant\n{row.answer}<|im_end|>")


@pytest.mark.parametrize("size, patch", [(32, 16), (64, 16), (64, 8)])
def test_the_image_expands_to_one_token_per_patch(lm_dir, examples, size, patch):
    vision = VisionTowerConfig(image_size=size, patch_size=patch, width=16, layers=1, heads=2)
    vlm = build_llava_on_lm(lm_dir, vision)
    encoded = PromptEncoder(vlm).encode(image_row(examples))
    image_tokens = sum(t == vlm.model.config.image_token_id for t in encoded.input_ids)
    assert image_tokens == (size // patch) ** 2 == vision.image_tokens
    assert encoded.image_inputs["pixel_values"].shape == (1, 3, size, size)


def test_the_text_model_carries_the_lms_weights(vlm, lm_dir):
    lm = load_model(lm_dir)
    text = vlm.model.model.language_model.state_dict()
    original = lm.model.base_model.state_dict()
    assert text.keys() == original.keys()
    for name, weight in original.items():
        ours = text[name]
        if name == "embed_tokens.weight":  # one row more: the <image> token
            assert ours.shape[0] == weight.shape[0] + 1
            ours = ours[: weight.shape[0]]
        assert torch.equal(ours, weight), name


def test_a_text_question_gets_the_lms_own_prompt_and_logits(vlm, lm_dir, examples):
    lm = load_model(lm_dir)
    row = next(ex for ex in examples if ex.image is None)
    ours, theirs = PromptEncoder(vlm), PromptEncoder(lm)
    assert ours.encode(row).input_ids == theirs.encode(row).input_ids
    with torch.no_grad():
        logits = vlm.model(**model_inputs(ours.collate([row], [ours.encode(row)]))).logits
        expected = lm.model(**model_inputs(theirs.collate([row], [theirs.encode(row)]))).logits
    torch.testing.assert_close(logits[..., : expected.shape[-1]], expected)


def test_forward_and_generate_run_after_a_save_and_load(vlm, examples, tmp_path):
    vlm.save(tmp_path)
    back = load_model(tmp_path)
    assert back.kind == "vision_language"
    assert back.processor.chat_template == vlm.processor.chat_template
    row = image_row(examples)
    encoder = PromptEncoder(back)
    assert encoder.encode(row).input_ids == PromptEncoder(vlm).encode(row).input_ids
    prompt = encoder.render_prompt(row.question, has_image=True)
    inputs = encoder.tokenize_prompts([prompt], [encoder.load_image(row.image)])
    with torch.no_grad():
        out = back.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    embeddings = back.model.get_input_embeddings().weight
    assert back.model.lm_head.weight.data_ptr() == embeddings.data_ptr()  # still tied


def test_an_lm_without_a_chat_template_is_refused(examples, tmp_path):
    tiny_family("gpt2", examples).save(tmp_path)
    with pytest.raises(ValueError, match="no chat template"):
        build_llava_on_lm(tmp_path, VISION)


def test_a_vision_language_model_is_refused_as_the_language_model(examples, tmp_path):
    tiny_family("llava", examples).save(tmp_path)
    with pytest.raises(ValueError, match="expected a text-only causal LM"):
        build_llava_on_lm(tmp_path, VISION)


@pytest.mark.parametrize(
    "sizes, words",
    [
        ({"image_size": 30, "patch_size": 16}, "multiple of patch_size"),
        ({"width": 18, "heads": 4}, "divisible by heads"),
        ({"layers": 0}, "layers=0"),
    ],
)
def test_vision_sizes_are_checked(sizes, words):
    with pytest.raises(ValueError, match=words):
        VisionTowerConfig(**sizes)
