"""RMU's hidden-state losses in float64, open-unlearning's activation loss, and the base_hidden
teacher (the frozen model's hidden states at the student's layer and positions)."""

import pytest
import torch

from mmunlearn.losses.divergences import reduce_tokens
from mmunlearn.losses.hidden import HiddenMSE, SteerToControl, control_vector
from mmunlearn.losses.objective import Term, answer_hidden_states
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.teachers import build_teacher
from mmunlearn.teachers.cache import TeacherCache
from mmunlearn.teachers.hidden import HiddenTargets
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.training.trainer import frozen_model
from mmunlearn.values import TokenTargets

MASK = torch.tensor([[True, True, True], [False, True, True]])


@pytest.fixture()
def hidden():
    gen = torch.Generator().manual_seed(5)
    return torch.randn(2, 3, 4, generator=gen, dtype=torch.float64), torch.randn(
        2, 3, 4, generator=gen, dtype=torch.float64
    )


def test_control_vector_is_a_seeded_unit_direction_scaled_by_c():
    u = torch.rand(4, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    c = control_vector(4, 6.5, seed=0)
    torch.testing.assert_close(c, 6.5 * u / u.norm())
    assert c.norm().item() == pytest.approx(6.5) and (c >= 0).all()
    assert not torch.equal(c, control_vector(4, 6.5, seed=1))


def test_rmu_steer_is_the_mean_squared_distance_to_c_u_in_float64(hidden):
    h, _ = hidden
    c = control_vector(4, 6.5, seed=0).double()
    expected = torch.stack(
        [
            torch.stack([sum((h[b, t, i] - c[i]) ** 2 for i in range(4)) / 4 for t in range(3)])
            for b in range(2)
        ]
    )
    got = SteerToControl(6.5)(h, TokenTargets(MASK, token_ids=torch.zeros(2, 3))).double()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_hidden_mse_to_the_base_and_zero_for_the_base_itself(hidden):
    h, base = hidden
    targets = HiddenTargets(mask=MASK, hidden=base.float())
    expected = ((h - base) ** 2).mean(-1)
    torch.testing.assert_close(HiddenMSE()(h, targets).double(), expected, atol=1e-6, rtol=1e-5)
    assert HiddenMSE()(base, targets).abs().max() < 1e-6


def test_rmu_terms_equal_open_unlearnings_activation_loss_on_equal_length_rows(hidden):
    """open-unlearning's RMU.compute_activation_loss averages each row's tokens, then the rows:
    the token mean (WMDP's code, ours) where rows have equal lengths."""
    h, base = hidden
    mask = torch.ones(2, 3, dtype=torch.bool)

    def open_unlearning(a, b, mask):
        squared = torch.nn.functional.mse_loss(a, b, reduction="none")
        per_row = (squared * mask.unsqueeze(-1)).mean(dim=2).sum(dim=1)
        return (per_row / mask.sum(-1)).mean()

    retain = reduce_tokens(HiddenMSE()(h, HiddenTargets(mask=mask, hidden=base)), mask)
    torch.testing.assert_close(retain.double(), open_unlearning(h, base, mask))
    control = control_vector(4, 20.0, seed=0).double().expand_as(h)
    forget = reduce_tokens(SteerToControl(20.0)(h, TokenTargets(mask, token_ids=mask)), mask)
    torch.testing.assert_close(forget.double(), open_unlearning(h, control, mask))


def test_hidden_mse_needs_hidden_targets(hidden):
    h, base = hidden
    with pytest.raises(ValueError, match="base_hidden"):
        HiddenMSE()(h, TokenTargets(MASK, logprobs=base))


def test_base_hidden_gives_the_frozen_models_view_at_the_students_layer(loaded, examples):
    encoder = PromptEncoder(loaded)
    rows = [ex for ex in examples if ex.role == "retain"][:3]
    batch = encoder.collate(rows, [encoder.encode(ex) for ex in rows])
    ctx = TeacherContext(frozen=frozen_model(loaded.model), encoder=encoder)
    with torch.no_grad():
        student, labels = answer_hidden_states(loaded.model, batch, 1)
    targets = build_teacher({"name": "base_hidden", "layer": 1}).build(ctx, batch, labels)
    assert isinstance(targets, HiddenTargets) and torch.equal(targets.mask, labels != -100)
    torch.testing.assert_close(targets.hidden, student.float())  # student = base at step 0
    cache = TeacherCache()
    for _ in range(2):  # hidden states are not rows the cache holds: recomputed every time
        cached = cache.build(build_teacher("base_hidden"), ctx, batch, labels)
        assert isinstance(cached, HiddenTargets) and len(cache) == 0
    assert cache.misses == 2


def test_a_layer_beyond_the_model_is_a_clear_error(loaded, examples):
    encoder = PromptEncoder(loaded)
    rows = [ex for ex in examples if ex.role == "retain"][:2]
    batch = encoder.collate(rows, [encoder.encode(ex) for ex in rows])
    with pytest.raises(ValueError, match="layer=7: the model has 2 hidden-state outputs"):
        answer_hidden_states(loaded.model, batch, 7)


def test_a_hidden_teacher_must_read_the_terms_layer():
    teacher = build_teacher({"name": "base_hidden", "layer": 2})
    with pytest.raises(ValueError, match="layer 2 and the term reads the student at layer 1"):
        Term("retain", teacher, HiddenMSE(), layer=1)
    Term("retain", teacher, HiddenMSE(), layer=2)
