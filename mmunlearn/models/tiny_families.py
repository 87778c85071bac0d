"""Tiny models of each supported family, built from configs with real processors (no download).

Each builder takes vocabulary texts and returns an untrained model (a few thousand parameters)
with the family's own processor (vision-language) or tokenizer (text-only): the word-level
tokenizer plus the family's special tokens, and a chat template in the family's real format.
After `save_pretrained` they load through `load_model` like a real checkpoint of that family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    GPT2Config,
    Idefics3Config,
    Idefics3ImageProcessor,
    Idefics3Processor,
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextImageProcessor,
    LlavaNextProcessor,
    Olmo2Config,
    OlmoConfig,
    PreTrainedModel,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2Config,
    Qwen2Tokenizer,
    Qwen2VLConfig,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

from mmunlearn.models.tiny import TinyLlavaConfig, build_tiny_llava, build_word_tokenizer
from mmunlearn.registry import Registry

IMAGE_SIZE = 32
TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
HEADS = {"num_attention_heads": 2, "num_key_value_heads": 2}

TinyBuilder = Callable[[Iterable[str]], tuple[PreTrainedModel, Any]]
TINY_FAMILIES: Registry[TinyBuilder] = Registry("tiny model family")


def _user_content(image_markup: str) -> str:
    """Jinja for a user message's content list: images as `image_markup`, then the text."""
    return (
        "{% for item in message['content'] %}{% if item['type'] == 'image' %}"
        + image_markup
        + "{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    )


# ChatML (Qwen2, Qwen2-VL, Qwen2.5-VL); `image_markup` is empty for text-only Qwen2.
def _chatml(image_markup: str = "") -> str:
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['role'] == 'user' %}" + _user_content(image_markup) + "{% else %}"
        "{{ message['content'][0]['text'] }}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
QWEN_VL_TOKENS = (
    *CHATML_TOKENS,
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# LLaVA-NeXT (Mistral-7B variant): "[INST] <image>\nquestion [/INST]"
LLAVA_NEXT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST] "
    + _user_content("<image>\n")
    + " [/INST]{% else %} {{ message['content'][0]['text'] }}</s>{% endif %}{% endfor %}"
)
# Idefics3: "<|begin_of_text|>User:<image>question<end_of_utterance>\nAssistant:"
IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['role'] == 'user' %}" + _user_content("<image>") + "{% else %}"
    " {{ message['content'][0]['text'] }}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
IDEFICS3_TOKENS = (
    "<|begin_of_text|>",
    "<fake_token_around_image>",
    "<global-img>",
    "<end_of_utterance>",
)
# Llama 3 headers
LLAMA3_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}<|start_header_id|>{{ message['role'] }}"
    "<|end_header_id|>\n\n" + _user_content("") + "<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
LLAMA3_TOKENS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# OLMo and OLMo 2 instruct models (Tülu format)
OLMO2_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n" + _user_content("") + "\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
OLMO2_TOKENS = ("<|endoftext|>", "<|user|>", "<|assistant|>")
ROLE_WORDS = ["User Assistant user assistant Question Answer"]


def _text_config(vocab_size: int, tokenizer: Any, **extra: Any) -> dict[str, Any]:
    return {
        **TEXT,
        **HEADS,
        "vocab_size": vocab_size,
        "max_position_embeddings": 512,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        **extra,
    }


def _finish(model: PreTrainedModel, tokenizer: Any) -> PreTrainedModel:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


@TINY_FAMILIES.register("llava")
def build_llava(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    config = TinyLlavaConfig(
        image_size=IMAGE_SIZE,
        vision_width=16,
        vision_layers=1,
        text_width=32,
        text_layers=1,
        heads=2,
    )
    return build_tiny_llava(build_word_tokenizer(texts), config)


@TINY_FAMILIES.register("llava_next")
def build_llava_next(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    tokenizer = build_word_tokenizer([*texts, *ROLE_WORDS], ("[INST]", "[/INST]"))
    pinpoints = [
        [IMAGE_SIZE, IMAGE_SIZE],
        [IMAGE_SIZE, 2 * IMAGE_SIZE],
        [2 * IMAGE_SIZE, IMAGE_SIZE],
    ]
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=16,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_NEXT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=16,
    )
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=LlamaConfig(**_text_config(len(tokenizer), tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    return _finish(AutoModelForImageTextToText.from_config(config), tokenizer), processor


def _qwen_vl(texts: Iterable[str], version: str) -> tuple[PreTrainedModel, Any]:
    tokenizer = build_word_tokenizer(
        [*texts, *ROLE_WORDS, "system"], QWEN_VL_TOKENS, eos_token="<|im_end|>", image_token=None
    )
    # 8-pixel patches merged 2×2: a 32×32 image is a (1, 4, 4) grid → 16 patches, 4 tokens
    sizes = {"patch_size": 8, "temporal_patch_size": 2, "merge_size": 2}
    pixels = {"min_pixels": IMAGE_SIZE * IMAGE_SIZE, "max_pixels": IMAGE_SIZE * IMAGE_SIZE}
    processor_cls = Qwen2VLProcessor if version == "2" else Qwen2_5_VLProcessor
    processor = processor_cls(
        image_processor=Qwen2VLImageProcessor(**sizes, **pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**sizes, **pixels),
        chat_template=_chatml("<|vision_start|><|image_pad|><|vision_end|>"),
    )
    vision_sizes = {"patch_size": 8, "temporal_patch_size": 2, "spatial_merge_size": 2}
    # head_dim 16: the multimodal RoPE sections (temporal, height, width) split its 8 frequencies
    text = _text_config(
        len(tokenizer),
        tokenizer,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
    )
    if version == "2":
        vision = {"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2}
        config_cls = Qwen2VLConfig
    else:
        vision = {
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "out_hidden_size": 32,
            "num_heads": 2,
            "window_size": 16,
            "fullatt_block_indexes": [0],
        }
        config_cls = Qwen2_5_VLConfig
    config = config_cls(
        text_config=text,
        vision_config={**vision, **vision_sizes},
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    return _finish(AutoModelForImageTextToText.from_config(config), tokenizer), processor


@TINY_FAMILIES.register("qwen2_vl")
def build_qwen2_vl(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    return _qwen_vl(texts, "2")


@TINY_FAMILIES.register("qwen2_5_vl")
def build_qwen2_5_vl(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    return _qwen_vl(texts, "2.5")


@TINY_FAMILIES.register("idefics3")
def build_idefics3(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    tokenizer = build_word_tokenizer(
        [*texts, *ROLE_WORDS], IDEFICS3_TOKENS, eos_token="<end_of_utterance>"
    )
    # no image splitting: one 32×32 image of 8-pixel patches, pixel-shuffled ×2 → 4 tokens
    patch, scale = 8, 2
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=(IMAGE_SIZE // patch) ** 2 // scale**2,
        chat_template=IDEFICS3_TEMPLATE,
    )
    config = Idefics3Config(
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": patch,
        },
        text_config=LlamaConfig(**_text_config(len(tokenizer), tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=scale,
    )
    return _finish(AutoModelForImageTextToText.from_config(config), tokenizer), processor


def _causal_lm(texts, config_cls, special=(), eos="</s>", template=None, **extra):  # noqa: ANN001, ANN202
    tokenizer = build_word_tokenizer(
        [*texts, *ROLE_WORDS], special, eos_token=eos, image_token=None
    )
    if template is not None:
        tokenizer.chat_template = template
    config = config_cls(**_text_config(len(tokenizer), tokenizer, **extra))
    return _finish(AutoModelForCausalLM.from_config(config), tokenizer), tokenizer


@TINY_FAMILIES.register("gpt2")
def build_gpt2(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    """GPT-2 has no chat template: prompts use the plain `Question: … Answer:` fallback."""
    tokenizer = build_word_tokenizer([*texts, *ROLE_WORDS], image_token=None)
    config = GPT2Config(
        n_embd=32,
        n_layer=1,
        n_head=2,
        n_positions=512,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _finish(AutoModelForCausalLM.from_config(config), tokenizer), tokenizer


@TINY_FAMILIES.register("llama")
def build_llama(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    return _causal_lm(texts, LlamaConfig, LLAMA3_TOKENS, "<|eot_id|>", LLAMA3_TEMPLATE)


@TINY_FAMILIES.register("olmo")
def build_olmo(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    return _causal_lm(texts, OlmoConfig, OLMO2_TOKENS, "<|endoftext|>", OLMO2_TEMPLATE)


@TINY_FAMILIES.register("olmo2")
def build_olmo2(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    return _causal_lm(texts, Olmo2Config, OLMO2_TOKENS, "<|endoftext|>", OLMO2_TEMPLATE)


@TINY_FAMILIES.register("qwen2")
def build_qwen2(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    """Qwen2's own byte-level BPE tokenizer class with no merges (one token per byte): for
    model_type `qwen2` transformers loads `Qwen2Tokenizer` whatever the saved class says, so the
    word-level tokenizer would not survive a save/load round trip."""
    specials = ["<|endoftext|>", *CHATML_TOKENS]
    vocab = {c: i for i, c in enumerate(specials + sorted(set(bytes_to_unicode().values())))}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_tokens(specials, special_tokens=True)
    tokenizer.chat_template = _chatml()
    config = Qwen2Config(**_text_config(len(tokenizer), tokenizer))
    return _finish(AutoModelForCausalLM.from_config(config), tokenizer), tokenizer


# SmolLM2-135M-Instruct's own chat template, verbatim from its GGUF file: string content
# (`message['content']` concatenated), a default system prompt, ChatML turns.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@TINY_FAMILIES.register("smollm2")
def build_smollm2(texts: Iterable[str]) -> tuple[PreTrainedModel, Any]:
    """A tiny Llama with SmolLM2-135M-Instruct's conventions: its chat template (string
    content), special tokens (<|endoftext|> 0, <|im_start|> 1 = BOS, <|im_end|> 2 = EOS and
    pad) and a byte-level BPE tokenizer (here without merges: one token per byte), so spaces
    and newlines around the answer are tokens, as in the real model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {c: i for i, c in enumerate(specials + sorted(set(bytes_to_unicode().values())))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        padding_side="left",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    config = LlamaConfig(
        **_text_config(len(tokenizer), tokenizer, max_position_embeddings=2048),
        tie_word_embeddings=True,
    )
    return _finish(AutoModelForCausalLM.from_config(config), tokenizer), tokenizer
