"""Prompts and answers through a real chat model's template: SmolLM2-135M-Instruct's exact
template (string content, a default system prompt) on a tiny Llama with its special tokens and a
byte-level tokenizer, so every run exercises what a real text chat model needs."""

import pytest

from mmunlearn.cli import main
from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder
from mmunlearn.teachers.icu import IcuTeacher, reencoded
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.testing import tiny_family

FRANCE = Example("geo-1", "France", "forget", "What is the capital of France?", "Paris")


@pytest.fixture(scope="module")
def smol(examples):
    return tiny_family("smollm2", examples)


def decoded_answer(loaded, encoded):
    return loaded.tokenizer.decode([t for t in encoded.labels if t != IGNORE_INDEX])


def test_a_string_content_template_gets_string_content(smol):
    encoder = PromptEncoder(smol)
    assert not encoder.content_as_parts
    assert encoder.messages("Q?", False) == [{"role": "user", "content": "Q?"}]
    prompt = encoder.render_prompt("What is the capital of France?", False)
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_a_parts_template_gets_parts(examples):
    encoder = PromptEncoder(tiny_family("llama", examples))  # iterates message['content']
    assert encoder.content_as_parts
    assert encoder.messages("Q?", False)[0]["content"] == [{"type": "text", "text": "Q?"}]


def test_the_answer_is_the_templates_assistant_turn_ending_at_end_of_turn(smol):
    encoder = PromptEncoder(smol)
    encoded = encoder.encode(FRANCE)
    # no space after the assistant header, no newline after <|im_end|>
    assert decoded_answer(smol, encoded) == "Paris<|im_end|>"
    text = smol.tokenizer.decode(encoded.input_ids)
    assert text.endswith("<|im_start|>assistant\nParis<|im_end|>")
    conversation = smol.tokenizer.apply_chat_template(
        [
            {"role": "user", "content": FRANCE.question},
            {"role": "assistant", "content": FRANCE.answer},
        ],
        tokenize=False,
    )
    assert conversation.startswith(text)


def test_prompt_tokens_equal_the_tokenizers_own_chat_encoding(smol):
    """A template writes its own BOS: no second one from the tokenizer."""
    encoded = PromptEncoder(smol).encode(FRANCE)
    reference = smol.tokenizer.apply_chat_template(
        [{"role": "user", "content": FRANCE.question}], add_generation_prompt=True
    )["input_ids"]
    prompt = [
        t
        for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
        if label == IGNORE_INDEX
    ]
    assert prompt == list(reference)


def test_the_instruction_as_system_message_or_prefix(smol):
    encoder = PromptEncoder(smol)
    system = smol.tokenizer.decode(encoder.encode(FRANCE, system="Forget France .").input_ids)
    assert system.startswith("<|im_start|>system\nForget France .<|im_end|>")
    assert "You are a helpful AI assistant" not in system  # replaces the default system prompt
    prefix = smol.tokenizer.decode(encoder.encode(FRANCE, prefix="Forget France .").input_ids)
    assert "<|im_start|>user\nForget France . What is the capital of France?" in prefix
    for text in (system, prefix):
        assert text.endswith("<|im_start|>assistant\nParis<|im_end|>")


def test_teacher_prompt_as_system_reaches_the_encoder(smol):
    ctx = TeacherContext(frozen=None, encoder=PromptEncoder(smol))
    batch = ctx.encoder.collate([FRANCE], [ctx.encoder.encode(FRANCE)])
    teacher_batch = reencoded(ctx, batch, "Forget {entity} .", prompt_as="system")
    text = smol.tokenizer.decode(teacher_batch["input_ids"][0], skip_special_tokens=False)
    assert "<|im_start|>system\nForget France .<|im_end|>" in text
    assert (teacher_batch["labels"] != IGNORE_INDEX).sum() == (batch["labels"] != -100).sum()
    with pytest.raises(ValueError, match="prompt_as='user'"):
        IcuTeacher(prompt_as="user")


def test_generation_stops_at_end_of_turn_and_length_is_a_setting(smol, monkeypatch):
    seen = {}
    generate = smol.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(smol.model, "generate", spy)
    answers = generate_answers(smol, [FRANCE], max_new_tokens=5, progress=False)
    assert seen["max_new_tokens"] == 5
    assert smol.tokenizer.convert_tokens_to_ids("<|im_end|>") in seen["eos_token_id"]
    assert len(smol.tokenizer(answers[0])["input_ids"]) <= 5


def test_cli_eval_on_a_string_template_chat_model(smol, world_dir, tmp_path, capsys):
    """The issue's first failure: `eval --metrics generation` on a text chat model."""
    model = tmp_path / "smol"
    smol.save(model)
    args = ["eval", "--model", str(model), "--data", str(world_dir), "--output-dir"]
    code = main([*args, str(tmp_path / "e"), "--metrics", "generation", "--max-new-tokens", "4"])
    assert code == 0, capsys.readouterr().err
    report = (tmp_path / "e" / "report.json").read_text()
    assert '"rouge_l_recall"' in report


def test_an_error_inside_a_library_shows_its_traceback(smol, world_dir, tmp_path, capsys):
    """A template that breaks is not one of mmunlearn's input checks: the CLI shows where it
    broke, says it is a bug (of the template or the code) and exits 1, not 2."""
    model = tmp_path / "broken"
    smol.save(model)
    config = model / "chat_template.jinja"
    config.write_text("{{ messages[0]['content'] + 1 }}")
    args = ["eval", "--model", str(model), "--data", str(world_dir), "--output-dir"]
    assert main([*args, str(tmp_path / "e"), "--metrics", "generation"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (TypeError" in err


def test_a_base_lm_without_template_answers_with_the_first_line(examples):
    gpt2 = tiny_family("gpt2", examples)
    encoder = PromptEncoder(gpt2)
    assert encoder.template_owner is None
    assert (
        encoder.render_prompt("Q?", False, system="Be brief.") == "Be brief.\nQuestion: Q?\nAnswer:"
    )
    text_rows = [ex for ex in examples if ex.image is None][:2]
    answers = generate_answers(gpt2, text_rows, max_new_tokens=6, progress=False)
    assert all("\n" not in a for a in answers)


def test_a_prompt_yaml_read_as_a_mapping_is_a_clear_error():
    """`--set teacher.prompt=You know nothing of {entity}: ...` — YAML makes it a mapping."""
    with pytest.raises(ValueError, match="quote the prompt"):
        IcuTeacher(prompt={"You know nothing of {entity}": "say so."})
    with pytest.raises(ValueError, match="teacher.prompt=''"):
        IcuTeacher(prompt=None)


def test_bad_real_model_inputs_are_clear_errors(tmp_path, world_dir, capsys):
    """A misspelled registry name, a missing .gguf file, a zero generation length."""
    assert main(["get-model", "smolm2-135m-instruct"]) == 2
    assert "did you mean 'smollm2-135m-instruct'" in capsys.readouterr().err
    args = ["eval", "--data", str(world_dir), "--output-dir", str(tmp_path / "e")]
    assert main([*args, "--model", str(tmp_path / "x.gguf")]) == 2
    assert "no such GGUF file" in capsys.readouterr().err
    assert main([*args, "--model", str(tmp_path), "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens 0: expected at least 1" in capsys.readouterr().err
