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
    """Each forget row paired with a retain row drawn at random, afresh on every pass.

    As open-unlearning's ForgetRetainDataset.
    """
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


def _module(ex: Example, people: dict[str, list[Example]]) -> str | None:
    """The forget person whose module a neighbour row belongs to (MELU `module`, or the
    world's `neighbor_of`), None when that person is not being forgotten."""
    module = ex.meta.get("module", ex.meta.get("neighbor_of"))
    return module if module in people else None


def _paired_by_module(
    forget: list[Example], retain_rows: list[Example], rng: random.Random, num_items: int
) -> list[Item]:
    """Passes over `retain_rows`, reshuffled, until `num_items`: within a module the person's
    forget rows are cycled to the module's size, one per row; rows in no module are paired with
    a random forget row."""
    own: dict[str, list[Example]] = {}
    for ex in forget:
        own.setdefault(ex.entity, []).append(ex)
    modules: dict[str | None, list[Example]] = {}
    for ex in retain_rows:
        modules.setdefault(_module(ex, own), []).append(ex)
    pairs: list[Item] = []
    while len(pairs) < max(num_items, 1):
        for module, rows in modules.items():
            rows = rng.sample(rows, k=len(rows))
            if module is None:
                pairs += [{"forget": rng.choice(forget), "retain": ex} for ex in rows]
                continue
            cycle = rng.sample(own[module], k=len(own[module]))
            pairs += [{"forget": cycle[i % len(cycle)], "retain": ex} for i, ex in enumerate(rows)]
    return pairs


@SAMPLERS.register("modular")
def modular(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's modular sampling (arXiv 2509.05316).

    A module is a forget person with their neighbours (rows with role `neighbor` and
    `meta.module` = the person). Within a module the person's forget rows are cycled to the
    module's size, one per neighbour row; general-knowledge rows and neighbours in no module are
    paired with a random forget row. Passes repeat, reshuffled, until `num_items` are drawn.
    """
    retain_rows = by_role.get("neighbor", []) + by_role.get("general", [])
    if not retain_rows:
        raise ValueError("the modular sampler needs rows with role 'neighbor' or 'general'")
    return _paired_by_module(
        _require(by_role, "forget"), retain_rows, random.Random(seed), num_items
    )


@SAMPLERS.register("cyclic")
def cyclic(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's cyclic regime: every row to keep, in order, once per pass, against cycled forget.

    The rows to keep are the roles retain, neighbor and general, in data order; each is paired
    with the next forget row (forget cycled to the pass's size). Whole passes only.
    """
    forget = _require(by_role, "forget")
    retain_rows = [ex for role in ("retain", "neighbor", "general") for ex in by_role.get(role, [])]
    if not retain_rows:
        raise ValueError(
            "the cyclic sampler needs rows with role 'retain', 'neighbor' or 'general'"
        )
    passes = -(-max(num_items, 1) // len(retain_rows))  # whole passes
    return [
        {"forget": forget[i % len(forget)], "retain": retain_rows[i % len(retain_rows)]}
        for i in range(passes * len(retain_rows))
    ]


def _neighbours(by_role: dict[str, list[Example]], relation: str) -> list[Example]:
    rows = [ex for ex in by_role.get("neighbor", []) if ex.meta.get("relation") == relation]
    if not rows:
        raise ValueError(
            f"the {relation} sampler needs rows with role 'neighbor' and meta.relation="
            f"{relation!r} (MELU type {'entity' if relation == 'direct' else 'domain'!r}); "
            "there are none"
        )
    return rows


@SAMPLERS.register("direct")
def direct(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's direct regime: retain = only the direct neighbours (MELU type `entity`).

    Each is paired with a forget row of its own person, as in `modular`.
    """
    rows = _neighbours(by_role, "direct")
    return _paired_by_module(_require(by_role, "forget"), rows, random.Random(seed), num_items)


@SAMPLERS.register("indirect")
def indirect(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's indirect regime: retain = only the indirect neighbours (MELU type `domain`)."""
    rows = _neighbours(by_role, "indirect")
    return _paired_by_module(_require(by_role, "forget"), rows, random.Random(seed), num_items)


@SAMPLERS.register("balanced")
def balanced(by_role: dict[str, list[Example]], seed: int, num_items: int) -> list[Item]:
    """MELU's balanced regime: indirect rows down-sampled to each person's direct count.

    As MELU's balanced_retain.csv: every direct neighbour and general row, and each forget
    person's indirect rows down-sampled once (seeded) to that person's number of direct rows;
    indirect rows in no module are left out. Pairing as in `modular`.
    """
    rng = random.Random(seed)
    forget = _require(by_role, "forget")
    people = {ex.entity: [] for ex in forget}
    direct_rows = _neighbours(by_role, "direct")
    indirect_rows = _neighbours(by_role, "indirect")
    quota: dict[str, int] = {}
    for ex in direct_rows:
        module = _module(ex, people)
        if module is not None:
            quota[module] = quota.get(module, 0) + 1
    by_module: dict[str, list[Example]] = {}
    for ex in indirect_rows:
        module = _module(ex, people)
        if module is not None:
            by_module.setdefault(module, []).append(ex)
    kept = [
        ex
        for module, rows in by_module.items()
        for ex in rng.sample(rows, k=min(len(rows), quota.get(module, 0)))
    ]
    rows = direct_rows + kept + by_role.get("general", [])
    return _paired_by_module(forget, rows, rng, num_items)


def group_by_image(items: list[Item], role: str, seed: int) -> list[Item]:
    """`items` reordered so that, within each pass over the `role` rows, the items whose `role`
    row shows one image follow each other (images in a random order; rows without an image stay
    on their own). A batch then holds several questions about one image, whose shared prefix the
    model encodes once (`train.share_image_prefix`). A pass is as many items as there are
    distinct `role` rows; what each item pairs its `role` row with is unchanged."""
    rows = {item[role].id for item in items if role in item}
    if not rows:
        return items
    rng = random.Random(seed)
    out: list[Item] = []
    for start in range(0, len(items), len(rows)):
        groups: dict[str, list[Item]] = {}
        for item in items[start : start + len(rows)]:
            example = item.get(role)
            image = example.image if example is not None else None
            groups.setdefault(image or f"\x00{len(groups)}", []).append(item)
        order = list(groups.values())
        rng.shuffle(order)
        out += [item for group in order for item in group]
    return out
