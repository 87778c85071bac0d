import pytest

from mmunlearn.data.example import Example
from mmunlearn.data.splits import check_unlearning_data, group_by_role
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
