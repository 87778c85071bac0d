"""A word-level tokenizer, a tiny LLaVA-style model and tiny text-only causal LMs, from configs.

They are ordinary `transformers` objects (`LlavaForConditionalGeneration` + `LlavaProcessor`), so
after `save_pretrained` they go through exactly the loader a real LLaVA checkpoint does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
# LLaVA-1.5's conversation format, rendered by the processor's own chat template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image> {% else %}{{ item['text'] }}{% endif %}"
    "{% endfor %} "
    "{% else %}ASSISTANT: {{ message['content'][0]['text'] }}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_WORD = re.compile(r"\w+|[^\w\s]")


def build_word_tokenizer(
    texts: Iterable[str],
    special_tokens: tuple[str, ...] = (),
    eos_token: str = "</s>",
    image_token: str | None = "<image>",
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is every word and symbol in `texts`.

    `special_tokens` (a model family's chat and image markers) are whole tokens after the
    defaults; `image_token` is exposed as `tokenizer.image_token` (None: no such attribute, for
    processors that pick their own image token).
    """
    splitter = pre_tokenizers.Whitespace()
    words = set("USER ASSISTANT :".split())
    for text in texts:
        # the backend's own split too, so runs of symbols ("](") are words, not <unk>
        words |= set(_WORD.findall(text)) | {w for w, _ in splitter.pre_tokenize_str(text)}
    words = sorted(words)
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + special_tokens)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token=eos_token,
        unk_token="<unk>",
        extra_special_tokens={"image_token": image_token} if image_token else {},
        padding_side="left",
    )
    if special_tokens:
        tokenizer.add_tokens(list(special_tokens), special_tokens=True)
    return tokenizer


@dataclass(frozen=True)
class TinyLlavaConfig:
    """Sizes of the tiny LLaVA-style model (defaults: ~0.8M parameters, trains in minutes on a CPU)."""

    image_size: int = 64
    patch_size: int = 16
    vision_width: int = 64
    vision_layers: int = 2
    text_width: int = 128
    text_layers: int = 4
    heads: int = 4

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}"
            )
        for name in ("vision_width", "text_width"):
            if getattr(self, name) % self.heads:
                raise ValueError(
                    f"{name}={getattr(self, name)} must be divisible by heads={self.heads}"
                )


def build_tiny_llava(
    tokenizer: PreTrainedTokenizerFast, config: TinyLlavaConfig = TinyLlavaConfig()
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=config.patch_size,
        vision_feature_select_strategy="default",  # drop CLS: (size/patch)^2 image tokens
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=config.vision_width,
        intermediate_size=2 * config.vision_width,
        num_hidden_layers=config.vision_layers,
        num_attention_heads=config.heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
    )
    text = LlamaConfig(
        hidden_size=config.text_width,
        intermediate_size=2 * config.text_width,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        vocab_size=len(tokenizer),
        # room for the image tokens and 128 text tokens (LLaVA-1.5-sized images: 576 + 128)
        max_position_embeddings=max(256, (config.image_size // config.patch_size) ** 2 + 128),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    llava = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=(config.image_size // config.patch_size) ** 2,
    )
    model = LlavaForConditionalGeneration(llava)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


CAUSAL_FAMILIES = ("gpt2", "llama")


@dataclass(frozen=True)
class TinyCausalLMConfig:
    """Sizes of a tiny text-only causal LM (GPT-2- or Llama-style), built from a config."""

    family: str = "gpt2"
    width: int = 128
    layers: int = 4
    heads: int = 4
    max_positions: int = 512

    def __post_init__(self) -> None:
        if self.family not in CAUSAL_FAMILIES:
            raise ValueError(f"family={self.family!r}; expected one of {CAUSAL_FAMILIES}")
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be divisible by heads={self.heads}")


def build_tiny_causal_lm(
    tokenizer: PreTrainedTokenizerFast, config: TinyCausalLMConfig = TinyCausalLMConfig()
) -> PreTrainedModel:
    """A `GPT2LMHeadModel` or `LlamaForCausalLM` sized by `config`, for `tokenizer`'s vocabulary.

    The tokenizer has no chat template, so prompts use the encoder's "Question: ...\\nAnswer:"
    fallback; after `save_pretrained` both load through `AutoModelForCausalLM`/`AutoTokenizer`.
    """
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if config.family == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                n_embd=config.width,
                n_layer=config.layers,
                n_head=config.heads,
                n_positions=config.max_positions,
                **ids,
            )
        )
    else:
        model = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=config.width,
                intermediate_size=2 * config.width,
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                num_key_value_heads=config.heads,
                max_position_embeddings=config.max_positions,
                **ids,
            )
        )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
