import contextlib
import copy

import pytest
import torch

from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder
from mmunlearn.teachers import TEACHERS, TeacherContext, VisualNoise, build_teacher


def make_context(loaded):
    frozen = copy.deepcopy(loaded.model).eval()

    @contextlib.contextmanager
    def frozen_model():
        yield frozen

    return TeacherContext(
        frozen=frozen_model,
        encoder=PromptEncoder(loaded),
        swap_names=("Zorin Vale", "Mika Tess"),
        models={"reinforced": frozen_model},  # WHP's reinforced model; here the base itself
    )


def student_batch(loaded, examples):
    encoder = PromptEncoder(loaded)
    chosen = [ex for ex in examples if ex.role == "forget"][:6]
    return encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])


def test_every_registered_teacher_runs_with_defaults(loaded, examples):
    ctx = make_context(loaded)
    batch = student_batch(loaded, examples)
    labels = batch["labels"][:, -answer_length_of(batch) :]
    for name in TEACHERS.names():
        targets = build_teacher(name).build(ctx, batch, labels)
        assert torch.equal(targets.mask, labels != IGNORE_INDEX), name
        if targets.logprobs is not None:
            assert targets.logprobs.dtype == torch.float32
            sums = targets.logprobs.exp().sum(-1)[targets.mask]
            torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-4, rtol=0)


def answer_length_of(batch):
    return int((batch["labels"] != IGNORE_INDEX).sum(-1).max())


def test_prompt_teacher_lines_up_with_the_students_answer_tokens(loaded, examples):
    """The icu teacher's targets, checked by hand against a full forward of the prefixed prompt."""
    ctx = make_context(loaded)
    ex = next(e for e in examples if e.role == "forget" and e.image is None)
    encoder = ctx.encoder
    student = encoder.collate([ex], [encoder.encode(ex)])
    labels = student["labels"][:, -answer_length_of(student) :]
    targets = build_teacher("icu").build(ctx, student, labels)

    prefixed = encoder.encode(ex, prefix=f"Forget {ex.entity} .")
    ids = torch.tensor([prefixed.input_ids])
    with torch.no_grad(), ctx.frozen() as model:
        full = torch.log_softmax(model(input_ids=ids).logits[0], -1)  # (T, V)
    answer_positions = [i for i, t in enumerate(prefixed.labels) if t != IGNORE_INDEX]
    assert [prefixed.input_ids[i] for i in answer_positions] == labels[0].tolist()
    by_hand = full[[i - 1 for i in answer_positions]]  # logits at t predict token t + 1
    torch.testing.assert_close(targets.logprobs[0], by_hand, atol=1e-5, rtol=1e-5)
    assert len(prefixed.input_ids) > student["input_ids"].shape[1]  # the teacher saw more


def test_without_intervention_the_vgid_teacher_is_the_base(loaded, examples):
    ctx = make_context(loaded)
    batch = student_batch(loaded, examples)
    labels = batch["labels"][:, -answer_length_of(batch) :]
    base = build_teacher("base").build(ctx, batch, labels)
    identity = build_teacher(
        {"name": "vgid", "prompt": "", "noise": {"kind": "gaussian", "std": 0.0}}
    )
    torch.testing.assert_close(identity.build(ctx, batch, labels).logprobs, base.logprobs)


def test_visual_noise_changes_image_rows_only(loaded, examples):
    ctx = make_context(loaded)
    batch = student_batch(loaded, examples)
    labels = batch["labels"][:, -answer_length_of(batch) :]
    base = build_teacher("base").build(ctx, batch, labels).logprobs
    noised = (
        build_teacher({"name": "visual_noise", "noise": {"kind": "replace"}})
        .build(ctx, batch, labels)
        .logprobs
    )
    for row, ex in enumerate(batch["examples"]):
        same = torch.allclose(base[row], noised[row], atol=1e-6)
        assert same == (ex.image is None), ex.id


def test_entity_swap_needs_a_name_pool(loaded, examples):
    ctx = make_context(loaded)
    ctx.swap_names = ()
    batch = student_batch(loaded, examples)
    labels = batch["labels"][:, -answer_length_of(batch) :]
    with pytest.raises(ValueError, match="pool of unseen names"):
        build_teacher("entity_swap").build(ctx, batch, labels)


def test_teacher_spec_errors_are_helpful():
    with pytest.raises(KeyError, match="did you mean 'vgid'"):
        build_teacher("vgd")
    with pytest.raises(ValueError, match="placeholder"):
        build_teacher({"name": "icu", "prompt": "Forget them."})
    with pytest.raises(TypeError, match="VgidTeacher"):
        build_teacher({"name": "vgid", "strength": 2})
    assert build_teacher({"name": "vgid", "noise": "none"}).noise is None
    assert build_teacher({"name": "vgid", "noise": {"kind": "gaussian"}}).noise == VisualNoise(
        "gaussian"
    )


def test_demoting_the_answer_lowers_only_the_first_answer_token():
    from mmunlearn.teachers.vgid import demote_first_answer_token

    logprobs = torch.log_softmax(torch.randn(2, 3, 5, dtype=torch.float64), dim=-1)
    labels = torch.tensor([[-100, 1, 2], [3, 4, 0]])
    out = demote_first_answer_token(logprobs, labels, beta=2.0)
    torch.testing.assert_close(out[0, [0, 2]], logprobs[0, [0, 2]])
    torch.testing.assert_close(out[1, 1:], logprobs[1, 1:])
    for row, pos, gold in ((0, 1, 1), (1, 0, 3)):
        assert out[row, pos].exp().sum().item() == pytest.approx(1.0)
        others = [v for v in range(5) if v != gold]
        # the gold token's odds against every other token drop by exactly e^β
        odds = (out[row, pos, gold] - out[row, pos, others]) - (
            logprobs[row, pos, gold] - logprobs[row, pos, others]
        )
        torch.testing.assert_close(odds, torch.full_like(odds, -2.0))
