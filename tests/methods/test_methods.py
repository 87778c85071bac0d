import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import METHODS, build_method
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train
from mmunlearn.training.samplers import SAMPLERS

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
    from mmunlearn.methods import VIEWS

    method = build_method("idk")
    assert method.batch_roles == ("forget:idk", "retain") and method.roles == ("forget", "retain")
    forget = next(ex for ex in examples if ex.role == "forget")
    assert VIEWS.get("idk")(forget).answer == forget.alt_answers[0] != forget.answer


def test_a_view_without_alternatives_is_a_clear_error():
    from mmunlearn.data.example import Example
    from mmunlearn.methods import idk_view

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


SAMPLED = [name for name in SAMPLERS.names() if name != "single"]


@pytest.mark.parametrize("sampler", SAMPLED)
def test_any_method_runs_under_any_sampler(sampler, loaded, examples, tmp_path):
    method = build_method("grad_diff").with_sampler(sampler)
    config = TrainConfig(steps=1, lr=1e-2, batch_size=2, logging_steps=1)
    train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
    assert (tmp_path / "model" / "config.json").is_file()


def test_a_sampler_override_reaches_every_phase():
    for name in ("sequential", "whp"):
        method = build_method(name).with_sampler("direct")
        assert [p.sampler for p in method.phases] == ["direct", "direct"]


def test_dpo_idk_builds_both_views_and_prefers_i_dont_know():
    method = build_method("dpo_idk")
    forget = method.terms[0]
    assert (forget.role, forget.pair_role) == ("forget:idk", "forget")
    assert method.batch_roles == ("forget:idk", "forget", "retain")
    assert method.roles == ("forget", "retain")
    assert build_method("dpo_idk", loss={"scale": "1"}).terms[0].loss.scale == "1"


def test_terms_refuse_inconsistent_settings():
    from mmunlearn.losses.divergences import build_loss
    from mmunlearn.losses.objective import Term
    from mmunlearn.teachers import build_teacher

    base, kl = build_teacher("base"), build_loss("forward_kl")
    with pytest.raises(ValueError, match="pair_role"):
        Term("forget:idk", base, build_loss("dpo"))
    with pytest.raises(ValueError, match="pair_role"):
        Term("forget", base, kl, pair_role="retain")
    with pytest.raises(ValueError, match="rewrites the text"):
        Term("forget", build_teacher("icu"), kl, positions="all")
    with pytest.raises(ValueError, match="positions='some'"):
        Term("forget", base, kl, positions="some")
    Term("forget", build_teacher({"name": "vgid", "prompt": ""}), kl, positions="all")


def test_whp_reinforces_a_copy_and_unlearns_the_base(loaded, examples, tmp_path):
    """With α = 0 and no anchor in the text the whp teacher is the base itself, so phase 2's
    first loss is ~0 only if phase 2 starts from the base and not from the reinforced copy."""
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text("Nobody Here: Someone Else\n")
    teacher = {"alpha": 0.0, "hard": False, "anchors": str(anchors), "reinforce_steps": 3}
    method = build_method("whp", teacher=teacher)
    assert [p.name for p in method.phases] == ["whp/reinforce", "whp/unlearn"]
    assert method.phases[0].keep_as == "reinforced" and method.phases[0].steps == 3
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = TrainConfig(steps=5, lr=1e-2, batch_size=4, logging_steps=1)
    train(loaded, method, group_by_role(examples), config, tmp_path / "run", progress=False)
    phase1 = json.loads((tmp_path / "run" / "phase1" / "train_log.json").read_text())
    phase2 = json.loads((tmp_path / "run" / "phase2" / "train_log.json").read_text())
    assert max(e["step"] for e in phase1) == 3 and max(e["step"] for e in phase2) == 2
    assert phase2[0]["loss/forget/WhpTeacher"] < 1e-5
    reinforced = AutoModelForImageTextToText.from_pretrained(tmp_path / "run" / "phase1" / "model")
    assert any(not torch.equal(p.detach(), before[n]) for n, p in reinforced.named_parameters()), (
        "the reinforce phase trained its copy"
    )


def test_whp_soft_targets_use_kl_and_hard_ones_cross_entropy():
    from mmunlearn.losses.divergences import CrossEntropy, ForwardKL

    assert isinstance(build_method("whp").phases[1].terms[0].loss, CrossEntropy)
    soft = build_method("whp", teacher={"hard": False})
    assert isinstance(soft.phases[1].terms[0].loss, ForwardKL)
