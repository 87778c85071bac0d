"""The scene every bad-input row damages: private copies of the tiny world and a saved model."""

import shutil

import pytest
from matrix import Scene


@pytest.fixture(scope="session")
def saved_tiny_model(examples, tmp_path_factory):
    from mmunlearn.testing import tiny_llava

    loaded = tiny_llava(examples)
    path = tmp_path_factory.mktemp("bad_inputs") / "tiny-llava"
    loaded.model.save_pretrained(path)
    loaded.processor.save_pretrained(path)
    return path


@pytest.fixture()
def scene(world_dir, saved_tiny_model, tmp_path):
    world = tmp_path / "world"
    model = tmp_path / "model"
    shutil.copytree(world_dir, world)
    shutil.copytree(saved_tiny_model, model)
    return Scene(tmp=tmp_path, world=world, model=model, out=tmp_path / "out")
