"""Tiny text-only causal LMs: built from configs, saved, and loaded back by the one loader."""

import pytest
import torch
from transformers import AutoTokenizer

from mmunlearn.models.encoding import FALLBACK_TEMPLATE, IGNORE_INDEX, PromptEncoder
from mmunlearn.models.forward import answer_logits
from mmunlearn.models.loading import load_model, model_kind
from mmunlearn.models.tiny import TinyCausalLMConfig
from mmunlearn.testing import tiny_causal_lm


@pytest.mark.parametrize(("family", "model_type"), [("gpt2", "gpt2"), ("llama", "llama")])
def test_a_saved_causal_lm_loads_back_as_text_only(examples, tmp_path, family, model_type):
    text = [ex for ex in examples if ex.image is None]
    built = tiny_causal_lm(text, family)
    built.save(tmp_path)
    assert model_kind(tmp_path) == "causal_lm"
    loaded = load_model(tmp_path)
    assert loaded.kind == "causal_lm" and loaded.model.config.model_type == model_type
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.get_vocab() == built.tokenizer.get_vocab()
    encoder = PromptEncoder(loaded)
    prompt = encoder.render_prompt(text[0].question, has_image=False)
    assert prompt == FALLBACK_TEMPLATE.format(question=text[0].question)
    assert tokenizer.unk_token_id not in tokenizer(prompt)["input_ids"]
    for original, reloaded in zip(
        built.model.state_dict().values(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(original, reloaded)


def test_answer_logits_of_a_causal_lm_match_its_full_forward(examples):
    text = [ex for ex in examples if ex.image is None][:3]
    loaded = tiny_causal_lm(text, "llama")
    encoder = PromptEncoder(loaded)
    batch = encoder.collate(text, [encoder.encode(ex) for ex in text])
    logits, labels = answer_logits(loaded.model, batch)  # (B, K, V)
    k = labels.shape[1]
    full = loaded.model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
    ).logits  # (B, T, V)
    assert torch.allclose(logits, full[:, -k - 1 : -1], atol=1e-5)
    assert torch.equal(labels, batch["labels"][:, -k:]) and (labels != IGNORE_INDEX).any()


def test_an_image_row_on_a_text_model_is_a_clear_error(examples):
    loaded = tiny_causal_lm(examples)
    image_row = next(ex for ex in examples if ex.image is not None)
    with pytest.raises(ValueError, match="text-only"):
        PromptEncoder(loaded).encode(image_row)


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="family='bert'"):
        TinyCausalLMConfig(family="bert")
