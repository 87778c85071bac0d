"""World models: a text-only causal LM trained on the world's text rows, cached by content hash."""

import dataclasses

from mmunlearn.models.loading import load_model
from mmunlearn.models.tiny import TinyCausalLMConfig
from mmunlearn.training.world_models import PretrainConfig, pretrain_config, world_model

TINY_TEXT = TinyCausalLMConfig(family="gpt2", width=32, layers=1, heads=2, max_positions=128)


def test_a_text_world_model_is_trained_once_and_cached(world_dir, tmp_path):
    config = dataclasses.replace(pretrain_config("gpt2", steps=2, batch_size=4), model=TINY_TEXT)
    path = world_model(world_dir, "base", tmp_path, config, progress=False)
    assert path.parent.name.startswith("base-gpt2-")
    loaded = load_model(path)
    assert loaded.kind == "causal_lm" and loaded.model.config.model_type == "gpt2"
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert world_model(world_dir, "base", tmp_path, config, progress=False) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not trained again
    llama = dataclasses.replace(config, model=dataclasses.replace(TINY_TEXT, family="llama"))
    assert world_model(world_dir, "oracle", tmp_path, llama, progress=False).parent.name.startswith(
        "oracle-llama-"
    )


def test_the_llava_recipe_is_the_default_family():
    assert pretrain_config("llava", seed=3) == PretrainConfig(seed=3)
