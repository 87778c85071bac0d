"""Model and processor checks at load time: a mismatch fails before any data is encoded."""

import json
import shutil

import pytest

from mmunlearn.models.loading import load_model
from mmunlearn.testing import foreign_tokenizer, tiny_llava


@pytest.fixture(scope="module")
def saved_once(examples, tmp_path_factory):
    loaded = tiny_llava(examples)
    path = tmp_path_factory.mktemp("loading") / "model"
    loaded.save(path)
    return path, loaded


@pytest.fixture()
def saved(saved_once, tmp_path):
    """A private copy of the saved tiny LLaVA, and the model it was saved from."""
    path, loaded = saved_once
    shutil.copytree(path, tmp_path / "model")
    return tmp_path / "model", loaded


def test_the_saved_tiny_model_loads(saved):
    path, _ = saved
    assert load_model(path).kind == "vision_language"


def test_a_smaller_tokenizer_from_another_model_is_refused_by_its_special_ids(saved):
    """Fewer tokens than the embedding has rows passes the size check; its end-of-text token
    is not the model's, so every label it writes would teach the wrong stop."""
    from transformers import AutoProcessor

    path, loaded = saved
    other = foreign_tokenizer()
    assert len(other) < loaded.model.get_input_embeddings().num_embeddings
    processor = AutoProcessor.from_pretrained(path)
    processor.tokenizer = other
    processor.save_pretrained(path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert "eos token '<|endoftext|>' has id 6" in message and "eos_token_id=2" in message
    assert "the processor does not belong to this model" in message


def test_a_config_naming_another_special_token_of_the_tokenizer_as_eos_loads(saved):
    """A chat model's config may end text at another special token of its own tokenizer (an
    end-of-turn marker) than the tokenizer's eos; that is not a foreign tokenizer."""
    path, _ = saved
    config = json.loads((path / "config.json").read_text())
    config["text_config"]["eos_token_id"] = 0  # <pad>: special in this tokenizer
    (path / "config.json").write_text(json.dumps(config))
    (path / "generation_config.json").unlink()
    assert load_model(path).tokenizer.eos_token_id == 2


def test_an_image_token_id_that_is_not_the_processors_is_refused(saved):
    path, _ = saved
    config = json.loads((path / "config.json").read_text())
    config["image_token_id"] = 3  # another model's: the processor's <image> is id 4
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"image token '<image>' has id 4 but .* image_token_id=3"):
        load_model(path)


def test_a_model_folder_without_tokenizer_files_fails_at_load(saved):
    path, _ = saved
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).unlink()
    with pytest.raises(ValueError, match=r"no tokenizer files there \(looked for tokenizer.json"):
        load_model(path)
