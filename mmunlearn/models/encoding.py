"""Examples → model inputs: chat-template prompts, answer-only labels, left-padded batches.

Labels are the answer tokens only, found by tokenising the prompt and prompt+answer and keeping
what follows their common prefix (robust to tokenizer boundary quirks). Batches are LEFT-padded, so
every row's answer ends at the last position: the student's answer logits are the last K+1
positions of the sequence (`logits_to_keep`), never a full (B, T, V) tensor. What differs between
model families (image tensors, position ids) comes from the family adapter (`families.py`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from mmunlearn.data.example import Example
from mmunlearn.data.images import open_image
from mmunlearn.models.families import Family, concat_padded
from mmunlearn.models.loading import LoadedModel

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
FALLBACK_TEMPLATE = "Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Encoded:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX on prompt tokens
    # The processor's tensors for this example's image, keyed as the model takes them (the
    # family's `image_keys`), each with its leading dim (e.g. pixel_values (1, C, H, W) for LLaVA);
    # pixels are in the processor's normalised space. None without an image.
    image_inputs: dict[str, torch.Tensor] | None = None


class PromptEncoder:
    """Renders examples with the model's own chat template; caches each distinct rendering."""

    def __init__(self, loaded: LoadedModel, max_length: int | None = None) -> None:
        """`max_length`: the longest encoded example allowed; None takes the text model's
        `max_position_embeddings` (LLaVA-1.5's prompts alone hold 576 image tokens)."""
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.max_length = max_length or context_length(loaded.model.config)
        self._cache: dict[tuple[str, str, str, str | None, str], Encoded] = {}
        self._pixels: dict[str, torch.Tensor] = {}
        self._prompts: dict[tuple[str, str | None], tuple[list[int], Any]] = {}
        self._warned = False

    @property
    def is_vision_language(self) -> bool:
        return self.loaded.kind == "vision_language"

    @functools.cached_property
    def template_owner(self) -> Any:
        """Whatever carries the chat template (a processor or a tokenizer), or None."""
        owner = self.loaded.processor
        return owner if getattr(owner, "chat_template", None) else None

    @functools.cached_property
    def content_as_parts(self) -> bool:
        """Whether the template reads a message's content as typed parts
        (`[{"type": "text", "text": ...}]`, processor templates) rather than a string (the
        templates of most text models, which concatenate `message['content']`). Decided from
        the template itself: a string-content template renders a string probe verbatim."""
        if self.is_vision_language:
            return True
        probe = "mmunlearn-template-probe"
        try:
            text = self.template_owner.apply_chat_template(
                [{"role": "user", "content": probe}], tokenize=False
            )
        except Exception:  # a parts-only template may fail on a string in many ways
            return True
        return probe not in text

    def _content(self, text: str, has_image: bool = False) -> Any:
        if not self.content_as_parts:
            return text
        return ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]

    def messages(
        self, question: str, has_image: bool, system: str = "", answer: str | None = None
    ) -> list[dict[str, Any]]:
        """One turn in the template's own message form: [system], user, [assistant]."""
        turns = [{"role": "system", "content": self._content(system)}] if system else []
        turns.append({"role": "user", "content": self._content(question, has_image)})
        if answer is not None:
            turns.append({"role": "assistant", "content": self._content(answer)})
        return turns

    def render_prompt(self, question: str, has_image: bool, system: str = "") -> str:
        """The prompt text up to the assistant's answer. Without a chat template (a base LM),
        `Question: … Answer:` with any system text on a line before it."""
        if self.template_owner is not None:
            return self.template_owner.apply_chat_template(
                self.messages(question, has_image, system),
                add_generation_prompt=True,
                tokenize=False,
            )
        if has_image:
            raise ValueError("an image question needs a processor with a chat template")
        prompt = FALLBACK_TEMPLATE.format(question=question)
        return f"{system}\n{prompt}" if system else prompt

    def render_answered(self, question: str, has_image: bool, answer: str, system: str = "") -> str:
        """The conversation with `answer` as the assistant's turn, as the template renders it
        (without a template: the prompt, a space and the answer)."""
        prompt = self.render_prompt(question, has_image, system)
        if self.template_owner is None:
            return f"{prompt} {answer}"
        answered = self.template_owner.apply_chat_template(
            self.messages(question, has_image, system, answer), tokenize=False
        )
        if not answered.startswith(prompt):
            # e.g. a template that renders past turns differently from the open one
            if not self._warned:
                log.warning(
                    "the chat template's answered turn does not extend its prompt; answers are "
                    "appended to the prompt as text instead"
                )
                self._warned = True
            return f"{prompt}{answer}"
        return answered

    @functools.cached_property
    def stop_ids(self) -> tuple[int, ...]:
        """Tokens that end an assistant turn: the tokenizer's EOS and the model's generation
        EOS ids (e.g. Llama 3's <|eot_id|> beside <|end_of_text|>)."""
        ids = [self.tokenizer.eos_token_id]
        configured = getattr(self.loaded.model.generation_config, "eos_token_id", None)
        ids += configured if isinstance(configured, list) else [configured]
        return tuple(dict.fromkeys(i for i in ids if i is not None))

    def prompt_ids(
        self, text: str, image: Image.Image | None
    ) -> tuple[list[int], dict[str, torch.Tensor] | None]:
        if self.is_vision_language:
            out = self.loaded.processor(
                text=text, images=[image] if image is not None else None, return_tensors="pt"
            )
            images = (
                {k: out[k] for k in self.loaded.family.image_keys} if image is not None else None
            )
            return out["input_ids"][0].tolist(), images
        return self.tokenizer(text, add_special_tokens=self.adds_special_tokens)["input_ids"], None

    @property
    def adds_special_tokens(self) -> bool:
        """A chat template writes its own BOS; only plain prompts get the tokenizer's
        (as `apply_chat_template(tokenize=True)` does)."""
        return self.template_owner is None

    def tokenize_prompts(self, prompts: list[str], images: list[Image.Image]) -> dict[str, Any]:
        """A left-padded batch of rendered prompts (for generation)."""
        if self.is_vision_language:
            return self.loaded.processor(
                text=prompts, images=images or None, padding=True, return_tensors="pt"
            )
        return self.tokenizer(
            prompts,
            padding=True,
            return_tensors="pt",
            add_special_tokens=self.adds_special_tokens,
        )

    def encode(
        self, example: Example, question: str | None = None, prefix: str = "", system: str = ""
    ) -> Encoded:
        """Encode `example`, optionally with another question text, an in-context prefix
        (glued before the question) or a system message."""
        question = example.question if question is None else question
        if prefix:
            question = f"{prefix} {question}"
        key = (example.id, question, example.answer, example.image, system)
        if key not in self._cache:
            self._cache[key] = self._encode(example, question, system)
        return self._cache[key]

    def _encode(self, example: Example, question: str, system: str = "") -> Encoded:
        if example.image is not None and not self.is_vision_language:
            raise ValueError(
                f"example {example.id!r} has an image ({example.image}) but the model is text-only"
            )
        image = self.load_image(example.image) if example.image else None
        prompt = self.render_prompt(question, image is not None, system)
        # Scoring several answers to one question (multiple choice) encodes its prompt once.
        if (prompt, example.image) not in self._prompts:
            self._prompts[(prompt, example.image)] = self.prompt_ids(prompt, image)
        prompt_ids, image_inputs = self._prompts[(prompt, example.image)]
        answered = self.render_answered(question, image is not None, example.answer, system)
        full_ids, _ = self.prompt_ids(answered, image)
        common = 0
        while (
            common < min(len(prompt_ids), len(full_ids)) and prompt_ids[common] == full_ids[common]
        ):
            common += 1
        # The answer ends at the template's end-of-turn token; what a template writes after it
        # (ChatML's newline) is not the answer. Without one, the EOS is appended.
        ends = [i for i in range(common, len(full_ids)) if full_ids[i] in self.stop_ids]
        full_ids = full_ids[: ends[0] + 1] if ends else full_ids + [self.tokenizer.eos_token_id]
        if common >= len(full_ids) - 1:
            raise ValueError(
                f"example {example.id!r}: answer {example.answer!r} encodes to no tokens"
            )
        if len(full_ids) > self.max_length:
            raise ValueError(
                f"example {example.id!r}: {len(full_ids)} tokens exceed max_length={self.max_length}"
            )
        labels = [IGNORE_INDEX] * common + full_ids[common:]
        return Encoded(tuple(full_ids), tuple(labels), image_inputs)

    def load_image(self, path: str) -> Image.Image:
        """The RGB image, decoded once per process (`images.open_image`: allowed formats and
        the pixel cap apply); the processor copies it, never changes it."""
        return open_image(path)

    def collate(self, examples: list[Example], encoded: list[Encoded]) -> dict[str, Any]:
        image_token_id = getattr(self.loaded.model.config, "image_token_id", None)
        return collate_left(
            encoded, self.tokenizer.pad_token_id, self.loaded.family, image_token_id, examples
        )


def context_length(config: Any, default: int = 2048) -> int:
    """The number of positions the text model takes (GPT-2 calls it `n_positions`)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", default)


def collate_left(
    encoded: list[Encoded],
    pad_id: int,
    family: Family,
    image_token_id: int | None = None,
    examples: list[Example] | None = None,
) -> dict[str, Any]:
    """Left-pad a list of encodings into a batch; answers end at the last position of every row.

    Image tensors of the rows that have an image are concatenated along dim 0 (zero-padded, see
    `families.concat_padded`); `image_rows` names those rows and `image_shapes` each one's own
    extent, so an intervention can touch exactly one example's pixels.
    """
    length = max(len(e.input_ids) for e in encoded)
    rows = len(encoded)
    input_ids = torch.full((rows, length), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((rows, length), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((rows, length), dtype=torch.long)
    for row, enc in enumerate(encoded):
        n = len(enc.input_ids)
        input_ids[row, length - n :] = torch.tensor(enc.input_ids)
        labels[row, length - n :] = torch.tensor(enc.labels)
        attention_mask[row, length - n :] = 1
    batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if family.position_ids:
        batch["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    if family.token_types:
        batch[family.token_types] = (input_ids == image_token_id).long()  # (B, T): 1 = image
    batch["labels"] = labels
    image_rows = [row for row, enc in enumerate(encoded) if enc.image_inputs is not None]
    if image_rows:
        for key in family.image_keys:
            batch[key] = concat_padded([encoded[row].image_inputs[key] for row in image_rows])
        batch["image_rows"] = torch.tensor(image_rows, dtype=torch.long)
        batch["image_shapes"] = [
            encoded[row].image_inputs["pixel_values"].shape for row in image_rows
        ]
    if examples is not None:
        batch["examples"] = list(examples)
    return batch


def merge_batches(batches: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Collated batches → one batch holding all their rows, in order (left-padded again to the
    longest; image tensors concatenated and zero-padded as `collate_left` does)."""
    length = max(b["input_ids"].shape[1] for b in batches)
    fills = {"input_ids": pad_id, "labels": IGNORE_INDEX}
    merged: dict[str, Any] = {}
    for key, value in batches[0].items():
        if isinstance(value, torch.Tensor) and value.dim() == 2 and key in _PER_TOKEN:
            merged[key] = torch.cat(
                [
                    torch.nn.functional.pad(
                        b[key], (length - b[key].shape[1], 0), value=fills.get(key, 0)
                    )
                    for b in batches
                ]
            )
    if "position_ids" in merged:
        merged["position_ids"] = (merged["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with_images = [b for b in batches if "image_rows" in b]
    if with_images:
        for key in image_keys(with_images[0]):
            merged[key] = concat_padded([b[key] for b in with_images])
        offsets, rows = 0, []
        for b in batches:
            if "image_rows" in b:
                rows.append(b["image_rows"] + offsets)
            offsets += len(b["input_ids"])
        merged["image_rows"] = torch.cat(rows)
        merged["image_shapes"] = [shape for b in with_images for shape in b["image_shapes"]]
    if "examples" in batches[0]:
        merged["examples"] = [ex for b in batches for ex in b["examples"]]
    return merged


def answer_length(labels: torch.Tensor) -> int:
    """K: the longest answer in the batch (labels are a suffix of every left-padded row)."""
    return int((labels != IGNORE_INDEX).sum(-1).max())


# Every tensor a model of some family takes; a batch holds only its own family's (see collate).
MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "position_ids",
    "mm_token_type_ids",
    "pixel_values",
    "image_sizes",
    "image_grid_thw",
    "pixel_attention_mask",
)


# (B, T) tensors, left-padded with the rows
_PER_TOKEN = ("input_ids", "attention_mask", "position_ids", "mm_token_type_ids", "labels")


def image_keys(batch: dict[str, Any]) -> list[str]:
    """The batch's image tensors (one entry per image along dim 0, see `collate_left`)."""
    return [k for k in MODEL_KEYS if k in batch and k not in _PER_TOKEN]


def model_inputs(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in MODEL_KEYS if k in batch}


def with_all_positions(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch relabelled so every real token after a row's first one is a target (prompt,
    image and answer tokens; padding stays IGNORE_INDEX): the KL-over-all-positions convention
    of the VGID authors' code. Logits then cover the whole shared sequence."""
    real = batch["attention_mask"].bool()  # (B, T)
    first = torch.zeros_like(real)
    first[:, 1:] = real[:, :-1]  # True where the previous token is real: something predicts it
    labels = batch["input_ids"].masked_fill(~(real & first), IGNORE_INDEX)  # (B, T)
    return {**batch, "labels": labels}
