"""Samplers: how examples of each role are grouped into training items.

A sampler returns at least `num_items` items (the run's steps × batch size), cycling through its
primary split in fresh random orders, so every retain row gets its turn across epochs.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mmunlearn.data.example import Example
from mmunlearn.registry import Registry

Item = dict[str, Example]
Sampler = Callable[[dict[str, list[Example]], int, int], list[Item]]
SAMPLERS: Registry[Sampler] = Registry("sampler")


def _require(by_role: dict[str, list[Example]], role: str) -> list[Example]:
    rows = by_role.get(role, [])
    if not rows:
        raise ValueError(f"the sampler needs rows with role {role!r} and there are none")
    return rows


def _cycled(rows: list[Example], rng: random.Random, num_items: int) -> list[Example]:
    out: list[Example] = []
    while len(out) < max(num_items, len(rows)):
        out += rng.sample(rows, k=len(rows))
    return out


@SAMPLERS.register("one_to_one_random")
def one_to_one_random(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """Each forget row paired with a retain row drawn at random, afresh on every pass
    (open-unlearning's ForgetRetainDataset)."""
    rng = random.Random(seed)
    retain = _require(by_role, "retain")
    forget = _cycled(_require(by_role, "forget"), rng, num_items)
    return [{"forget": ex, "retain": rng.choice(retain)} for ex in forget]


@SAMPLERS.register("single")
def single(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """Every example of the `train` role, reshuffled on every pass (plain fine-tuning)."""
    return [
        {"train": ex} for ex in _cycled(_require(by_role, "train"), random.Random(seed), num_items)
    ]


@SAMPLERS.register("modular")
def modular(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's modular sampling (arXiv 2509.05316).

    A module is a forget person with their neighbours (rows with role `neighbor` and
    `meta.module` = the person). Within a module the person's forget rows are cycled to the
    module's size, one per neighbour row; general-knowledge rows and neighbours in no module are
    paired with a random forget row. Passes repeat, reshuffled, until `num_items` are drawn.
    """
    rng = random.Random(seed)
    forget = _require(by_role, "forget")
    retain_rows = by_role.get("neighbor", []) + by_role.get("general", [])
    if not retain_rows:
        raise ValueError("the modular sampler needs rows with role 'neighbor' or 'general'")
    own: dict[str, list[Example]] = {}
    for ex in forget:
        own.setdefault(ex.entity, []).append(ex)
    pairs: list[Item] = []
    while len(pairs) < max(num_items, 1):
        modules: dict[str | None, list[Example]] = {}
        for ex in retain_rows:
            module = ex.meta.get("module", ex.meta.get("neighbor_of"))
            module = module if module in own else None
            modules.setdefault(module, []).append(ex)
        for module, rows in modules.items():
            rows = rng.sample(rows, k=len(rows))
            if module is None:
                pairs += [{"forget": rng.choice(forget), "retain": ex} for ex in rows]
                continue
            cycle = rng.sample(own[module], k=len(own[module]))
            pairs += [{"forget": cycle[i % len(cycle)], "retain": ex} for i, ex in enumerate(rows)]
    return pairs
