"""Samplers: how examples of each role are grouped into training items."""

from __future__ import annotations

import random
from collections.abc import Callable

from mmunlearn.data.example import Example
from mmunlearn.registry import Registry

Item = dict[str, Example]
SAMPLERS: Registry[Callable[[dict[str, list[Example]], int], list[Item]]] = Registry("sampler")


@SAMPLERS.register("one_to_one_random")
def one_to_one_random(by_role: dict[str, list[Example]], seed: int) -> list[Item]:
    """Each forget example once, paired with a retain example drawn at random (open-unlearning)."""
    rng = random.Random(seed)
    retain = by_role["retain"]
    return [{"forget": ex, "retain": rng.choice(retain)} for ex in by_role["forget"]]


@SAMPLERS.register("single")
def single(by_role: dict[str, list[Example]], seed: int) -> list[Item]:
    """Every example of the `train` role once (plain fine-tuning)."""
    return [{"train": ex} for ex in by_role["train"]]
