"""A LLaVA-style vision-language model assembled on a pretrained language model.

LLaVA's recipe: a vision tower, a small MLP projector into the LM's embedding space, and the
LM itself, the image standing in the prompt as a run of `<image>` tokens. Here the vision tower
is a small CLIP-style encoder trained from scratch (no vision weights can be downloaded), the LM
is any pretrained causal LM with a chat template (SmolLM2-135M-Instruct on this machine), and the
result is an ordinary `LlavaForConditionalGeneration` + `LlavaProcessor`: after
`save_pretrained` it loads through `load_model` like any LLaVA checkpoint.

The processor's chat template is the LM's own: messages in typed-parts form are first turned
into the string content the LM's template reads, an image part becoming `<image>\\n` before the
text (LLaVA-1.5's placement), so the model is prompted in exactly the turns the LM was
instruction-tuned on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel, load_model

IMAGE_TOKEN = "<image>"
# Jinja run before the LM's template: typed-parts content → the string its template reads.
# A top-level `set` shadows the caller's `messages` for the rest of the template.
PARTS_TO_STRING = (
    "{% set ns = namespace(messages=[], text='') %}"
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set ns.text = message['content'] %}"
    "{% else %}{% set ns.text = '' %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{% set ns.text = ns.text + '" + IMAGE_TOKEN + "\\n' %}"
    "{% else %}{% set ns.text = ns.text + part['text'] %}{% endif %}{% endfor %}{% endif %}"
    "{% set ns.messages = ns.messages + [{'role': message['role'], 'content': ns.text}] %}"
    "{% endfor %}{% set messages = ns.messages %}"
)


@dataclass(frozen=True)
class VisionTowerConfig:
    """Sizes of the CLIP-style vision tower trained from scratch. The image becomes
    (image_size / patch_size)² tokens in the LM's prompt (the CLS token is dropped, as LLaVA's
    `default` feature strategy does)."""

    image_size: int = 64
    patch_size: int = 16
    width: int = 128
    layers: int = 2
    heads: int = 4

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.image_size % self.patch_size:
            raise ValueError(
                f"vision image_size={self.image_size} must be a positive multiple of "
                f"patch_size={self.patch_size}"
            )
        if self.layers < 1:
            raise ValueError(f"vision layers={self.layers} must be >= 1")
        if self.heads < 1 or self.width % self.heads:
            raise ValueError(
                f"vision width={self.width} must be divisible by heads={self.heads} (>= 1)"
            )

    @property
    def image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def lm_chat_template(lm: LoadedModel) -> str:
    """The LM's own chat template, preceded by the parts → string conversion when the template
    reads string content (most text LMs); a template that already reads parts is kept as is."""
    template = getattr(lm.tokenizer, "chat_template", None)
    if not template:
        raise ValueError(
            "the language model's tokenizer has no chat template; a LLaVA on it needs one to "
            "place the image and the question (use an instruction-tuned LM)"
        )
    if PromptEncoder(lm).content_as_parts:
        return template
    return PARTS_TO_STRING + template


def build_llava_on_lm(
    lm_source: str | Path | LoadedModel, vision: VisionTowerConfig = VisionTowerConfig()
) -> LoadedModel:
    """A `LlavaForConditionalGeneration` whose text model is the pretrained LM `lm_source`
    (a folder, a .gguf file, a `get-model` name, or a loaded causal LM) with its weights, an
    `<image>` token added to its tokenizer and embeddings, an untrained vision tower sized by
    `vision` and an untrained projector; the processor uses the LM's chat template. A loaded LM
    passed in gains the `<image>` embedding row in place; its tokenizer is copied."""
    lm = lm_source if isinstance(lm_source, LoadedModel) else load_model(lm_source)
    if lm.kind != "causal_lm":
        raise ValueError(
            f"--language-model {lm_source!r} is a {lm.kind} model; expected a text-only causal LM"
        )
    template = lm_chat_template(lm)
    tokenizer = copy.deepcopy(lm.tokenizer)
    if IMAGE_TOKEN in tokenizer.get_vocab():
        raise ValueError(
            f"the language model's tokenizer already has a {IMAGE_TOKEN!r} token; "
            "it looks like a vision-language model's, not a text LM's"
        )
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    text = lm.model
    text.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    text_config = copy.deepcopy(text.config)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=vision.width,
            intermediate_size=4 * vision.width,
            num_hidden_layers=vision.layers,
            num_attention_heads=vision.heads,
            image_size=vision.image_size,
            patch_size=vision.patch_size,
        ),
        text_config=text_config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=vision.image_tokens,
        tie_word_embeddings=text_config.tie_word_embeddings,
    )
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(text.base_model.state_dict())
    model.lm_head.load_state_dict(text.get_output_embeddings().state_dict())
    model.generation_config = copy.deepcopy(text.generation_config)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": vision.image_size},
            crop_size={"height": vision.image_size, "width": vision.image_size},
        ),
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy="default",  # drop CLS: (size/patch)² image tokens
        num_additional_image_tokens=1,
        chat_template=template,
    )
    return LoadedModel(model, processor, "vision_language")
