import dataclasses
import itertools
import random

import numpy as np
import pytest

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.portraits import draw_portrait, draw_traits, transform_portrait
from mmunlearn.data.world import (
    ALT_ANSWERS,
    WorldConfig,
    build_world,
    load_world_meta,
    save_world,
)

CONFIG = WorldConfig()


@pytest.fixture(scope="module")
def world():
    return build_world(CONFIG)


def _records(world):
    return [(ex, ex.meta) for ex in world.examples]  # meta is excluded from Example equality


def test_same_seed_gives_the_same_world(world):
    again = build_world(CONFIG)
    assert _records(again) == _records(world)
    assert again.unused_names == world.unused_names
    for person_id, image in world.portraits.items():
        assert again.portraits[person_id].tobytes() == image.tobytes()
    for person_id, image in world.test_portraits.items():
        assert again.test_portraits[person_id].tobytes() == image.tobytes()


def test_another_seed_gives_another_world(world):
    other = build_world(WorldConfig(seed=1))
    assert [p.name for p in other.people] != [p.name for p in world.people]
    assert _records(other) != _records(world)


def test_records_per_role(world):
    c = CONFIG
    expected = {
        "forget": 10 * c.n_forget,
        "neighbor": 10 * 2 * c.n_forget,
        "retain": 10 * (c.n_retain - 2 * c.n_forget),
        "practice": 10 * c.n_practice,
        "holdout": 10 * c.n_holdout,
        "general": c.n_general,
        "test": 10 * c.n_forget,
    }
    assert {role: len(world.by_role(role)) for role in expected} == expected
    assert len(world.examples) == sum(expected.values())
    assert len({ex.id for ex in world.examples}) == len(world.examples)


def test_names_are_distinct_and_unused_names_are_fresh(world):
    names = [p.name for p in world.people]
    assert len(set(names)) == len(names)
    assert len(world.unused_names) == CONFIG.n_unused_names
    assert len(set(world.unused_names)) == len(world.unused_names)
    assert not set(world.unused_names) & set(names)
    for name in names + list(world.unused_names):
        first, last = name.split()
        assert first.istitle() and last.istitle() and first != last


def test_every_person_has_a_distinct_portrait(world):
    pixels = {p.id: np.asarray(world.portraits[p.id]) for p in world.people}
    for a, b in itertools.combinations(pixels, 2):
        assert not np.array_equal(pixels[a], pixels[b]), (a, b)
    keys = [p.traits.identity_key for p in world.people]
    assert len(set(keys)) == len(keys)
    assert all(pixels[p].shape == (CONFIG.image_size, CONFIG.image_size, 3) for p in pixels)


def test_transformed_portrait_is_deterministic_and_different():
    portrait = draw_portrait(draw_traits(random.Random(3)))
    first, again = transform_portrait(portrait, seed=5), transform_portrait(portrait, seed=5)
    assert first.tobytes() == again.tobytes()
    assert first.size == portrait.size and first.mode == "RGB"
    assert first.tobytes() != portrait.tobytes()


def test_friendships_stay_within_groups(world):
    by_name = {p.name: p for p in world.people}
    for person in world.people:
        friend = by_name[person.friend]
        assert friend is not person
        if person.group in ("practice", "holdout"):
            assert friend.group == person.group
        if person.group == "retain" and person.relation != "direct":
            assert friend.group == "retain" and friend.relation != "direct"


def test_neighbours_are_friends_or_colleagues_of_forget_people(world):
    by_name = {p.name: p for p in world.people}
    forget = [p for p in world.people if p.group == "forget"]
    direct = {p.name for p in world.people if p.relation == "direct"}
    indirect = {p.name for p in world.people if p.relation == "indirect"}
    assert len(direct) == len(indirect) == len(forget) and not direct & indirect
    for person in forget:
        friend = by_name[person.friend]
        assert friend.relation == "direct" and friend.neighbor_of == person.name
        assert friend.friend == person.name
        (colleague,) = [
            p for p in world.people if p.relation == "indirect" and p.neighbor_of == person.name
        ]
        assert colleague.employer == person.employer
    forget_employers = {p.employer for p in forget}
    for person in world.people:
        if person.group != "forget" and person.relation != "indirect":
            assert person.employer not in forget_employers, person
    for ex in world.by_role("neighbor"):
        person = by_name[ex.entity]
        assert ex.meta["relation"] == person.relation
        assert ex.meta["neighbor_of"] == person.neighbor_of


def test_test_records_rephrase_forget_records(world):
    sources = {ex.id: ex for ex in world.by_role("forget")}
    for ex in world.by_role("test"):
        source = sources[ex.meta["source_id"]]
        assert ex.id == f"{source.id}-test" and ex.answer == source.answer
        assert ex.question == source.paraphrases[0] != source.question
        if source.image is None:
            assert ex.image is None and ex.meta["variant"] == "paraphrase"
        else:
            person_id = source.meta["person_id"]
            assert ex.image == f"images/{person_id}_test.png" and person_id in world.test_portraits
            assert ex.meta["variant"] == "paraphrase+transformed_image"


def test_answers_are_short_with_four_options(world):
    for ex in world.examples:
        assert 1 <= len(ex.answer.split()) <= 2, ex
        assert ex.alt_answers == ALT_ANSWERS
        assert len(ex.options) == len(set(ex.options)) == 4 and ex.answer in ex.options
        assert ex.role == "test" or len(ex.paraphrases) == 1
        assert ex.modality == ex.meta["modality"]


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="n_retain=5"):
        WorldConfig(n_forget=4, n_retain=5)
    with pytest.raises(ValueError, match="n_forget=0"):
        WorldConfig(n_forget=0)


def test_save_then_load_round_trips(world, tmp_path):
    save_world(world, tmp_path / "world")
    loaded = {ex.id: ex for ex in load_examples(tmp_path / "world")}
    assert set(loaded) == {ex.id for ex in world.examples}
    for ex in world.examples:
        got = loaded[ex.id]
        expected_image = str(tmp_path / "world" / ex.image) if ex.image else None
        assert got.image == expected_image
        assert got == dataclasses.replace(ex, image=expected_image)
        assert got.meta == ex.meta
    meta = load_world_meta(tmp_path / "world")
    assert meta["format_version"] == 1 and meta["config"]["seed"] == CONFIG.seed
    assert [p["name"] for p in meta["people"]] == [p.name for p in world.people]
    assert meta["unused_names"] == list(world.unused_names)


def test_text_only_world_keeps_every_text_question_and_no_image(world, tmp_path):
    from mmunlearn.data.world import text_only

    text = text_only(world)
    assert text.examples and all(ex.image is None for ex in text.examples)
    assert len(text.examples) == sum(ex.image is None for ex in world.examples)
    forget = [ex for ex in text.examples if ex.role == "forget"]
    # every fact of an image question but the name is still asked about each forget person
    image_facts = {ex.meta["fact"] for ex in world.examples if ex.image} - {"name"}
    for person in {ex.entity for ex in forget}:
        assert image_facts <= {ex.meta["fact"] for ex in forget if ex.entity == person}
    save_world(text, tmp_path)
    assert not (tmp_path / "images").exists()
    assert len(load_examples(tmp_path)) == len(text.examples)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"format_version": 1, "config": {"se', "not a valid JSON file"),
        (b'{"format_version": 1, "name": "\xff"}', "not a valid JSON file"),
        (b"[1, 2]", "expected a JSON object"),
    ],
    ids=["truncated", "not utf-8", "a list"],
)
def test_a_damaged_world_json_names_the_file(tmp_path, content, words):
    (tmp_path / "world.json").write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_world_meta(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'world.json'}: ") and words in str(info.value)
