import pytest

from mmunlearn.models.lora import lora_target, train_in_full
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig, load_config
from mmunlearn.training.run import add_lora


def adapted_modules(loaded, scope):
    """Module names (without peft's prefix) that get a LoRA adapter under `scope`."""
    peft_model = add_lora(loaded.model, TrainConfig(lora=True, lora_scope=scope))
    return {
        name.removeprefix("base_model.model.")
        for name, module in peft_model.named_modules()
        if hasattr(module, "lora_A") and not name.endswith("lora_A")
    }


def part(names, part_name):
    return {n for n in names if n.startswith(f"model.{part_name}.") or n.startswith(part_name)}


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("language_model", {"language_model"}),
        ("projector", {"multi_modal_projector"}),
        ("vision_tower", {"vision_tower"}),
        ("language_model+projector", {"language_model", "multi_modal_projector"}),
        ("all", {"language_model", "multi_modal_projector", "vision_tower"}),
    ],
)
def test_each_scope_adapts_exactly_its_part(loaded, scope, expected):
    names = adapted_modules(loaded, scope)
    parts = {"language_model", "multi_modal_projector", "vision_tower"}
    assert {p for p in parts if part(names, p)} == expected
    assert not any("lm_head" in n or "embed" in n for n in names)
    if "language_model" in expected:  # every attention and MLP projection of the text model
        suffixes = {n.rsplit(".", 1)[-1] for n in part(names, "language_model")}
        assert suffixes == {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        }
    if "multi_modal_projector" in expected:
        assert part(names, "multi_modal_projector") == {
            "model.multi_modal_projector.linear_1",
            "model.multi_modal_projector.linear_2",
        }


def test_a_regex_scope_adapts_the_modules_it_names(loaded):
    names = adapted_modules(loaded, r"re:.*language_model\.layers\.0\.self_attn\.(q|v)_proj")
    assert names == {
        "model.language_model.layers.0.self_attn.q_proj",
        "model.language_model.layers.0.self_attn.v_proj",
    }


def test_a_regex_matching_nothing_is_named(loaded):
    with pytest.raises(ValueError, match=r"lora_scope='re:nothing_here'"):
        adapted_modules(loaded, "re:nothing_here")


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("language_modle", "unknown scope 'language_modle' — did you mean 'language_model'"),
        ("language_model+vision", "unknown scope 'vision'"),
        ("re:(", "invalid regex"),
        ("re:", "empty regex"),
        ({"re": None}, "expected a string"),  # what YAML makes of an unquoted `re:`
    ],
)
def test_bad_scopes_are_refused_with_the_allowed_ones(scope, message):
    with pytest.raises(ValueError, match=message):
        lora_target(scope)
    with pytest.raises(ValueError, match="train.lora_scope"):
        TrainConfig(lora_scope=scope)


def test_a_regex_scope_passes_through_the_command_line_overrides():
    config = load_config(None, [r"train.lora_scope=re:.*\.q_proj"])
    assert lora_target(config.train.lora_scope) == r".*\.q_proj"


@pytest.mark.parametrize("family", ["llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3"])
def test_the_three_scopes_split_every_vision_language_family(family, examples):
    def adapted(scope):
        return adapted_modules(tiny_family(family, examples), scope)

    language, projector, vision = (
        adapted(s) for s in ("language_model", "projector", "vision_tower")
    )
    assert language and projector and vision, (len(language), len(projector), len(vision))
    assert not (language & projector or language & vision or projector & vision)
    assert language | projector | vision == adapted("all")


def trainable_parts(model):
    parts = ("language_model", "multi_modal_projector", "vision_tower", "lm_head")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return {p for p in parts if any(f"{p}." in n for n in names)}


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("projector", {"multi_modal_projector"}),
        ("vision_tower+projector", {"vision_tower", "multi_modal_projector"}),
        ("language_model", {"language_model", "lm_head"}),
    ],
)
def test_a_full_scope_trains_its_whole_part_and_freezes_the_rest(loaded, scope, expected):
    chosen = train_in_full(loaded.model, scope, lora=False)
    assert trainable_parts(loaded.model) == expected
    if "vision_tower" in expected:  # norms and embeddings too, not only linear layers
        assert any("layer_norm" in n for n in chosen)
        assert any("patch_embedding" in n for n in chosen)


def test_with_lora_the_adapters_stay_trainable_beside_the_full_scope(loaded):
    peft_model = add_lora(loaded.model, TrainConfig(lora=True))
    train_in_full(peft_model, "projector", lora=True)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    adapters = [n for n in trainable if ".lora_" in n]
    assert adapters and all("language_model" in n for n in adapters)
    assert {n for n in trainable if n not in adapters} == {
        n for n, _ in peft_model.named_parameters() if "multi_modal_projector" in n
    }


def test_bad_full_scopes_name_the_setting(loaded):
    with pytest.raises(ValueError, match="train.full_scope='projektor'.*did you mean 'projector'"):
        TrainConfig(full_scope="projektor")
    with pytest.raises(ValueError, match="matches no parameter"):
        train_in_full(loaded.model, "re:nothing\\..*", lora=False)


def test_a_full_scope_beside_lora_is_refused_where_the_teacher_is_the_student(loaded, examples):
    """With LoRA the teacher is the student with adapters off: weights trained in full would
    move it too."""
    from mmunlearn.data.splits import group_by_role
    from mmunlearn.methods import build_method
    from mmunlearn.training.run import train

    config = TrainConfig(lora=True, full_scope="projector", steps=1)
    with pytest.raises(ValueError, match="train.full_scope='projector' with train.lora=true"):
        train(loaded, build_method("vgid"), group_by_role(examples), config, "unused")
