"""One builder from configuration to components: nested fields from types, unknown and
inapplicable fields refused with the config path, all before any data or model loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from mmunlearn.components import OnlyFor, build_component
from mmunlearn.losses.divergences import build_loss
from mmunlearn.methods import MethodSpec, TermSpec, build_method
from mmunlearn.teachers import VisualNoise, build_teacher
from mmunlearn.training.config import UnlearnConfig, load_config, method_of


@dataclass(frozen=True)
class Inner:
    only_for: ClassVar[OnlyFor] = OnlyFor("mode", {"width": ("wide",)})

    mode: str = "narrow"
    width: float = 1.0


@dataclass(frozen=True)
class Outer:
    anything: Inner | None = Inner()  # any field name: the type makes it a component
    rows: int = 2
    parts: Inner = field(default_factory=Inner)


def test_nested_components_come_from_the_type_not_the_key_name():
    built = build_component(Outer, {"anything": {"mode": "wide", "width": 3}, "parts": {}})
    assert built == Outer(Inner("wide", 3.0), 2, Inner())
    assert isinstance(built.anything.width, float)
    assert build_component(Outer, {"anything": "none"}).anything is None
    assert build_component(Outer, {"rows": "4"}).rows == 4  # YAML text for a number


def test_unknown_fields_name_the_path_the_known_ones_and_the_closest():
    with pytest.raises(KeyError, match=r"'run\.anything\.mdoe'.*did you mean 'mode'.*known: mode"):
        build_component(Outer, {"anything": {"mdoe": "wide"}}, "run")
    with pytest.raises(TypeError):  # also a TypeError, like Python's unexpected keyword
        build_component(Outer, {"rowz": 1})
    with pytest.raises(ValueError, match=r"config run\.rows='many': expected a int"):
        build_component(Outer, {"rows": "many"}, "run")


def test_a_field_of_another_variant_is_refused_not_ignored():
    with pytest.raises(ValueError, match=r"x\.anything\.width does not apply with .*mode='narrow'"):
        build_component(Outer, {"anything": {"width": 2.0}}, "x")


def test_teacher_noise_errors_name_the_config_path():
    with pytest.raises(
        KeyError, match=r"'teacher\.noise\.knd' of VisualNoise — did you mean 'kind'"
    ):
        build_teacher({"name": "vgid", "noise": {"knd": "gaussian"}})
    with pytest.raises(ValueError, match=r"teacher\.noise\.std does not apply with .*'replace'"):
        build_teacher({"name": "vgid", "noise": {"kind": "replace", "std": 2.0}})
    with pytest.raises(ValueError, match=r"teacher\.noise\.step does not apply"):
        build_teacher({"name": "visual_noise", "noise": {"kind": "gaussian", "step": 10}})
    noise = build_teacher({"name": "vgid", "noise": {"kind": "diffusion", "step": 10}}).noise
    assert noise == VisualNoise("diffusion", step=10)
    with pytest.raises(KeyError, match=r"teacher\.name: unknown teacher 'vgd'"):
        build_teacher({"name": "vgd"})


def test_loss_errors_name_the_config_path_and_numbers_reach_text_fields():
    with pytest.raises(
        KeyError, match=r"'loss\.betta' of loss 'npo' \(NPO\) — did you mean 'beta'"
    ):
        build_loss({"name": "npo", "betta": 0.5})
    assert build_loss({"name": "dpo", "scale": 1}).scale == "1"  # `--set loss.scale=1`


def test_a_field_the_methods_teacher_lacks_is_refused():
    """`teacher.noise` means nothing to icu_distill's teacher: refused, not carried along."""
    with pytest.raises(KeyError, match=r"'teacher\.noise' of teacher 'icu'"):
        build_method("icu_distill", teacher={"noise": {"kind": "gaussian"}})
    untuned = MethodSpec("x", "", "", terms=(TermSpec("forget", "labels", "cross_entropy"),))
    with pytest.raises(ValueError, match="takes no teacher or loss options"):
        untuned.build(loss={"name": "jsd"})


def test_a_run_config_fails_on_its_components_with_their_paths():
    config = load_config(None, ["teacher.noise.knd=gaussian"])
    with pytest.raises(KeyError, match=r"teacher\.noise\.knd.*did you mean 'kind'"):
        method_of(config)
    with pytest.raises(KeyError, match=r"sampler: unknown sampler 'modualr'"):
        method_of(UnlearnConfig(sampler="modualr"))
    with pytest.raises(KeyError, match=r"unknown config key 'train\.lrr'.*did you mean 'lr'"):
        load_config(None, ["train.lrr=1e-4"])


def test_unlearn_checks_the_config_before_it_loads_the_data(tmp_path):
    from mmunlearn.recipes.unlearn import unlearn

    config = load_config(None, ["teacher.noise.kind=replace", "teacher.noise.std=2"])
    missing = tmp_path / "no-such-data"  # loading it would fail with another error
    with pytest.raises(ValueError, match=r"teacher\.noise\.std does not apply"):
        unlearn(tmp_path / "no-such-model", missing, config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
