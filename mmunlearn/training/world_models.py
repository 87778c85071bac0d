"""Train (or load from cache) the synthetic world's base and oracle models.

The base sees everyone but the holdout people; the oracle also never sees the forget people.
Practice people (never forget or retain) teach the in-context instruction "Forget <name> ." →
"I don't know", the way pretrained chat models follow such instructions; whether it transfers to
the forget people is measured by the `icu` teacher, not assumed. Models are cached by a hash of
the data and the recipe, so a second run skips training.

A `PretrainConfig` with a `TinyCausalLMConfig` trains a text-only causal LM (GPT-2- or
Llama-style) instead, on the world's text records (a world saved with `world.text_only`);
everything else is the same. With a `PretrainedLM` it fine-tunes a real pretrained LM on them
(TOFU's and MLLMU-Bench's protocol: the target model memorises fictitious people it could not
have known, the oracle the same without the forget people), in the LM's own chat template.

A `LlavaOnLM` builds a LLaVA on a real pretrained LM (`models.llava_on_lm`) and trains it with
LLaVA's two stages: (1) alignment — the vision tower and projector learn portrait → name
captions with the LM frozen; (2) the world's facts, image and text questions, in the LM's chat
template — LoRA on the LM (merged when saved) with the projector and, by default, the vision
tower (trained from scratch, not a frozen pretrained CLIP) trained in full. The oracle
runs both stages without the forget people (their portraits included).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.splits import group_by_role
from mmunlearn.data.world import load_world_meta
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import FALLBACK_TEMPLATE
from mmunlearn.models.llava_on_lm import VisionTowerConfig, build_llava_on_lm
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.sources import resolve_model
from mmunlearn.models.tiny import (
    CAUSAL_FAMILIES,
    TinyCausalLMConfig,
    TinyLlavaConfig,
    build_tiny_causal_lm,
    build_tiny_llava,
    build_word_tokenizer,
)
from mmunlearn.teachers.icu import FORGET_PROMPT
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train

log = logging.getLogger(__name__)
RECIPE_VERSION = 1
IDK = "I don't know"
TRAINED_ROLES = ("forget", "retain", "neighbor", "practice", "general")


@dataclass(frozen=True)
class PretrainedLM:
    """A real pretrained causal LM to fine-tune on the world's text rows: `source` is anything
    `--model` takes (a folder, a .gguf file, a `get-model` name); LoRA (merged when saved) or
    full fine-tuning."""

    source: str
    lora: bool = True
    lora_rank: int = 16

    @property
    def family(self) -> str:
        return "pretrained"


@dataclass(frozen=True)
class LlavaOnLM:
    """A LLaVA on the real LM `source` (anything `--model` takes), trained in two stages:
    `align_steps` of stage 1 (vision tower + projector, lr `align_lr`) on portrait → name
    captions, then the `PretrainConfig`'s steps of stage 2 (LoRA of rank `lora_rank` on the
    LM, the projector in full, and with `tower_in_stage2` the vision tower in full too).

    LLaVA keeps its pretrained CLIP frozen in both stages; this tower starts from scratch, and
    with it frozen after a 60-step stage 1 the base answered the image questions of only some people
    (forget 0.40, retain 0.80 ROUGE-L against 1.00 on text; README, "A LLaVA on SmolLM2"), so
    by default it keeps learning the portraits from the facts."""

    source: str
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig)
    align_steps: int = 300
    align_lr: float = 1e-3
    lora_rank: int = 16
    tower_in_stage2: bool = True

    def __post_init__(self) -> None:
        if self.align_steps < 1:
            raise ValueError(f"align_steps={self.align_steps} must be >= 1")

    @property
    def family(self) -> str:
        return "llava_lm"


@dataclass(frozen=True)
class PretrainConfig:
    """How a world's base and oracle are trained from scratch: a tiny LLaVA (`TinyLlavaConfig`)
    or a text-only causal LM (`TinyCausalLMConfig`). Defaults measured on a 2-core CPU."""

    steps: int = 1100
    lr: float = 1e-3
    batch_size: int = 64
    warmup_steps: int = 50
    seed: int = 0
    model: TinyLlavaConfig | TinyCausalLMConfig | PretrainedLM | LlavaOnLM = field(
        default_factory=TinyLlavaConfig
    )

    @property
    def is_text(self) -> bool:
        return isinstance(self.model, TinyCausalLMConfig | PretrainedLM)


TEXT_STEPS = 600  # a text model memorises the world's text records in fewer steps (README)


MODEL_FAMILIES = ("llava", *CAUSAL_FAMILIES)


def pretrain_config(family: str, seed: int = 0, **sizes: int) -> PretrainConfig:
    """The default recipe for a model family; `sizes` overrides steps / batch_size."""
    if family == "llava":
        return PretrainConfig(seed=seed, **sizes)
    if family not in MODEL_FAMILIES:
        raise ValueError(f"model family {family!r}; expected one of {MODEL_FAMILIES}")
    sizes.setdefault("steps", TEXT_STEPS)
    return PretrainConfig(seed=seed, model=TinyCausalLMConfig(family=family), **sizes)


# Fine-tuning SmolLM2-135M-Instruct with LoRA (rank 16) on a 12-person text world (README,
# "Real models"): lr, batch and steps chosen by measurement on the 2-core CPU.
PRETRAINED_RECIPE = {"steps": 150, "lr": 1e-3, "batch_size": 16, "warmup_steps": 10}


def pretrained_config(
    source: str, seed: int = 0, lora: bool = True, **sizes: int
) -> PretrainConfig:
    """The recipe for fine-tuning the real LM `source` on a world (`sizes` overrides steps,
    batch_size, lr)."""
    recipe = {**PRETRAINED_RECIPE, **sizes}
    return PretrainConfig(seed=seed, model=PretrainedLM(source, lora=lora), **recipe)


# Stage 2 of a LLaVA on SmolLM2-135M-Instruct (LoRA rank 16 + projector + vision tower), sized
# by measurement on a 2-core CPU: 300 steps at batch 8 memorise the text questions (ROUGE-L 1.00)
# in about 11 minutes on a quiet machine (README, "A LLaVA on SmolLM2").
LLAVA_ON_LM_RECIPE = {"steps": 300, "lr": 1e-3, "batch_size": 8, "warmup_steps": 10}


def llava_on_lm_config(
    source: str,
    seed: int = 0,
    vision: VisionTowerConfig | None = None,
    align_steps: int = LlavaOnLM.align_steps,
    tower_in_stage2: bool = LlavaOnLM.tower_in_stage2,
    **sizes: int,
) -> PretrainConfig:
    """The two-stage recipe for a LLaVA on the real LM `source` (`sizes` overrides stage 2's
    steps, batch_size, lr, warmup_steps; stage 1 uses the same batch size)."""
    recipe = {**LLAVA_ON_LM_RECIPE, **sizes}
    vision = vision or VisionTowerConfig()
    model = LlavaOnLM(source, vision, align_steps=align_steps, tower_in_stage2=tower_in_stage2)
    return PretrainConfig(seed=seed, model=model, **recipe)


def with_question(
    example: Example, suffix: str, question: str, answer: str | None = None
) -> Example:
    return dataclasses.replace(
        example, id=f"{example.id}-{suffix}", question=question, answer=answer or example.answer
    )


def training_mix(
    by_role: dict[str, list[Example]], include_forget: bool, seed: int
) -> list[Example]:
    """Every trained question and its paraphrases, plus the in-context forgetting lessons."""
    rng = random.Random(seed)
    roles = [r for r in TRAINED_ROLES if include_forget or r != "forget"]
    mix = []
    for role in roles:
        for ex in by_role.get(role, []):
            mix.append(ex)
            mix += [with_question(ex, f"para{i}", p) for i, p in enumerate(ex.paraphrases)]
    practice = by_role.get("practice", [])
    practice_names = sorted({ex.entity for ex in practice})
    for ex in practice:
        prompt = FORGET_PROMPT.format(entity=ex.entity)
        mix.append(with_question(ex, "icu", f"{prompt} {ex.question}", IDK))
        other = rng.choice([n for n in practice_names if n != ex.entity] or practice_names)
        mix.append(
            with_question(ex, "icu-other", f"{FORGET_PROMPT.format(entity=other)} {ex.question}")
        )
    for ex in rng.sample(
        by_role.get("retain", []), k=min(len(practice), len(by_role.get("retain", [])))
    ):
        name = rng.choice(practice_names) if practice_names else ex.entity
        mix.append(
            with_question(ex, "icu-other", f"{FORGET_PROMPT.format(entity=name)} {ex.question}")
        )
    return mix


def caption_rows(by_role: dict[str, list[Example]], include_forget: bool) -> list[Example]:
    """Stage 1's captions: each trained person's portrait → name question and its paraphrases."""
    roles = [r for r in TRAINED_ROLES if include_forget or r != "forget"]
    rows = [
        ex
        for role in roles
        for ex in by_role.get(role, [])
        if ex.image is not None and ex.meta.get("fact") == "name"
    ]
    return rows + [
        with_question(ex, f"para{i}", p) for ex in rows for i, p in enumerate(ex.paraphrases)
    ]


def image_augmenter(seed: int):
    """Random flips, shifts (≤4 px) and brightness on normalised pixels (N, C, H, W)."""
    gen = torch.Generator().manual_seed(seed)

    def augment(pixels: torch.Tensor) -> torch.Tensor:
        out = []
        for image in pixels:
            if torch.rand((), generator=gen) < 0.5:
                image = image.flip(-1)
            dy, dx = torch.randint(-4, 5, (2,), generator=gen).tolist()
            image = image.roll((dy, dx), dims=(-2, -1))
            image = image + (torch.rand((), generator=gen) - 0.5) * 0.3
            out.append(image)
        return torch.stack(out)

    return augment


def vocabulary_texts(examples: list[Example], extra: list[str]) -> list[str]:
    texts = [FORGET_PROMPT.replace("{entity}", ""), IDK, *extra]
    for ex in examples:
        texts += [ex.entity, ex.question, ex.answer, *ex.paraphrases, *ex.options, *ex.alt_answers]
    return texts


def data_hash(world_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(world_dir.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(world_dir).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def world_model(
    world_dir: str | Path,
    which: str,
    cache_dir: str | Path,
    config: PretrainConfig = PretrainConfig(),
    progress: bool = True,
) -> Path:
    """Path of the trained `base` or `oracle` model for this world, training it if not cached.

    A `PretrainConfig` with a `TinyCausalLMConfig` trains a text-only causal LM on the world's
    text records (image rows, if the world has any, are left out).
    """
    if which not in ("base", "oracle"):
        raise ValueError(f"which={which!r}; expected 'base' or 'oracle'")
    world_dir = Path(world_dir)
    text = config.is_text
    recipe = {"which": which, "recipe": RECIPE_VERSION, "config": dataclasses.asdict(config)}
    on_lm = isinstance(config.model, LlavaOnLM)
    if text or on_lm:  # LLaVA recipes keep their original hash (and their cached models)
        recipe["family"] = config.model.family
    if isinstance(config.model, PretrainedLM | LlavaOnLM):
        source = resolve_model(config.model.source)
        recipe["weights"] = weights_identity(source)
    key = hashlib.sha256((data_hash(world_dir) + json.dumps(recipe, sort_keys=True)).encode())
    prefix = f"{which}-{config.model.family}" if text or on_lm else which
    out = Path(cache_dir) / f"{prefix}-{key.hexdigest()[:16]}"
    if (out / "model" / "config.json").is_file():
        log.info("%s model found in cache: %s", which, out / "model")
        return out / "model"
    examples = load_examples(world_dir)
    extra = list(load_world_meta(world_dir).get("unused_names", []))
    torch.manual_seed(config.seed)  # the initial weights too: one seed, one model
    if isinstance(config.model, PretrainedLM):
        examples = [ex for ex in examples if ex.image is None]
        loaded = load_model(source)
    elif on_lm:
        loaded = build_llava_on_lm(source, config.model.vision)
    elif text:
        examples = [ex for ex in examples if ex.image is None]
        tokenizer = build_word_tokenizer(vocabulary_texts(examples, [*extra, FALLBACK_TEMPLATE]))
        loaded = LoadedModel(build_tiny_causal_lm(tokenizer, config.model), tokenizer, "causal_lm")
    else:
        tokenizer = build_word_tokenizer(vocabulary_texts(examples, extra))
        model, processor = build_tiny_llava(tokenizer, config.model)
        loaded = LoadedModel(model, processor, "vision_language")
    by_role = group_by_role(examples)
    mix = training_mix(by_role, include_forget=which == "base", seed=config.seed)
    if on_lm:
        loaded = align_vision(loaded, by_role, which, config, out / "stage1", progress)
    log.info("training the %s model on %d examples for %d steps", which, len(mix), config.steps)
    train_config = TrainConfig(
        steps=config.steps,
        lr=config.lr,
        batch_size=config.batch_size,
        warmup_steps=config.warmup_steps,
        scheduler="cosine",
        weight_decay=0.0,
        logging_steps=100 if not isinstance(config.model, PretrainedLM | LlavaOnLM) else 10,
        seed=config.seed,
        **lora_settings(config.model),
    )
    train(
        loaded,
        build_method("finetune"),
        {"train": mix},
        train_config,
        out,
        augment=None if text else image_augmenter(config.seed),
        progress=progress,
    )
    return out / "model"


def lora_settings(model: object) -> dict[str, object]:
    """TrainConfig fields of a recipe's fine-tuning: LoRA on a real LM (with the projector in
    full for a LLaVA on one), or nothing (full training from scratch)."""
    if isinstance(model, PretrainedLM):
        return {"lora": model.lora, "lora_rank": model.lora_rank, "lora_alpha": 32}
    if isinstance(model, LlavaOnLM):
        return {
            "lora": True,
            "lora_rank": model.lora_rank,
            "lora_alpha": 32,
            "full_scope": "vision_tower+projector" if model.tower_in_stage2 else "projector",
        }
    return {}


def align_vision(
    loaded: LoadedModel,
    by_role: dict[str, list[Example]],
    which: str,
    config: PretrainConfig,
    out: Path,
    progress: bool,
) -> LoadedModel:
    """LLaVA's stage 1: the vision tower and projector learn the portrait → name captions of
    the people `which` sees, the LM frozen. The aligned model is kept in `out/model`."""
    if (out / "model" / "config.json").is_file():  # a run stopped in stage 2: stage 1 is done
        log.info("stage 1 found: %s", out / "model")
        return load_model(out / "model")
    captions = caption_rows(by_role, include_forget=which == "base")
    steps = config.model.align_steps
    log.info("stage 1: aligning the vision tower on %d captions for %d steps", len(captions), steps)
    align = TrainConfig(
        steps=steps,
        lr=config.model.align_lr,
        batch_size=config.batch_size,
        warmup_steps=min(config.warmup_steps, steps // 2),
        scheduler="cosine",
        weight_decay=0.0,
        logging_steps=10,
        seed=config.seed,
        full_scope="vision_tower+projector",
    )
    return train(
        loaded,
        build_method("finetune"),
        {"train": captions},
        align,
        out,
        augment=image_augmenter(config.seed),
        progress=progress,
    )


def weights_identity(folder: Path) -> str:
    """What identifies a checkpoint's weights for the cache key: the GGUF file's SHA-256 it was
    converted from, else a hash of its weight files' names, sizes and modification times."""
    source = folder / "source.json"
    if source.is_file():
        return json.loads(source.read_text())["sha256"]
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
