"""open-unlearning's conventions (`kl_min_ou`, `undial_ou`, `simnpo_ou`) against float64
references written from its formulas (locuslab/open-unlearning, `src/trainer/utils.py` and
`src/trainer/unlearn/*.py`), on a hand-made left-padded batch; the defaults stay the papers'."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mmunlearn.data.example import Example
from mmunlearn.losses.divergences import ForwardKL, reduce_tokens
from mmunlearn.losses.objective import term_value
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import PromptEncoder, model_inputs
from mmunlearn.models.every_position import with_every_position
from mmunlearn.models.forward import answer_logits
from mmunlearn.teachers.undial import UndialTeacher
from mmunlearn.testing import tiny_causal_lm
from mmunlearn.values import TokenTargets

ROWS = [
    ("where was ada born", "in paris"),
    ("what does the long question about bob ask", "rome"),
    ("who", "cy moor of oslo"),
]


@pytest.fixture(scope="module")
def setup():
    examples = [
        Example(f"r{i}", f"e{i}", "retain", question, answer)
        for i, (question, answer) in enumerate(ROWS)
    ]
    # open-unlearning's UNDIAL indexes token V − 100: a vocabulary of over 100 words
    words = Example("v", "v", "general", " ".join(f"word{i}" for i in range(100)), "done")
    student = tiny_causal_lm([*examples, words], seed=0)
    base = tiny_causal_lm([*examples, words], seed=1)
    assert student.model.config.vocab_size > 100
    encoder = PromptEncoder(student)
    batch = encoder.collate(examples, [encoder.encode(ex) for ex in examples])
    assert (batch["attention_mask"] == 0).any()  # the batch has padding
    return student.model.eval(), base.model.eval(), batch


def full_logits(model, batch) -> torch.Tensor:
    """What open-unlearning reads: the logits at every position (B, T, V), in float64."""
    with torch.no_grad():
        return model(**model_inputs(batch)).logits.double()


def view(model, batch, last: bool) -> tuple[torch.Tensor, torch.Tensor, dict]:
    relabelled = with_every_position(batch, last=last)
    with torch.no_grad():
        logits, labels = answer_logits(model, relabelled)
    return logits, labels, relabelled


def test_the_whole_sequence_view_reads_every_position_unchanged(setup):
    student, _, batch = setup
    logits, labels, _ = view(student, batch, last=True)
    assert logits.shape[:2] == batch["input_ids"].shape  # all T positions, the last included
    assert (labels != -100).all()
    assert torch.allclose(logits.double(), full_logits(student, batch), atol=1e-5)
    shorter, _, _ = view(student, batch, last=False)
    assert torch.allclose(shorter.double(), full_logits(student, batch)[:, :-1], atol=1e-5)


def test_kl_min_ou_retain_kl_is_open_unlearnings(setup):
    student, base, batch = setup
    # open-unlearning: kl_div(log q, log p, batchmean, log_target) over the (B·T, V) rows
    q = F.log_softmax(full_logits(student, batch), -1).flatten(0, 1)
    p = F.log_softmax(full_logits(base, batch), -1).flatten(0, 1)
    reference = F.kl_div(q, p, reduction="batchmean", log_target=True)

    retain = build_method("kl_min_ou").terms[1]
    assert retain.positions == "sequence"
    logits, labels, _ = view(student, batch, last=True)
    base_logits, _, _ = view(base, batch, last=True)
    targets = TokenTargets(mask=labels != -100, logprobs=torch.log_softmax(base_logits, -1))
    ours = term_value(retain, logits, targets, labels)
    assert abs(ours.item() - reference.item()) < 1e-5

    # the default kl_min (the paper's intent) averages over answer tokens only: another number
    paper = build_method("kl_min").terms[1]
    assert paper.positions == "answer"
    with torch.no_grad():
        answer, answer_labels = answer_logits(student, batch)
        base_answer, _ = answer_logits(base, batch)
    mask = answer_labels != -100
    on_answers = reduce_tokens(
        ForwardKL()(answer, TokenTargets(mask=mask, logprobs=torch.log_softmax(base_answer, -1))),
        mask,
    )
    assert abs(on_answers.item() - reference.item()) > 1e-4  # 100× the tolerance above


def undial_reference(student, base, batch, beta: float) -> torch.Tensor:
    """open-unlearning's UNDIAL loss: every shifted position, the raw label indexes the
    vocabulary (so −100 lowers token V − 100), mean over B·(T − 1)."""
    logits = full_logits(student, batch)[:, :-1]
    teacher = full_logits(base, batch)[:, :-1]
    labels = batch["labels"][:, 1:]
    penalty = torch.zeros_like(teacher)
    rows = torch.arange(labels.shape[0]).view(-1, 1)
    cols = torch.arange(labels.shape[1]).view(1, -1)
    penalty[rows, cols, labels] = 1.0  # advanced indexing: -100 counts from the end
    assert penalty[..., -100].sum() == (labels == -100).sum()
    soft = F.softmax(teacher - beta * penalty, -1)
    return F.cross_entropy(logits.flatten(0, 1), soft.flatten(0, 1), reduction="mean")


def test_undial_ou_is_open_unlearnings(setup):
    student, base, batch = setup
    forget = build_method("undial_ou").terms[0]
    assert (forget.positions, forget.teacher.beta) == ("sequence_but_last", 10.0)
    logits, labels, relabelled = view(student, batch, last=False)
    base_logits, _, _ = view(base, batch, last=False)
    ctx = SimpleNamespace(logprobs=lambda b, expected: torch.log_softmax(base_logits, -1))
    targets = forget.teacher.build(ctx, relabelled, labels)
    ours = term_value(forget, logits, targets, labels)
    assert abs(ours.item() - undial_reference(student, base, batch, 10.0).item()) < 1e-5

    # the paper's convention on the same view lowers the gold token only where there is one
    paper = UndialTeacher(beta=10.0).build(ctx, relabelled, labels)
    assert not torch.allclose(paper.logprobs, targets.logprobs)
    assert build_method("undial").terms[0].teacher.convention == "paper"


def test_simnpo_ou_has_open_unlearnings_defaults_and_value(setup):
    student, _, batch = setup
    forget = build_method("simnpo_ou").terms[0]
    assert (forget.loss.beta, forget.loss.gamma, forget.weight) == (4.5, 0.0, 0.125)
    default = build_method("simnpo").terms[0]
    assert (default.loss.beta, default.weight) == (2.5, 1.0)
    with torch.no_grad():
        logits, labels = answer_logits(student, batch)
    # open-unlearning: −logσ(β·(NLL_sum/|y| − δ)).mean()·2/β, times its gamma (0.125)
    logprobs = torch.log_softmax(logits.double(), -1)
    mask = labels != -100
    nll = -(logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask).sum(-1)
    reference = -F.logsigmoid(4.5 * (nll / mask.sum(-1) - 0.0)).mean() * 2 / 4.5
    ours = forget.weight * term_value(
        forget, logits, TokenTargets(mask=mask, token_ids=labels), labels
    )
    assert abs(ours.item() - 0.125 * reference.item()) < 1e-6


def test_a_token_id_equal_to_the_ignore_index_is_refused():
    batch = {
        "input_ids": torch.tensor([[5, -100, 7]]),
        "attention_mask": torch.ones(1, 3, dtype=torch.long),
        "labels": torch.tensor([[-100, -100, 7]]),
    }
    with pytest.raises(ValueError, match="equals the ignore index"):
        with_every_position(batch)


def test_open_unlearnings_undial_needs_100_tokens():
    ctx = SimpleNamespace(logprobs=lambda b, expected: torch.zeros(1, 2, 50))
    teacher = UndialTeacher(convention="open_unlearning")
    with pytest.raises(ValueError, match="vocabulary of 50 tokens"):
        teacher.build(ctx, {}, torch.tensor([[3, -100]]))


def test_paper_undial_unchanged_on_answer_positions():
    logprobs = torch.log_softmax(
        torch.randn(2, 3, 120, generator=torch.Generator().manual_seed(0)), -1
    )
    labels = torch.tensor([[1, 2, -100], [0, -100, -100]])
    ctx = SimpleNamespace(logprobs=lambda b, expected: logprobs)
    paper = UndialTeacher(beta=3.0).build(ctx, {}, labels)
    ou = UndialTeacher(beta=3.0, convention="open_unlearning").build(ctx, {}, labels)
    valid = labels != -100
    # on answer positions both lower the gold token by β; they differ only off the answer
    assert torch.allclose(paper.logprobs[valid], ou.logprobs[valid])
    assert not torch.allclose(paper.logprobs[~valid], ou.logprobs[~valid])
