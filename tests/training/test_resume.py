"""Kill a real `mmunlearn unlearn` process mid-run, resume it, and get the same weights."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mmunlearn.training.run import last_complete_checkpoint

STEPS, SAVE_EVERY = 40, 4


def unlearn_command(model, data, output_dir, *extra):
    settings = [
        f"train.steps={STEPS}",
        f"train.save_steps={SAVE_EVERY}",
        "train.batch_size=4",
        "train.eval_every=10",
        "train.lr=1e-3",
    ]
    args = [sys.executable, "-m", "mmunlearn", "unlearn", "--model", str(model)]
    args += ["--data", str(data), "--output-dir", str(output_dir), "--method", "vgid"]
    return args + [x for s in settings for x in ("--set", s)] + list(extra)


def run_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def weights(output_dir):
    return load_file(output_dir / "model" / "model.safetensors")


@pytest.mark.slow
def test_kill_and_resume_reaches_the_uninterrupted_weights(loaded, world_dir, tmp_path):
    model = tmp_path / "base"
    loaded.save(model)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(unlearn_command(model, world_dir, whole), env=run_env(), check=True)

    process = subprocess.Popen(
        unlearn_command(model, world_dir, killed), env=run_env(), stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while last_complete_checkpoint(killed / "checkpoints") is None:
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "model").exists(), "killed too late: the run had already finished"
    resumed_from = last_complete_checkpoint(killed / "checkpoints")
    assert 0 < int(resumed_from.name.split("-")[1]) < STEPS

    subprocess.run(unlearn_command(model, world_dir, killed, "--resume"), env=run_env(), check=True)
    expected, got = weights(whole), weights(killed)
    assert expected.keys() == got.keys()
    difference = max((expected[k] - got[k]).abs().max().item() for k in expected)
    assert difference == 0.0, f"resumed weights differ by up to {difference}"
    trajectory = json.loads((killed / "trajectory.json").read_text())
    assert [point["step"] for point in trajectory] == [0, 10, 20, 30, 40]
    assert trajectory == json.loads((whole / "trajectory.json").read_text())


def test_a_checkpoint_without_trainer_state_is_not_resumed_from(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert last_complete_checkpoint(tmp_path / "nothing-here") is None


def test_a_kill_inside_the_final_save_resumes_to_the_same_weights_without_training(
    loaded, world_dir, tmp_path, monkeypatch
):
    """The last checkpoint is written, then the run dies saving the model: resuming loads that
    checkpoint and trains no further step (the weights are the uninterrupted run's, bit for
    bit)."""
    from mmunlearn.cli import main
    from mmunlearn.training import run

    model = tmp_path / "base"
    loaded.save(model)
    settings = ("train.steps=2", "train.save_steps=2", "train.batch_size=2", "train.lr=1e-3")
    args = ["unlearn", "--model", str(model), "--data", str(world_dir), "--method", "vgid"]
    args += [item for setting in settings for item in ("--set", setting)]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main([*args, "--output-dir", str(whole)]) == 0

    def killed_while_saving(result, directory):
        raise KeyboardInterrupt("killed inside the final save")

    with monkeypatch.context() as patch:
        patch.setattr(run, "save_atomically", killed_while_saving)
        with pytest.raises(KeyboardInterrupt):
            main([*args, "--output-dir", str(killed)])
    assert last_complete_checkpoint(killed / "checkpoints").name == "checkpoint-2"
    assert not (killed / "model").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("the resumed run trained a step")

    monkeypatch.setattr(run.UnlearnTrainer, "training_step", no_training)
    assert main([*args, "--output-dir", str(killed), "--resume"]) == 0
    expected, got = weights(whole), weights(killed)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_a_checkpoint_of_another_length_or_damaged_is_named(tmp_path):
    from mmunlearn.training.run import checkpoint_state

    checkpoint = tmp_path / "checkpoint-4"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "max_steps": 4}))
    assert checkpoint_state(checkpoint, 4).global_step == 4
    with pytest.raises(
        ValueError, match=r"a run of 4 steps \(at step 4\); this run has train.steps=2"
    ):
        checkpoint_state(checkpoint, 2)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 4, "max_')
    with pytest.raises(ValueError, match=r"checkpoint-4/trainer_state.json: not valid JSON"):
        checkpoint_state(checkpoint, 4)
