"""Bad inputs and faults of a run: configuration, CLI errors, resume, numerics, output folders.

Each row of `CASES` is one class (tests/bad_inputs/matrix.py says what a row checks)."""

import errno

import pytest
from matrix import Case, check_case, eval_argv, unlearn_argv

from mmunlearn.cli import main


def empty_forget(scene):
    (scene.world / "forget.jsonl").write_text("")
    return unlearn_argv(scene)


def config_file(scene, text):
    path = scene.tmp / "run.yaml"
    path.write_text(text)
    return [*unlearn_argv(scene), "--config", str(path)]


def model_config_json(scene, text):
    (scene.model / "config.json").write_text(text)
    return unlearn_argv(scene)


CASES = [
    Case("empty forget split", empty_forget, 2, ("no rows with role 'forget'",)),
    # configuration: refused, with the setting named, before data or models load
    Case(
        "a section set to a value",
        lambda scene: unlearn_argv(scene, "train=5"),
        2,
        ("train=5", "train is a section", "train.steps="),
    ),
    Case(
        "a misspelled component field",
        lambda scene: unlearn_argv(scene, "teacher.noise.knd=replace"),
        2,
        ("teacher.noise.knd", "did you mean 'kind'"),
    ),
    Case(
        "a NaN weight",
        lambda scene: unlearn_argv(scene, "forget_weight=nan"),
        2,
        ("forget_weight", "not NaN"),
    ),
    Case(
        "a learning rate of zero",
        lambda scene: unlearn_argv(scene, "train.lr=0"),
        2,
        ("train.lr=0.0", "finite number > 0"),
    ),
    Case(
        "malformed YAML config",
        lambda scene: config_file(scene, "train: {steps: 2\nmethod: ga\n"),
        2,
        ("run.yaml", "not valid YAML", "line 2"),
    ),
    Case(
        "a YAML config that is a list",
        lambda scene: config_file(scene, "- method: ga\n"),
        2,
        ("run.yaml", "holds a list", "expected a mapping"),
    ),
    Case(
        "a misspelled eval split",
        lambda scene: eval_argv(scene, "--splits", "forget,retian"),
        2,
        ("'retian' is not a role", "did you mean 'retain'"),
    ),
    Case(
        "a malformed model config.json",
        lambda scene: model_config_json(scene, '{"model_type": "llava", '),
        2,
        ("config.json", "not a valid JSON file"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_run_input(case, scene, capsys):
    check_case(case, scene, capsys)


def test_a_bug_inside_mmunlearn_shows_its_traceback_and_says_so(monkeypatch, capsys):
    """A KeyError of a dict lookup is no input check, even in mmunlearn's own code."""
    monkeypatch.setattr("mmunlearn.cli.cmd_list", {}.__getitem__)
    assert main(["list", "methods"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (KeyError" in err and "a bug" in err


def test_a_full_disk_is_an_os_error_in_one_line(scene, monkeypatch, capsys):
    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("mmunlearn.recipes.unlearn.atomic_write_text", full)
    assert main(unlearn_argv(scene)) == 1
    err = capsys.readouterr().err
    assert "OS error" in err and "No space left on device" in err and "config.yaml" in err
    assert "Traceback" not in err
