"""The CLI's choices come from the registries and recipes, not from copies of them."""

import pytest

from mmunlearn.cli import build_parser
from mmunlearn.training.world_models import MODEL_FAMILIES


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_every_world_model_family_is_a_choice_of_train_base_and_compare(family):
    parser = build_parser()
    base = parser.parse_args(["train-base", "--data", "w", "--model-family", family])
    compare = parser.parse_args(["compare", "--methods", "ga", "--model-family", family])
    assert base.model_family == compare.model_family == family


def test_a_family_without_a_recipe_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train-base", "--data", "w", "--model-family", "qwen2_vl"])
    assert "invalid choice" in capsys.readouterr().err


def test_list_rules_prints_every_selection_rule(capsys):
    from mmunlearn.cli import main
    from mmunlearn.training.selection import RULES

    assert main(["list", "rules"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in RULES.names())
