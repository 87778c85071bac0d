"""Held-out neighbour and general rows never reach a sampler; the rest still do."""

import pytest

from mmunlearn.data.splits import group_by_role, is_heldout
from mmunlearn.data.world import WorldConfig, build_world
from mmunlearn.methods import build_method
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import draw_items
from mmunlearn.training.samplers import SAMPLERS

WORLD = build_world(WorldConfig(n_forget=2, n_retain=6, n_practice=0, n_holdout=2, n_general=8))
BY_ROLE = group_by_role(WORLD.examples)
HELD = {ex.id for ex in WORLD.examples if is_heldout(ex)}
KEPT = {ex.id for role in ("neighbor", "general") for ex in BY_ROLE[role] if ex.id not in HELD}
# `single` is plain fine-tuning (how the base learns everything), not an unlearning sampler.
UNLEARNING_SAMPLERS = [name for name in SAMPLERS.names() if name != "single"]


def test_the_world_has_rows_on_both_sides():
    assert HELD and KEPT


@pytest.mark.parametrize("sampler", UNLEARNING_SAMPLERS)
def test_no_held_out_row_reaches_a_sampler(sampler, monkeypatch):
    seen = []
    real = SAMPLERS.get(sampler)

    def spy(by_role, seed, num_items):
        seen.extend(ex.id for rows in by_role.values() for ex in rows)
        return real(by_role, seed, num_items)

    monkeypatch.setitem(SAMPLERS._items, sampler, spy)
    method = build_method("vgid").with_sampler(sampler)
    items = draw_items(method, BY_ROLE, TrainConfig(steps=3, batch_size=4))
    drawn = {ex.id for item in items for ex in item.values()}
    assert items and not (set(seen) | drawn) & HELD


def test_samplers_that_keep_neighbours_train_on_the_retain_part():
    method = build_method("vgid").with_sampler("cyclic")
    items = draw_items(method, BY_ROLE, TrainConfig(steps=1, batch_size=1))
    assert {item["retain"].id for item in items} >= KEPT
