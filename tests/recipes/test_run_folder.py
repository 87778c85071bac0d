"""A run's identity and the folder it owns (mmunlearn/recipes/run_folder.py)."""

import pytest

from mmunlearn.recipes.run_folder import (
    claim_output_dir,
    identity_differences,
    read_run,
    run_identity,
)
from mmunlearn.training.config import load_config


def identity(**config):
    base = {"config": {"method": "vgid", "train.lr": 3e-4}, "model": "a" * 64, "data": "b" * 64}
    return {**base, "config": {**base["config"], **config}}


def test_differences_name_each_setting_and_input():
    assert identity_differences(identity(), identity()) == []
    stored, current = identity(method="ga"), {**identity(**{"train.lr": 1e-3}), "model": "c" * 64}
    assert identity_differences(stored, current) == [
        "method: 'ga' there vs 'vgid' now",
        "train.lr: 0.0003 there vs 0.001 now",
        "model: other weights/files (sha256 aaaaaaaaaaaa… there vs cccccccccccc… now)",
    ]


def claim(folder, current, resume=False, overwrite=False):
    record = {"config": {"method": "vgid", "train": {"steps": 2}}}
    return claim_output_dir(folder, current, record, resume, overwrite)


def test_how_a_run_is_watched_is_not_its_identity(loaded, examples, tmp_path):
    model = tmp_path / "model"
    loaded.save(model)

    def of(*settings):
        return run_identity(load_config(None, list(settings)), model, examples, "jsonl", {})

    watched = of("train.save_steps=5", "train.logging_steps=1")
    assert watched == of() != of("train.seed=1")
    assert identity_differences(of(), of("train.seed=1")) == ["train.seed: 0 there vs 1 now"]


def test_the_same_run_resumes_and_another_is_refused(tmp_path):
    with claim(tmp_path / "run", identity()):
        pass
    with claim(tmp_path / "run", identity(), resume=True):  # the same identity: continued
        assert read_run(tmp_path / "run")["status"] == "running"
    with pytest.raises(ValueError, match="method: 'vgid' there vs 'ga' now"):
        with claim(tmp_path / "run", identity(method="ga"), resume=True):
            pass


def test_overwrite_clears_the_earlier_run_but_keeps_its_lock(tmp_path):
    folder = tmp_path / "run"
    with claim(folder, identity()):
        (folder / "model").mkdir()
        (folder / "model" / "weights").write_text("old")
    with claim(folder, identity(method="ga"), overwrite=True):
        assert sorted(p.name for p in folder.iterdir()) == [".mmunlearn.lock", "run.json"]
        assert read_run(folder)["identity"]["config"]["method"] == "ga"
