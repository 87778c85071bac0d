"""Robustness probes: ways an attacker might get forgotten facts back.

Each probe answers the forget questions under a change (paraphrased question, noised image,
in-context prompt removed, a few relearning steps) and returns per-question generation rows; the
suite compares their ROUGE-L with the same questions asked plainly.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.metrics import score_predictions
from mmunlearn.models.families import pixel_bounds
from mmunlearn.models.loading import LoadedModel
from mmunlearn.teachers.visual_noise import VisualNoise

Rows = list[dict[str, Any]]


def paraphrase_probe(
    loaded: LoadedModel, forget: Sequence[Example], max_new_tokens: int, progress: bool
) -> Rows:
    """Every paraphrase of every forget question (`Example.paraphrases`), same image."""
    asked = [
        dataclasses.replace(ex, question=text, meta={**ex.meta, "source_id": ex.id})
        for ex in forget
        for text in ex.paraphrases
    ]
    return answer(loaded, asked, max_new_tokens, progress)


def noise_probe(
    loaded: LoadedModel,
    forget: Sequence[Example],
    noise: VisualNoise,
    max_new_tokens: int,
    progress: bool,
) -> Rows:
    """The image+text forget questions with their image noised by a `visual_noise` intervention
    (the teacher's pixel function `VisualNoise.noise_image`, seeded by `VisualNoise.seed_key`
    as the teacher's `noised_batch` is). Needs one pixel tensor per image along dim 0
    (LLaVA-style); other layouts raise ValueError."""
    bounds = pixel_bounds(loaded.processor, loaded.family)

    def transform(pixels: torch.Tensor, examples: list[Example]) -> torch.Tensor:
        if loaded.family.pixel_layout != "chw" or pixels.shape[0] != len(examples):
            raise ValueError(
                f"noise probe: {loaded.family.name} batches {pixels.shape[0]} pixel tensors "
                f"for {len(examples)} images; it needs one (C, H, W) tensor per image"
            )
        return noise.apply(pixels, [noise.seed_key(ex) for ex in examples], bounds)

    asked = [ex for ex in forget if ex.image is not None]
    if not asked:
        return []
    predictions = generate_answers(
        loaded, asked, max_new_tokens=max_new_tokens, progress=progress, transform_pixels=transform
    )
    return score_predictions(asked, predictions)


def prompt_probe(
    loaded: LoadedModel,
    forget: Sequence[Example],
    prompt: str,
    max_new_tokens: int,
    progress: bool,
    prompt_as: str = "prefix",
) -> Rows:
    """The forget questions WITH the in-context instruction `prompt` ("Forget {entity} ."),
    before the question (`prefix`) or as a system message (`system`). Compared with the plain
    questions, this shows whether forgetting lives in the prompt: a model that forgets only
    when told to recovers everything once the prompt is removed."""
    if prompt_as == "system":
        predictions = generate_answers(
            loaded,
            list(forget),
            max_new_tokens=max_new_tokens,
            progress=progress,
            system_of=lambda ex: prompt.format(entity=ex.entity),
        )
        return score_predictions(forget, predictions)
    asked = [
        dataclasses.replace(ex, question=f"{prompt.format(entity=ex.entity)} {ex.question}")
        for ex in forget
    ]
    return answer(loaded, asked, max_new_tokens, progress)


def split_halves(forget: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """Each entity's forget questions, sorted by id, alternately into (relearned, measured)."""
    by_entity: dict[str, list[Example]] = {}
    for ex in sorted(forget, key=lambda ex: ex.id):
        by_entity.setdefault(ex.entity, []).append(ex)
    relearned = [ex for rows in by_entity.values() for ex in rows[0::2]]
    measured = [ex for rows in by_entity.values() for ex in rows[1::2]]
    return relearned, measured


@dataclasses.dataclass(frozen=True)
class RelearnConfig:
    """The relearning attack's fine-tuning: plain NLL (`finetune`) on half the forget facts."""

    steps: int = 10
    lr: float = 3e-4
    batch_size: int = 8
    seed: int = 0


def relearn_probe(
    loaded: LoadedModel,
    forget: Sequence[Example],
    config: RelearnConfig,
    max_new_tokens: int,
    progress: bool,
) -> dict[str, Rows]:
    """Fine-tune a COPY of the model for a few steps on half of the forget questions, then answer
    both halves. Facts of the other half coming back means the knowledge was hidden, not removed
    (Lynch et al., arXiv 2402.16835; Hu et al., arXiv 2406.13356)."""
    relearned, measured = split_halves(forget)
    if not relearned or not measured:
        return {"relearned": [], "measured": []}
    student = finetuned_copy(loaded, relearned, config)
    return {
        "relearned": answer(student, relearned, max_new_tokens, progress),
        "measured": answer(student, measured, max_new_tokens, progress),
    }


def finetuned_copy(
    loaded: LoadedModel, examples: Sequence[Example], config: RelearnConfig
) -> LoadedModel:
    """A COPY of the model fine-tuned (plain NLL, `finetune`) on `examples` as `config` says."""
    from mmunlearn.methods import build_method
    from mmunlearn.training.config import TrainConfig
    from mmunlearn.training.run import train

    student = LoadedModel(copy.deepcopy(loaded.model), loaded.processor, loaded.kind)
    train_config = TrainConfig(
        steps=config.steps,
        lr=config.lr,
        batch_size=config.batch_size,
        logging_steps=max(1, config.steps),
        seed=config.seed,
    )
    with tempfile.TemporaryDirectory(prefix="mmunlearn-relearn-") as tmp:
        return train(
            student,
            build_method("finetune"),
            {"train": list(examples)},
            train_config,
            tmp,
            progress=False,
        )


def answer(
    loaded: LoadedModel, examples: Sequence[Example], max_new_tokens: int, progress: bool
) -> Rows:
    if not examples:
        return []
    predictions = generate_answers(
        loaded, list(examples), max_new_tokens=max_new_tokens, progress=progress
    )
    return score_predictions(examples, predictions)
