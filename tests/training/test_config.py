from pathlib import Path

import pytest

from mmunlearn.training.config import UnlearnConfig, load_config

PRESETS = sorted((Path(__file__).parents[2] / "data" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_loads_and_builds_its_method(path):
    from mmunlearn.methods import build_method

    config = load_config(path, [])
    assert isinstance(config, UnlearnConfig)
    build_method(config.method, teacher=config.teacher)


def test_overrides_reach_nested_fields_and_numbers_are_coerced():
    config = load_config(
        None, ["train.lr=1e-4", "teacher.noise.kind=gaussian", "method=icu_distill"]
    )
    assert config.train.lr == 1e-4 and isinstance(config.train.lr, float)
    assert config.teacher == {"noise": {"kind": "gaussian"}}
    assert config.method == "icu_distill"


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="train.steps='many'"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ValueError, match="key.sub=value"):
        load_config(None, ["train.steps"])
    with pytest.raises(ValueError, match="lora_scope"):
        load_config(None, ["train.lora_scope=everything"])


def test_yaml_off_stays_the_word_off_in_a_text_field():
    """YAML 1.1 reads `off` as false; `train.fused_head=off` must still mean "off"."""
    assert load_config(None, ["train.fused_head=off"]).train.fused_head == "off"
    assert load_config(None, ["train.fused_head=chunked"]).train.fused_head == "chunked"
    with pytest.raises(ValueError, match="fused_head='on'"):
        load_config(None, ["train.fused_head=on"])


def test_the_demo_runs_the_vgid_preset():
    """The demo reads data/presets/vgid.yaml (no copy of it): the same method as its settings."""
    from mmunlearn.demo import DEMO_UNLEARN
    from mmunlearn.methods import build_method
    from mmunlearn.training.config import method_of

    assert DEMO_UNLEARN == load_config(PRESETS[0].parent / "vgid.yaml", [])
    assert method_of(DEMO_UNLEARN) == build_method(
        "vgid", teacher={"prompt": "", "swap_names": True}
    )
    assert (DEMO_UNLEARN.train.steps, DEMO_UNLEARN.train.lr, DEMO_UNLEARN.train.batch_size) == (
        40,
        3e-4,
        16,
    )
