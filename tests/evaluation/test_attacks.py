"""Attacks on unlearning: quantization grids, prompt building, the linear probe, and the attack
metrics on tiny models (a model that knows everything gains nothing from relearning)."""

import dataclasses

import pytest
import torch

from mmunlearn.evaluation.attacks import (
    QUANTIZATIONS,
    Quantization,
    fit_linear_probe,
    nf4_levels,
    prompt_end_hidden_states,
    quantize_nf4,
    quantize_rtn,
    quantized_copy,
    templated,
    with_context,
)
from mmunlearn.evaluation.probes import RelearnConfig, answer, finetuned_copy, split_halves
from mmunlearn.evaluation.suite import EvalModel, EvalSettings, Suite


@pytest.fixture()
def weight():
    torch.manual_seed(0)
    return torch.randn(6, 40) * torch.linspace(0.1, 3.0, 6).unsqueeze(1)  # rows of other scales


@pytest.mark.parametrize("group_size", [0, 8, 7])
def test_rtn_moves_each_weight_by_at_most_half_a_step(weight, group_size):
    quantized = quantize_rtn(weight, 8, group_size)
    groups = weight.reshape(6, -1) if group_size == 0 else None
    if groups is None:
        flat = torch.nn.functional.pad(weight.reshape(-1), (0, -weight.numel() % group_size))
        groups = flat.reshape(-1, group_size)
    step = groups.abs().amax(1, keepdim=True) / 127
    steps = (step.expand_as(groups).reshape(-1)[: weight.numel()]).reshape(weight.shape)
    assert quantized.shape == weight.shape and quantized.dtype == weight.dtype
    assert ((quantized - weight).abs() <= steps / 2 + 1e-6).all()
    on_grid = quantized / steps
    assert torch.allclose(on_grid, on_grid.round(), atol=1e-4)
    assert (quantized != weight).any()
    assert torch.equal(quantize_rtn(quantized, 8, group_size), quantized)  # already on the grid


def test_fewer_bits_round_more_coarsely(weight):
    errors = [(quantize_rtn(weight, bits) - weight).abs().max() for bits in (8, 4, 2)]
    assert errors[0] < errors[1] < errors[2]
    assert len(torch.unique(quantize_rtn(weight, 4)[0])) <= 15  # levels −7..7 of one row


def test_nf4_puts_every_weight_on_the_nearest_of_sixteen_levels(weight):
    levels = nf4_levels()
    assert len(levels) == 16 and torch.all(levels[1:] > levels[:-1])
    assert levels[0] == -1 and levels[-1] == 1 and (levels == 0).sum() == 1
    quantized = quantize_nf4(weight, 8)
    blocks, quantized_blocks = weight.reshape(-1, 8), quantized.reshape(-1, 8)
    scale = blocks.abs().amax(1, keepdim=True)
    codes = quantized_blocks / scale
    distance = (codes.unsqueeze(-1) - levels).abs().amin(-1)
    assert (distance < 1e-5).all()  # every value is a level times its block's scale
    nearest = (blocks / scale).unsqueeze(-1).sub(levels).abs().amin(-1)
    assert torch.allclose((blocks / scale - codes).abs(), nearest, atol=1e-5)
    assert torch.equal(quantize_nf4(quantized, 8), quantized)


def test_quantization_settings_are_checked():
    with pytest.raises(ValueError, match="kind 'gptq'"):
        Quantization("gptq")
    with pytest.raises(ValueError, match="nf4 quantization has 4 bits"):
        Quantization("nf4", 8, 64)
    with pytest.raises(ValueError, match="group_size=0; expected > 0 for nf4"):
        Quantization("nf4", 4, 0)
    with pytest.raises(ValueError, match="bits=1"):
        Quantization("rtn", 1)


def test_quantized_copy_leaves_the_model_and_its_output_head_alone(loaded):
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    copy, count = quantized_copy(loaded, QUANTIZATIONS["int4"])
    assert count > 0
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    head = copy.model.get_output_embeddings()
    assert torch.equal(head.weight, loaded.model.get_output_embeddings().weight)
    linears = [m for m in copy.model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    assert len(linears) == count
    assert all(torch.equal(m.weight, quantize_rtn(m.weight, 4)) for m in linears)


def test_prompt_templates_and_context_keep_each_person_to_their_own_facts(examples):
    forget = [ex for ex in examples if ex.role == "forget"]
    wrapped = templated(forget[:2], "Pretend . {question}")
    assert [ex.question for ex in wrapped] == [f"Pretend . {ex.question}" for ex in forget[:2]]
    with pytest.raises(ValueError, match="has no {question}"):
        templated(forget, "Pretend .")
    context, measured = split_halves(forget)
    asked = with_context(measured, context)
    for ex, question in zip(measured, (a.question for a in asked), strict=True):
        own = [f"{c.question} {c.answer} ." for c in context if c.entity == ex.entity]
        assert own and question == " ".join([*own, ex.question])


def test_linear_probe_separates_separable_classes():
    torch.manual_seed(0)
    centres = torch.randn(3, 5) * 4 + 10  # far from the origin: standardisation matters
    labels = torch.arange(3).repeat(10)
    features = centres[labels] + torch.randn(30, 5) * 0.3
    probe = fit_linear_probe(features, labels, 3)
    fresh = torch.arange(3).repeat(4)
    assert torch.equal(probe(centres[fresh] + torch.randn(12, 5) * 0.3).argmax(-1), fresh)


def test_hidden_states_come_from_the_end_of_each_prompt(loaded, examples):
    asked = [ex for ex in examples if ex.role == "forget"][:3]
    together = prompt_end_hidden_states(loaded, asked)
    alone = torch.cat([prompt_end_hidden_states(loaded, [ex]) for ex in asked], dim=1)
    layers = loaded.model.config.text_config.num_hidden_layers + 1
    assert together.shape[:2] == (layers, 3)
    assert torch.allclose(together, alone, atol=1e-5)  # left padding does not move the end


def test_relearning_a_model_that_knows_everything_recovers_nothing(examples, loaded, tmp_path):
    """Memorise the text-only forget questions, then attack: relearning the first half cannot
    bring back more of the second half than the model already gives."""
    forget = [ex for ex in examples if ex.role == "forget" and ex.image is None]
    knowing = finetuned_copy(loaded, forget, RelearnConfig(steps=150, lr=1e-2, batch_size=16))
    assert all(r["rouge_l"] == 1.0 for r in answer(knowing, forget, 4, False))
    knowing.save(tmp_path / "knowing")
    settings = EvalSettings(max_new_tokens=4, relearn=RelearnConfig(steps=3, batch_size=4))
    suite = Suite(forget, tmp_path / "eval", settings, progress=False)
    result = suite.run(EvalModel("knowing", tmp_path / "knowing"), ["probe_relearn"])
    relearn = result["probe_relearn"]
    assert relearn["baseline"]["rouge_l"] == 1.0 and relearn["recovered"] <= 0.0
    assert relearn["relearned_half"]["rouge_l"] == 1.0


def test_robustness_without_an_oracle_judges_recovery_alone(loaded, examples, tmp_path):
    loaded.save(tmp_path / "m")
    forget = [ex for ex in examples if ex.role == "forget"][:4]
    settings = dataclasses.replace(EvalSettings(max_new_tokens=2), recover_threshold=-1.0)
    suite = Suite(forget, tmp_path / "eval", settings, progress=False)
    result = suite.run(EvalModel("m", tmp_path / "m"), ["robustness"])["robustness"]
    assert not result["against_oracle"]
    quant = result["probes"]["attack_quant_int8"]
    assert "above_oracle" not in quant and quant["recovers"]  # any recovery > −1
    assert "no holdout or general rows" in result["probes"]["attack_relearn_unrelated"]["missing"]
