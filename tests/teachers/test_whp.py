import contextlib
import copy
import math

import pytest
import torch

from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder, answer_length
from mmunlearn.teachers import TeacherContext, build_teacher
from mmunlearn.teachers.whp import (
    align_answers,
    align_tokens,
    generated_anchors,
    generic_logits,
    load_anchors,
    translate,
)


def test_generic_logits_on_a_five_token_vocabulary_by_hand():
    base = torch.tensor([[[2.0, 1.0, 0.0, -1.0, 0.5]]])  # (1, 1, 5)
    reinforced = torch.tensor([[[4.0, 1.0, 0.5, -2.0, 0.5]]])
    anchored = torch.tensor([[[1.0, 3.0, 0.0, 0.0, 0.0]]])
    # ReLU(reinforced − base) = [2, 0, 0.5, 0, 0]; α = 2 → anchored − [4, 0, 1, 0, 0]
    expected = [-3.0, 3.0, -1.0, 0.0, 0.0]
    got = generic_logits(anchored, base, reinforced, alpha=2.0)[0, 0]
    torch.testing.assert_close(got, torch.tensor(expected))
    assert got.argmax() == 1  # the hard target: token 1, not the reinforced token 0
    total = sum(math.exp(z) for z in expected)
    soft = torch.softmax(got, -1)
    torch.testing.assert_close(soft, torch.tensor([math.exp(z) / total for z in expected]))


def test_zero_alpha_is_the_base_on_the_anchored_text():
    anchored, base, reinforced = torch.randn(3, 2, 4, 5).unbind(0)
    torch.testing.assert_close(generic_logits(anchored, base, reinforced, 0.0), anchored)


def test_align_tokens_when_an_anchor_changes_the_token_count():
    # "5 [10 11 12] 6 7": a three-token name translated to one token
    assert align_tokens([5, 10, 11, 12, 6, 7], [5, 20, 6, 7]) == [0, 1, -1, -1, 2, 3]
    # a one-token name translated to three tokens: the tokens after it still line up
    assert align_tokens([5, 10, 6, 7], [5, 20, 21, 22, 6, 7]) == [0, 1, 4, 5]
    # equal lengths map one to one; no change is the identity
    assert align_tokens([5, 10, 11, 6], [5, 20, 21, 6]) == [0, 1, 2, 3]
    assert align_tokens([1, 2, 3], [1, 2, 3]) == [0, 1, 2]


def test_align_answers_gathers_the_translated_logits_at_the_original_positions():
    original = torch.tensor([[5, 10, 11, 12, 6], [IGNORE_INDEX, IGNORE_INDEX, 3, 4, 9]])
    translated = torch.tensor([[IGNORE_INDEX, 5, 20, 6], [IGNORE_INDEX, 3, 4, 9]])
    logits = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)  # value = row*4 + pos
    aligned, found = align_answers(logits, translated, original)
    assert found.tolist() == [[True, True, False, False, True], [False, False, True, True, True]]
    assert aligned[0, :, 0].tolist() == [1.0, 2.0, 0.0, 0.0, 3.0]
    assert aligned[1, 2:, 0].tolist() == [5.0, 6.0, 7.0]


def test_translate_replaces_whole_words_longest_first():
    anchors = {"Talen Vosk": "Mika Tess", "Talen": "Mika", "Vosk": "Tess"}
    assert translate("Talen Vosk met Talen; Voskel stays.", anchors) == (
        "Mika Tess met Mika; Voskel stays."
    )
    assert generated_anchors("Talen Vosk", ("Mika Tess",), seed=0) == anchors


def test_anchors_load_from_yaml_or_json_and_errors_name_the_file(tmp_path):
    good = tmp_path / "anchors.json"
    good.write_text('{"Talen Vosk": "Mika Tess"}')
    assert load_anchors(str(good)) == {"Talen Vosk": "Mika Tess"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_anchors(str(bad))
    with pytest.raises(ValueError, match="pool"):
        generated_anchors("Talen Vosk", (), seed=0)


def context(loaded, reinforced):
    def access(model):
        @contextlib.contextmanager
        def held():
            yield model

        return held

    return TeacherContext(
        frozen=access(copy.deepcopy(loaded.model).eval()),
        encoder=PromptEncoder(loaded),
        swap_names=("Zorin Vale",),
        models={"reinforced": access(reinforced.eval())},
    )


def test_whp_teacher_with_an_unchanged_reinforced_model_is_the_base_on_anchored_text(
    loaded, examples
):
    ctx = context(loaded, copy.deepcopy(loaded.model))
    ex = next(e for e in examples if e.role == "forget" and e.image is None)
    assert ex.entity in ex.question
    student = ctx.encoder.collate([ex], [ctx.encoder.encode(ex)])
    labels = student["labels"][:, -answer_length(student["labels"]) :]
    targets = build_teacher({"name": "whp", "hard": False}).build(ctx, student, labels)

    anchored = ctx.encoder.encode(ex, question=ex.question.replace(ex.entity, "Zorin Vale"))
    with torch.no_grad(), ctx.frozen() as model:
        full = torch.log_softmax(model(input_ids=torch.tensor([anchored.input_ids])).logits[0], -1)
    positions = [i - 1 for i, t in enumerate(anchored.labels) if t != IGNORE_INDEX]
    torch.testing.assert_close(targets.logprobs[0], full[positions], atol=1e-5, rtol=1e-5)
    hard = build_teacher("whp").build(ctx, student, labels)
    assert hard.token_ids[0].tolist() == full[positions].argmax(-1).tolist()


def test_whp_teacher_needs_its_reinforced_model(loaded, examples):
    ctx = context(loaded, copy.deepcopy(loaded.model))
    ctx.models = {}
    ex = next(e for e in examples if e.role == "forget")
    batch = ctx.encoder.collate([ex], [ctx.encoder.encode(ex)])
    with pytest.raises(KeyError, match="reinforce phase"):
        build_teacher("whp").build(
            ctx, batch, batch["labels"][:, -answer_length(batch["labels"]) :]
        )
