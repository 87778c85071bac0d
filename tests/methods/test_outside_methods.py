"""A method, a loss and a teacher added from outside the package: each is one declaration here,
registered, built by name and trained, with no edit to mmunlearn (the extension contract).

The method is RMU's forget half (Li et al., "The WMDP Benchmark", arXiv 2403.03218): steer the
hidden states of one layer toward a fixed random direction, read through the engine's hidden-state
student view, with KL to the base on retain.
"""

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.losses.divergences import LOSSES, Loss
from mmunlearn.losses.objective import Term, answer_hidden_states
from mmunlearn.methods import METHODS, RETAIN_KL, MethodSpec, TermSpec, build_method
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.teachers import TEACHERS, Teacher, TokenTargets, build_teacher
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train

LAYER = 1
SEEN: list[tuple[int, ...]] = []  # the shapes the hidden-state loss was called with


@dataclass(frozen=True)
class SteerToRandom(Loss):
    """‖h − c·u‖² per token, u a seeded random unit direction (RMU's forget term)."""

    scale: float = 6.5
    seed: int = 0
    reads: ClassVar[str] = "hidden"

    def __call__(self, hidden: torch.Tensor, targets: TokenTargets) -> torch.Tensor:
        SEEN.append(tuple(hidden.shape))
        direction = torch.rand(hidden.shape[-1], generator=torch.Generator().manual_seed(self.seed))
        control = self.scale * direction / direction.norm()
        return (hidden.float() - control.to(hidden.device)).pow(2).mean(-1)  # (B, K)


@dataclass(frozen=True)
class ShiftedLabels(Teacher):
    """The answer tokens shifted by `shift` places in the vocabulary: a wrong answer as target."""

    shift: int = 1
    needs_model: ClassVar[bool] = False

    def build(self, ctx, batch, labels):
        mask = labels != -100
        return TokenTargets(mask=mask, token_ids=torch.where(mask, labels + self.shift, labels))


@pytest.fixture()
def registered():
    """Register the loss, the teacher and the method for one test, then remove them."""
    LOSSES.register("steer_to_random")(SteerToRandom)
    METHODS.register("rmu_forget")(
        MethodSpec(
            "rmu_forget",
            "steer one layer's hidden states on forget to a random direction; KL on retain",
            "WMDP, arXiv 2403.03218 (RMU)",
            terms=(
                TermSpec("forget", "labels", "steer_to_random", tuned=True, layer=LAYER),
                RETAIN_KL,
            ),
        )
    )
    yield
    METHODS.unregister("rmu_forget")
    LOSSES.unregister("steer_to_random")


def test_a_method_from_outside_the_package_registers_and_trains(
    registered, loaded, examples, tmp_path
):
    method = build_method("rmu_forget", loss={"scale": 2.0})
    forget = method.terms[0]
    assert forget.layer == LAYER and forget.loss == SteerToRandom(scale=2.0)
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = TrainConfig(steps=1, lr=1e-2, batch_size=4, logging_steps=1)
    SEEN.clear()
    result = train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
    changed = [
        n
        for n, p in result.model.named_parameters()
        if not torch.equal(p.detach().cpu(), before[n])
    ]
    assert changed
    width = loaded.model.config.get_text_config().hidden_size
    assert SEEN and all(shape[-1] == width for shape in SEEN)  # hidden states, not logits


def test_its_options_are_checked_like_the_package_methods(registered):
    with pytest.raises(KeyError, match=r"loss\.scal' .*did you mean 'scale'"):
        build_method("rmu_forget", loss={"scal": 2.0})


def test_the_hidden_state_view_is_the_layers_output_at_the_answer_positions(loaded, examples):
    encoder = PromptEncoder(loaded)
    rows = [ex for ex in examples if ex.role == "forget"][:3]
    batch = encoder.collate(rows, [encoder.encode(ex) for ex in rows])
    hidden, labels = answer_hidden_states(loaded.model, batch, LAYER)
    k = labels.shape[1]
    with torch.no_grad():
        out = loaded.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch.get("pixel_values"),
            output_hidden_states=True,
        )
    expected = out.hidden_states[LAYER][:, -(k + 1) : -1]  # the positions predicting the answer
    torch.testing.assert_close(hidden, expected)
    assert torch.equal(labels, batch["labels"][:, -k:])


def test_a_hidden_state_loss_needs_a_layer_and_a_logit_loss_refuses_one():
    labels = build_teacher("labels")
    with pytest.raises(ValueError, match="needs a layer"):
        Term("forget", labels, SteerToRandom())
    with pytest.raises(ValueError, match="layer=2"):
        Term("forget", labels, LOSSES.get("cross_entropy")(), layer=2)


def test_a_teacher_from_outside_is_one_class_and_trains_through_the_run_options(
    loaded, examples, tmp_path
):
    TEACHERS.register("shifted_labels")(ShiftedLabels)
    try:
        method = build_method("ga", teacher={"name": "shifted_labels", "shift": 2})
        assert method.terms[0].teacher == ShiftedLabels(2)
        assert not method.terms[0].teacher.needs_model  # declared: the run loads no frozen copy
        with pytest.raises(KeyError, match=r"teacher\.noise' of teacher 'shifted_labels'"):
            build_method("ga", teacher={"name": "shifted_labels", "noise": {"kind": "replace"}})
        before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
        config = TrainConfig(steps=1, lr=1e-2, batch_size=4, logging_steps=1)
        result = train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
        assert any(
            not torch.equal(p.detach().cpu(), before[n]) for n, p in result.model.named_parameters()
        )
    finally:
        TEACHERS.unregister("shifted_labels")


def test_the_registries_refuse_a_class_without_the_contract():
    @dataclass(frozen=True)
    class NotATeacher:
        def build(self, ctx, batch, labels): ...

    with pytest.raises(TypeError, match="must subclass mmunlearn.teachers.targets.Teacher"):
        TEACHERS.register("not_a_teacher")(NotATeacher)
    assert "not_a_teacher" not in TEACHERS
