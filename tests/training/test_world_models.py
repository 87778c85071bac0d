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


def test_one_seed_trains_one_model(world_dir, tmp_path):
    """The seed covers the initial weights too: two runs of one recipe give the same model."""
    import torch
    from safetensors.torch import load_file

    from mmunlearn.testing import TINY_MODEL

    config = PretrainConfig(model=TINY_MODEL, steps=2, batch_size=4)
    weights = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        torch.manual_seed(len(weights))  # whatever the global generator holds before
        recipe = dataclasses.replace(config, seed=seed)
        path = world_model(world_dir, "base", tmp_path / run, recipe, progress=False)
        weights.append(load_file(str(path / "model.safetensors")))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_a_pretrained_lm_is_fine_tuned_on_the_world_with_lora_and_cached(
    world_dir, examples, tmp_path
):
    """`train-base --language-model`: the given checkpoint (here a tiny Llama with SmolLM2's
    chat template) fine-tuned with LoRA, merged, in its own template; the cache key follows
    the source's weights."""
    from mmunlearn.testing import tiny_family
    from mmunlearn.training.world_models import pretrained_config

    source = tmp_path / "lm"
    tiny_family("smollm2", examples).save(source)
    config = pretrained_config(str(source), steps=2, batch_size=2)
    path = world_model(world_dir, "base", tmp_path / "cache", config, progress=False)
    assert path.parent.name.startswith("base-pretrained-")
    loaded = load_model(path)
    assert loaded.model.config.model_type == "llama"
    assert not any("lora" in name for name, _ in loaded.model.named_parameters())  # merged
    assert loaded.tokenizer.chat_template == load_model(source).tokenizer.chat_template
    assert world_model(world_dir, "base", tmp_path / "cache", config, progress=False) == path
    tiny_family("smollm2", examples, seed=1).save(source)  # other weights, same folder
    assert world_model(world_dir, "base", tmp_path / "cache", config, progress=False) != path


def test_a_llava_on_an_lm_trains_in_two_stages_and_is_cached(world_dir, examples, tmp_path):
    """Stage 1 moves the vision tower and projector only, the LM frozen; stage 2 moves the LM
    (LoRA, merged) and the projector, not the vision tower."""
    import shutil

    import torch

    from mmunlearn.models.llava_on_lm import VisionTowerConfig, build_llava_on_lm
    from mmunlearn.testing import tiny_family
    from mmunlearn.training.world_models import llava_on_lm_config

    source = tmp_path / "lm"
    tiny_family("smollm2", examples).save(source)
    vision = VisionTowerConfig(image_size=32, patch_size=16, width=16, layers=1, heads=2)
    config = llava_on_lm_config(
        str(source), vision=vision, align_steps=2, steps=2, batch_size=4, warmup_steps=0
    )
    path = world_model(world_dir, "base", tmp_path / "cache", config, progress=False)
    assert path.parent.name.startswith("base-llava_lm-")
    torch.manual_seed(config.seed)
    start = build_llava_on_lm(source, vision).model.state_dict()
    aligned = load_model(path.parent / "stage1" / "model").model.state_dict()
    final = load_model(path).model.state_dict()
    assert start.keys() == aligned.keys() == final.keys()  # LoRA merged away

    def changed(weights, part):
        names = [k for k in start if part in k]
        assert names
        return {not torch.equal(start[k], weights[k]) for k in names}

    assert changed(aligned, "language_model") == {False}
    assert torch.equal(start["lm_head.weight"], aligned["lm_head.weight"])
    assert True in changed(aligned, "multi_modal_projector")
    assert True in changed(aligned, "vision_tower")
    # the tower, trained from scratch, keeps learning the portraits in stage 2 (the default)
    assert any(not torch.equal(aligned[k], final[k]) for k in start if "vision_tower" in k)
    assert any(not torch.equal(aligned[k], final[k]) for k in start if "multi_modal" in k)
    assert any(not torch.equal(aligned[k], final[k]) for k in start if "layers" in k)
    assert world_model(world_dir, "base", tmp_path / "cache", config, progress=False) == path
    # a run stopped during stage 2 continues from the saved stage 1 instead of aligning again
    stage1_log = path.parent / "stage1" / "train_log.json"
    aligned_at = stage1_log.stat().st_mtime_ns
    shutil.rmtree(path)
    assert world_model(world_dir, "base", tmp_path / "cache", config, progress=False) == path
    assert stage1_log.stat().st_mtime_ns == aligned_at
    assert (path / "config.json").is_file()


def test_the_oracle_aligns_without_the_forget_portraits(examples):
    from mmunlearn.data.splits import group_by_role
    from mmunlearn.data.world import IMAGE_QUESTIONS
    from mmunlearn.training.world_models import caption_rows

    by_role = group_by_role(examples)
    base, oracle = caption_rows(by_role, True), caption_rows(by_role, False)
    forget = {ex.entity for ex in by_role["forget"]}
    assert forget <= {ex.entity for ex in base}
    assert not forget & {ex.entity for ex in oracle}
    assert all(ex.image and ex.answer == ex.entity for ex in base)
    assert {ex.question for ex in base} == set(IMAGE_QUESTIONS["name"])


def test_stage_two_trains_the_vision_tower_unless_told_to_freeze_it():
    from mmunlearn.training.world_models import LlavaOnLM, lora_settings

    assert lora_settings(LlavaOnLM("lm"))["full_scope"] == "vision_tower+projector"
    assert lora_settings(LlavaOnLM("lm", tower_in_stage2=False))["full_scope"] == "projector"
