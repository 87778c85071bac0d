from collections import Counter

import pytest

from mmunlearn.data.example import Example
from mmunlearn.training.samplers import SAMPLERS, modular, one_to_one_random


def ex(id_, role, entity, **meta):
    return Example(id=id_, entity=entity, role=role, question=f"q {id_}?", answer="a", meta=meta)


BY_ROLE = {
    "forget": [ex("fa1", "forget", "A"), ex("fa2", "forget", "A"), ex("fb1", "forget", "B")],
    "neighbor": [
        *[ex(f"na{i}", "neighbor", f"nA{i}", module="A", relation="direct") for i in range(3)],
        *[ex(f"nb{i}", "neighbor", f"nB{i}", module="B", relation="indirect") for i in range(2)],
        ex("nx", "neighbor", "nX", module=None, relation="indirect"),
    ],
    "general": [ex("g1", "general", "general"), ex("g2", "general", "general")],
}


def test_modular_pairs_each_neighbour_with_its_own_forget_person():
    items = modular(BY_ROLE, seed=0, num_items=1)
    assert len(items) == 8  # one pass: every neighbour and general row once
    for item in items:
        module = item["retain"].meta.get("module")
        if module:
            assert item["forget"].entity == module
    # A's 2 forget rows are cycled over A's 3 neighbours: used 2 and 1 times
    used = Counter(i["forget"].id for i in items if i["retain"].meta.get("module") == "A")
    assert sorted(used.values()) == [1, 2]
    assert {i["retain"].id for i in items} == {
        e.id for rows in BY_ROLE.values() for e in rows if e.role != "forget"
    }


def test_modular_repeats_passes_up_to_the_requested_items():
    items = modular(BY_ROLE, seed=0, num_items=20)
    assert len(items) == 24 and Counter(i["retain"].id for i in items)["g1"] == 3


def test_one_to_one_random_draws_retain_afresh_on_every_pass():
    by_role = {"forget": BY_ROLE["forget"], "retain": BY_ROLE["neighbor"]}
    items = one_to_one_random(by_role, seed=0, num_items=30)
    assert len(items) == 30
    assert Counter(i["forget"].id for i in items) == {"fa1": 10, "fa2": 10, "fb1": 10}
    assert len({i["retain"].id for i in items}) == 6


def test_samplers_name_the_missing_split():
    with pytest.raises(ValueError, match="role 'retain'"):
        SAMPLERS.get("one_to_one_random")({"forget": BY_ROLE["forget"]}, 0, 1)
    with pytest.raises(KeyError, match="did you mean 'modular'"):
        SAMPLERS.get("modulr")
