import dataclasses

import pytest
from PIL import Image

from mmunlearn.data.example import Example
from mmunlearn.data.splits import (
    check_unlearning_data,
    group_by_role,
    is_heldout,
    is_validation,
    trainable,
)
from mmunlearn.data.world import WorldConfig, build_world


def _ex(id: str, entity: str, role: str) -> Example:
    return Example(id, entity, role, f"Where was {entity} born?", "Dunmere")


def test_group_by_role_keeps_order_and_skips_absent_roles():
    rows = [_ex("a", "A", "retain"), _ex("b", "B", "forget"), _ex("c", "C", "retain")]
    groups = group_by_role(rows)
    assert list(groups) == ["forget", "retain"]
    assert [ex.id for ex in groups["retain"]] == ["a", "c"]


def test_the_default_world_is_valid_unlearning_data():
    check_unlearning_data(build_world(WorldConfig(n_general=4)).examples, "world")


def test_no_forget_rows():
    with pytest.raises(ValueError, match="no rows with role 'forget' in data/mine"):
        check_unlearning_data([_ex("a", "A", "retain")], "data/mine")


def test_no_retain_rows():
    with pytest.raises(ValueError, match="no rows with role 'retain' in data/mine"):
        check_unlearning_data([_ex("a", "A", "forget"), _ex("b", "B", "neighbor")], "data/mine")


@pytest.mark.parametrize("role", ["retain", "neighbor"])
def test_entity_both_forgotten_and_kept(role):
    rows = [_ex("f1", "Ann", "forget"), _ex("r1", "Bob", "retain"), _ex("k1", "Ann", role)]
    with pytest.raises(ValueError) as info:
        check_unlearning_data(rows, "data/mine")
    message = str(info.value)
    assert "data/mine" in message and "'Ann'" in message and "'f1'" in message and "'k1'" in message


def test_half_of_the_neighbour_and_general_rows_are_held_out_and_no_other_row():
    world = build_world(WorldConfig())
    held = [ex for ex in world.examples if is_heldout(ex)]
    assert {ex.role for ex in held} == {"neighbor", "general"}
    for role in ("neighbor", "general"):
        rows = world.by_role(role)
        assert 0.3 < sum(map(is_heldout, rows)) / len(rows) < 0.7


def test_held_out_is_decided_by_the_row_alone_and_the_data_may_say_it():
    row = _ex("n1", "Bob", "neighbor")
    assert is_heldout(row) == is_heldout(_ex("n1", "Other", "neighbor"))
    for flag in (True, False):
        assert is_heldout(dataclasses.replace(row, meta={"heldout": flag})) is flag
    with pytest.raises(TypeError, match="'n1': meta.heldout='yes'"):
        is_heldout(dataclasses.replace(row, meta={"heldout": "yes"}))


def test_trainable_drops_only_held_out_rows_of_held_out_roles():
    rows = [_ex(f"n{i}", "Bob", "neighbor") for i in range(20)]
    kept = trainable({"neighbor": rows, "train": rows})
    assert kept["train"] == rows
    assert kept["neighbor"] == [ex for ex in rows if not is_heldout(ex)]
    assert 0 < len(kept["neighbor"]) < len(rows)


def test_validation_is_half_of_each_split_and_a_paraphrase_goes_with_its_question():
    world = build_world(WorldConfig())
    for role in ("forget", "retain", "neighbor", "general"):
        rows = world.by_role(role)
        assert 0.3 < sum(map(is_validation, rows)) / len(rows) < 0.7
    by_id = {ex.id: ex for ex in world.examples}
    for test in world.by_role("test"):
        assert is_validation(test) == is_validation(by_id[test.meta["source_id"]])


@pytest.mark.parametrize("kept", ["Ann ", "ann", "  ANN", "Ａｎｎ", "Ann\u00a0", "ann\t"])
def test_a_forget_entity_is_found_whatever_its_case_spacing_or_unicode_form(kept):
    rows = [_ex("f1", "Ann", "forget"), _ex("r1", "Bob", "retain"), _ex("k1", kept, "retain")]
    with pytest.raises(ValueError, match="is in both forget \\(id 'f1', as 'Ann'\\) and retain"):
        check_unlearning_data(rows, "data/mine")


def test_a_forget_person_in_the_holdout_set_is_refused():
    rows = [_ex("f1", "Ann", "forget"), _ex("r1", "Bob", "retain"), _ex("h1", "ann", "holdout")]
    with pytest.raises(ValueError, match="and holdout \\(id 'h1'\\).*cannot be a holdout person"):
        check_unlearning_data(rows, "data/mine")


def test_the_same_fact_under_another_name_is_refused_and_named_with_both_rows():
    forget = Example("f1", "Ann", "forget", "Where was Ann born?", "Dunmere")
    kept = Example("r9", "Annie", "retain", "where was  ANN born?", "dunmere ")
    rows = [forget, _ex("r1", "Bob", "retain"), kept]
    with pytest.raises(ValueError) as info:
        check_unlearning_data(rows, "data/mine", locate=lambda ex: f"f.jsonl, row {ex.id[1:]}")
    message = str(info.value)
    assert "retain row f.jsonl, row 9 (id 'r9')" in message
    assert "forget row f.jsonl, row 1 (id 'f1')" in message and "same answer" in message


def test_the_same_question_with_another_image_or_answer_is_allowed(tmp_path):
    for name, colour in (("a.png", 1), ("b.png", 2)):
        Image.new("RGB", (4, 4), (colour, 0, 0)).save(tmp_path / name)
    ask = "Where was this person born?"
    rows = [
        Example("f1", "Ann", "forget", ask, "Dunmere", image=str(tmp_path / "a.png")),
        Example("f2", "Ann", "forget", "Where was Ann born?", "Dunmere"),
        Example("r1", "Bob", "retain", ask, "Dunmere", image=str(tmp_path / "b.png")),
        Example("r2", "Cy", "retain", "Where was Ann born?", "Velmora"),
    ]
    check_unlearning_data(rows, "data/mine")


@pytest.mark.parametrize("role", ["retain", "neighbor", "general"])
def test_the_forget_image_on_a_kept_row_is_refused_by_content(tmp_path, role):
    Image.new("RGB", (4, 4), (5, 6, 7)).save(tmp_path / "ann.png")
    (tmp_path / "copy.png").write_bytes((tmp_path / "ann.png").read_bytes())
    rows = [
        Example("f1", "Ann", "forget", "Who is this?", "Ann", image=str(tmp_path / "ann.png")),
        _ex("r1", "Bob", "retain"),
        Example("k1", "Bob", role, "What is this?", "Bob", image=str(tmp_path / "copy.png")),
    ]
    with pytest.raises(ValueError, match=f"{role} row id 'k1' shows the same image .* id 'f1'"):
        check_unlearning_data(rows, "data/mine")


def test_the_run_names_the_jsonl_file_and_rows_of_an_overlap(tmp_path):
    from mmunlearn.data.jsonl import load_examples, row_locator, save_examples

    rows = [_ex("f1", "Ann", "forget"), _ex("r1", "Bob", "retain"), _ex("r2", "ANN", "retain")]
    save_examples(tmp_path / "rows.jsonl", rows)
    with pytest.raises(ValueError) as info:
        check_unlearning_data(load_examples(tmp_path), str(tmp_path), row_locator(tmp_path))
    assert f"{tmp_path / 'rows.jsonl'}, row 3 (id 'r2')" in str(info.value)
    assert f"{tmp_path / 'rows.jsonl'}, row 1 (id 'f1')" in str(info.value)
