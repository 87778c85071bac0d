"""The methods of open-unlearning's catalogue on this engine (WGA, SatImp, CE-U, RMU, AltPO,
FLAT, PDU): what each builds, and what training with it does that the one-step test of every
method (test_methods.py) does not show."""

import json

import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.losses.constrained import ConstrainedNLL
from mmunlearn.methods import VIEWS, build_method
from mmunlearn.methods.rmu import rmu_method
from mmunlearn.teachers.hidden import BaseHiddenTeacher
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train


def test_reweighted_ascent_methods_ascend_their_weighted_nll():
    for name, loss in (("wga", "WeightedNLL"), ("satimp", "SaturationImportanceNLL")):
        forget, retain = build_method(name).terms
        assert (forget.sign, type(forget.loss).__name__) == (-1, loss)
        assert (retain.role, retain.sign) == ("retain", 1)
    assert build_method("wga", loss={"weight_power": 2.0}).terms[0].loss.weight_power == 2.0


def test_ce_u_descends_and_skips_the_first_answer_token_by_default():
    (forget,) = build_method("ce_u").terms
    assert forget.sign == 1 and forget.teacher.skip_first_tokens == 1
    assert (
        build_method("ce_u", teacher={"skip_first_tokens": 0}).terms[0].teacher.skip_first_tokens
        == 0
    )


def test_rmu_reads_one_layer_on_both_roles():
    forget, retain = build_method("rmu").terms
    assert forget.layer == retain.layer == retain.teacher.layer == 1
    assert isinstance(retain.teacher, BaseHiddenTeacher) and retain.weight == 1.0
    assert build_method("rmu", retain_weight=1200.0).terms[1].weight == 1200.0
    deeper = rmu_method("rmu_l7", 7).build()
    assert [t.layer for t in deeper.terms] == [7, 7] and deeper.terms[1].teacher.layer == 7


def test_rmu_starts_with_zero_retain_loss_and_moves_the_forget_states(loaded, examples, tmp_path):
    """At step 0 the student is the base: its retain hidden states equal the base's."""
    config = TrainConfig(steps=2, lr=1e-2, batch_size=4, logging_steps=1, cache_teacher=True)
    train(loaded, build_method("rmu"), group_by_role(examples), config, tmp_path, progress=False)
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert log[0]["loss/retain/BaseHiddenTeacher"] < 1e-8
    assert log[1]["loss/retain/BaseHiddenTeacher"] > 0  # the update moved the retain states too
    assert log[1]["loss/forget/LabelsTeacher"] < log[0]["loss/forget/LabelsTeacher"]


def test_altpo_prefers_a_wrong_option_over_the_forget_answer(examples):
    method = build_method("altpo")
    forget = method.terms[0]
    assert (forget.role, forget.pair_role, type(forget.loss).__name__) == (
        "forget:alternate",
        "forget",
        "DPO",
    )
    row = next(ex for ex in examples if ex.role == "forget")
    alternate = VIEWS.get("alternate")(row)
    assert alternate.answer in row.options and alternate.answer != row.answer


def test_the_alternate_view_needs_a_wrong_option(examples):
    import dataclasses

    row = next(ex for ex in examples if ex.role == "forget")
    with pytest.raises(ValueError, match="no option other than its answer"):
        VIEWS.get("alternate")(dataclasses.replace(row, options=(row.answer,)))


def test_flat_needs_no_model_and_no_retain_data():
    method = build_method("flat")
    assert method.roles == ("forget",) and method.batch_roles == ("forget:idk", "forget")
    assert not any(term.teacher.needs_model for term in method.terms)
    assert build_method("flat", loss={"divergence": "kl"}).terms[0].loss.divergence == "kl"


def test_pdu_updates_its_dual_variable_once_per_step(loaded, examples, tmp_path):
    method = build_method("pdu", loss={"name": "logit_margin"})
    retain = method.terms[1]
    assert isinstance(retain.loss, ConstrainedNLL) and retain.weight == 1.0
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = TrainConfig(steps=3, lr=1e-2, batch_size=4, logging_steps=1)
    result = train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
    assert retain.loss.multiplier.updates == 3
    # ε = 0 and an NLL > 0: λ only grows (by η·NLL each step)
    assert retain.loss.multiplier.value > 1.0
    assert any(
        not torch.equal(p.detach().cpu(), before[n]) for n, p in result.model.named_parameters()
    )
