import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.losses.objective import METHODS, build_method
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train

UNLEARNING = [name for name in METHODS.names() if name != "finetune"]
SWAP_NAMES = ("Zorin Vale", "Mika Tess")  # the run's pool of unseen names (entity swap, WHP)


@pytest.mark.parametrize("name", UNLEARNING)
def test_every_method_trains_one_step_and_changes_the_model(name, loaded, examples, tmp_path):
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = TrainConfig(steps=1, lr=1e-2, batch_size=4, logging_steps=1)
    result = train(
        loaded,
        build_method(name),
        group_by_role(examples),
        config,
        tmp_path,
        swap_names=SWAP_NAMES,
        progress=False,
    )
    changed = [
        n
        for n, p in result.model.named_parameters()
        if not torch.equal(p.detach().cpu(), before[n])
    ]
    assert changed, f"{name} changed no parameter"


def test_ascent_methods_have_a_negative_forget_sign():
    for name in ("ga", "grad_diff", "kl_min"):
        forget = build_method(name).terms[0]
        assert forget.role == "forget" and forget.sign == -1


def test_loss_options_reach_the_forget_loss():
    assert build_method("npo", loss={"beta": 0.5}).terms[0].loss.beta == 0.5


def test_idk_trains_on_the_i_dont_know_answer(examples):
    from mmunlearn.losses.objective import VIEWS

    method = build_method("idk")
    assert method.batch_roles == ("forget:idk", "retain") and method.roles == ("forget", "retain")
    forget = next(ex for ex in examples if ex.role == "forget")
    assert VIEWS.get("idk")(forget).answer == forget.alt_answers[0] != forget.answer


def test_a_view_without_alternatives_is_a_clear_error():
    from mmunlearn.data.example import Example
    from mmunlearn.losses.objective import idk_view

    with pytest.raises(ValueError, match="no alt_answers"):
        idk_view(Example(id="x1", entity="e", role="forget", question="q?", answer="a"))


def test_sequential_runs_its_phases_in_order(loaded, examples, tmp_path):
    method = build_method("sequential")
    assert [p.name for p in method.phases] == ["sequential/stabilise", "sequential/forget"]
    assert method.phases[1].terms[0].sign == -1
    assert build_method("sequential", loss={"name": "npo"}).phases[1].terms[0].sign == 1
    config = TrainConfig(steps=2, lr=1e-2, batch_size=2, logging_steps=1)
    train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
    assert (tmp_path / "phase1" / "model").is_dir() and (tmp_path / "phase2" / "model").is_dir()
    assert (tmp_path / "model" / "config.json").is_file()
