from collections import Counter

import pytest

from mmunlearn.data.example import Example
from mmunlearn.training.samplers import (
    SAMPLERS,
    balanced,
    cyclic,
    direct,
    group_by_image,
    indirect,
    modular,
    one_to_one_random,
)


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


def test_cyclic_pairs_every_row_to_keep_once_per_pass_in_order():
    by_role = {**BY_ROLE, "retain": [ex("r1", "retain", "R")]}
    items = cyclic(by_role, seed=0, num_items=10)
    keep = [e.id for role in ("retain", "neighbor", "general") for e in by_role[role]]
    assert len(items) == 2 * len(keep)  # whole passes: 9 rows, 10 items asked
    assert [i["retain"].id for i in items] == keep + keep
    assert [i["forget"].id for i in items[:4]] == ["fa1", "fa2", "fb1", "fa1"]


def test_direct_and_indirect_keep_only_their_relation():
    for sampler, relation in ((direct, "direct"), (indirect, "indirect")):
        items = sampler(BY_ROLE, seed=0, num_items=1)
        assert items and {i["retain"].meta["relation"] for i in items} == {relation}
        for item in items:
            module = item["retain"].meta.get("module")
            if module:
                assert item["forget"].entity == module
    assert {i["retain"].id for i in direct(BY_ROLE, 0, 1)} == {"na0", "na1", "na2"}


def test_balanced_downsamples_each_persons_indirect_rows_to_their_direct_count():
    neighbours = [
        *[ex(f"da{i}", "neighbor", f"dA{i}", module="A", relation="direct") for i in range(2)],
        *[ex(f"ia{i}", "neighbor", f"iA{i}", module="A", relation="indirect") for i in range(5)],
        ex("db0", "neighbor", "dB0", module="B", relation="direct"),
        *[ex(f"ib{i}", "neighbor", f"iB{i}", module="B", relation="indirect") for i in range(3)],
        ex("ix", "neighbor", "iX", module=None, relation="indirect"),
    ]
    by_role = {**BY_ROLE, "neighbor": neighbours}
    items = balanced(by_role, seed=0, num_items=1)
    kept = Counter(
        (i["retain"].meta.get("module"), i["retain"].meta.get("relation")) for i in items
    )
    assert kept == {
        ("A", "direct"): 2,
        ("A", "indirect"): 2,
        ("B", "direct"): 1,
        ("B", "indirect"): 1,
        (None, None): 2,  # the general rows
    }


def test_relation_samplers_need_that_relation():
    no_direct = {**BY_ROLE, "neighbor": BY_ROLE["neighbor"][3:]}
    with pytest.raises(ValueError, match="relation='direct'"):
        direct(no_direct, 0, 1)


def test_group_by_image_puts_each_images_questions_together_within_each_pass():
    forget = [
        Example(
            id=f"f{i}",
            entity=f"p{i % 3}",
            role="forget",
            question="q?",
            answer="a",
            image=f"p{i % 3}.png" if i < 8 else None,
        )
        for i in range(10)
    ]
    retain = [ex("r", "retain", "x")]
    items = one_to_one_random({"forget": forget, "retain": retain}, 0, 30)
    grouped = group_by_image(items, "forget", seed=1)
    assert len(grouped) == len(items)
    for start in range(0, len(items), len(forget)):
        before, after = items[start : start + 10], grouped[start : start + 10]
        assert Counter(id(i) for i in before) == Counter(id(i) for i in after)  # same items
        images = [item["forget"].image for item in after if item["forget"].image]
        runs = [image for i, image in enumerate(images) if i == 0 or images[i - 1] != image]
        assert sorted(runs) == ["p0.png", "p1.png", "p2.png"]  # one run per image
