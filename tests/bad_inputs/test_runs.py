"""Bad inputs and faults of a run: configuration, CLI errors, resume, numerics, output folders.

Each row of `CASES` is one class (tests/bad_inputs/matrix.py says what a row checks)."""

import errno
import json
import shutil

import pytest
import torch
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


def earlier_run(scene, *settings, method="ga"):
    """A finished run (with its last checkpoint) in the scene's output folder."""
    assert main(unlearn_argv(scene, "train.save_steps=2", *settings, method=method)) == 0


def resume_as(*settings, method="ga", earlier=(), earlier_method="ga"):
    def build(scene):
        earlier_run(scene, *earlier, method=earlier_method)
        return [*unlearn_argv(scene, "train.save_steps=2", *settings, method=method), "--resume"]

    return build


def resume_on_other_data(scene):
    argv = resume_as()(scene)
    (scene.world / "general.jsonl").unlink()
    return argv


def second_run(scene):
    earlier_run(scene)
    return unlearn_argv(scene, method="vgid")


def folder_of_other_files(scene):
    scene.out.mkdir()
    (scene.out / "notes.txt").write_text("mine")
    return [*unlearn_argv(scene), "--overwrite"]


def truncated_weights(scene):
    path = scene.model / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    return unlearn_argv(scene)


def users_forget_file(scene):
    scene.out.mkdir()
    (scene.out / "forget.jsonl").write_text('{"my": "own rows"}\n')
    return ["world", "--output-dir", str(scene.out), "--n-forget", "2", "--n-retain", "4"]


def nan_weights(scene):
    from safetensors.torch import load_file, save_file

    path = scene.model / "model.safetensors"
    weights = load_file(path)
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, path, metadata={"format": "pt"})
    return eval_argv(scene)


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
        "a misspelled scheduler",
        lambda scene: unlearn_argv(scene, "train.scheduler=cosinee"),
        2,
        ("train.scheduler='cosinee'", "did you mean 'cosine'"),
    ),
    Case(
        "negative warmup",
        lambda scene: unlearn_argv(scene, "train.warmup_steps=-1"),
        2,
        ("train.warmup_steps=-1 must be >= 0",),
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
    # runs know who they are: --resume continues only the same run
    Case(
        "resume another method's run",
        resume_as(method="vgid"),
        2,
        ("--resume", "holds another run", "method: 'ga' there vs 'vgid' now"),
    ),
    Case(
        "resume with another learning rate",
        resume_as("train.lr=1e-3", earlier=("train.lr=3e-4",)),
        2,
        ("train.lr: 0.0003 there vs 0.001 now",),
    ),
    Case(
        "resume with fewer steps",
        resume_as("train.steps=1"),
        2,
        ("train.steps: 2 there vs 1 now",),
    ),
    Case(
        "resume on other data",
        resume_on_other_data,
        2,
        ("data: other records/images",),
    ),
    Case(
        "resume where no run is",
        lambda scene: [*unlearn_argv(scene), "--resume"],
        2,
        ("--resume", "holds no run to resume"),
    ),
    Case(
        "resume and overwrite at once",
        lambda scene: [*unlearn_argv(scene), "--resume", "--overwrite"],
        2,
        ("--resume and --overwrite exclude each other",),
    ),
    # output folders are owned
    Case(
        "a second run into a finished run's folder",
        second_run,
        2,
        ("holds another run's results", "method 'ga'", "--overwrite", "--resume"),
    ),
    Case(
        "overwrite a folder of someone else's files",
        folder_of_other_files,
        2,
        ("not an mmunlearn run", "notes.txt", "does not replace files it did not write"),
    ),
    Case(
        "a world written over a user's files",
        users_forget_file,
        2,
        ("forget.jsonl already there", "not written by `mmunlearn world`"),
    ),
    # numerical failure stops the run: no model, the run marked failed, exit 2
    Case(
        "a learning rate that diverges",
        lambda scene: unlearn_argv(scene, "train.steps=3", "train.lr=1e10"),
        2,
        ("training diverged at step", "= nan", "no model written", "train.lr (now 1e+10)"),
        may_write=(".mmunlearn.lock", "run.json", "config.yaml"),
    ),
    Case(
        "evaluate weights that hold NaN",
        nan_weights,
        2,
        ("the weights hold NaN", "not finite"),
    ),
    Case(
        "truncated model weights",
        truncated_weights,
        2,
        ("model", "weights cannot be read", "truncated or damaged"),
    ),
    Case(
        "model weights missing",
        lambda scene: (scene.model / "model.safetensors").unlink() or unlearn_argv(scene),
        2,
        ("no file named model.safetensors",),
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


def test_a_diverged_run_is_marked_failed_and_claims_no_model(scene, capsys):
    assert main(unlearn_argv(scene, "train.steps=3", "train.lr=1e10")) == 2
    run = json.loads((scene.out / "run.json").read_text())
    assert run["status"] == "failed" and "training diverged" in run["failure"]
    assert not (scene.out / "model").exists()


def test_a_failed_overwrite_leaves_no_old_model(scene, capsys):
    """--overwrite clears the earlier run first: its model never sits under the new config."""
    earlier_run(scene)
    assert (scene.out / "model").is_dir()
    assert main([*unlearn_argv(scene, "train.lr=1e10", "train.steps=3"), "--overwrite"]) == 2
    assert not (scene.out / "model").exists()
    assert not list(scene.out.glob("checkpoints/checkpoint-*"))  # the earlier run's
    assert json.loads((scene.out / "run.json").read_text())["status"] == "failed"


def test_a_folder_another_run_holds_is_refused(scene, capsys):
    from mmunlearn.recipes.run_folder import folder_lock

    scene.out.mkdir()
    with folder_lock(scene.out):  # another run, writing there now
        assert main(unlearn_argv(scene)) == 2
    assert "another run is writing there (pid" in capsys.readouterr().err
    assert not (scene.out / "run.json").exists()


def test_resuming_a_complete_run_trains_nothing_and_keeps_its_model(scene, monkeypatch, capsys):
    from mmunlearn.training import run

    earlier_run(scene)
    before = (scene.out / "model" / "model.safetensors").read_bytes()
    monkeypatch.setattr(run, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert main([*unlearn_argv(scene, "train.save_steps=2", method="ga"), "--resume"]) == 0
    assert (scene.out / "model" / "model.safetensors").read_bytes() == before
    assert json.loads((scene.out / "run.json").read_text())["status"] == "complete"


def test_a_world_may_be_written_again_over_its_own_files(tmp_path):
    args = ["world", "--output-dir", str(tmp_path / "w"), "--n-forget", "2", "--n-retain", "4"]
    assert main(args) == 0
    assert main([*args, "--seed", "1"]) == 0


def test_resuming_a_complete_run_whose_model_is_gone_rebuilds_it_from_the_last_checkpoint(
    scene, capsys
):
    earlier_run(scene)
    before = (scene.out / "model" / "model.safetensors").read_bytes()
    shutil.rmtree(scene.out / "model")
    assert main([*unlearn_argv(scene, "train.save_steps=2", method="ga"), "--resume"]) == 0
    assert (scene.out / "model" / "model.safetensors").read_bytes() == before
