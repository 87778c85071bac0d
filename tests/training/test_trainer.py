import dataclasses
import json
import math

import pytest
import torch
from transformers import TrainingArguments

from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.loading import LoadedModel
from mmunlearn.teachers.targets import TeacherContext
from mmunlearn.testing import tiny_llava
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora, train
from mmunlearn.training.trainer import RoleCollator, UnlearnTrainer, frozen_teacher

NO_INTERVENTION = {"prompt": "", "noise": {"kind": "gaussian", "std": 0.0}}


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in module.named_parameters()}


def test_student_identical_to_teacher_has_zero_loss_at_step_zero(loaded, examples, tmp_path):
    trainer, inputs = one_batch_trainer(
        loaded, examples, build_method("vgid", teacher=NO_INTERVENTION), tmp_path
    )
    assert abs(trainer.compute_loss(loaded.model, inputs).item()) < 1e-6
    # ... and a real intervention is not free (untrained: near-uniform outputs)
    trainer.terms = build_method("vgid").terms
    assert trainer.compute_loss(loaded.model, inputs).item() > 1e-5


def test_one_step_changes_every_trainable_parameter_and_no_frozen_one(loaded, examples, tmp_path):
    by_role = group_by_role(examples)
    model = loaded.model
    unused = {
        n for n, _ in model.named_parameters() if "post_layernorm" in n
    }  # LLaVA reads the last hidden state before it
    before = snapshot(model)
    config = TrainConfig(steps=1, lr=1e-2, batch_size=4, logging_steps=1)
    result = train(loaded, build_method("vgid"), by_role, config, tmp_path, progress=False)
    after = snapshot(result.model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == set(before) - unused


def test_lora_trains_adapters_only_and_the_teacher_stays_the_base(loaded, examples, tmp_path):
    by_role = group_by_role(examples)
    config = TrainConfig(steps=2, lr=1e-2, batch_size=4, lora=True, logging_steps=1)
    base_before = snapshot(loaded.model)
    peft_model = add_lora(loaded.model, config)
    lora_before = {
        n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad
    }
    assert lora_before and all("lora_" in n for n in lora_before)
    assert not any("vision_tower" in n or "multi_modal_projector" in n for n in lora_before)
    train(
        LoadedModel(peft_model, loaded.processor, loaded.kind),
        build_method("vgid"),
        by_role,
        TrainConfig(steps=2, lr=1e-2, batch_size=4, logging_steps=1),
        tmp_path,
        progress=False,
    )
    for name, param in peft_model.named_parameters():
        if param.requires_grad:
            assert not torch.equal(param.detach().cpu(), lora_before[name].cpu()), (
                f"{name} did not change"
            )
    with peft_model.disable_adapter():
        base_now = {
            n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in peft_model.named_parameters()
            if "lora_" not in n
        }
    for name, value in base_before.items():
        assert torch.equal(base_now[name].detach().cpu(), value), f"frozen {name} changed"


def one_batch_trainer(loaded, examples, method, tmp_path, **options):
    by_role = group_by_role(examples)
    items = [
        {"forget": f, "retain": r}
        for f, r in zip(by_role["forget"][:6], by_role["retain"][:6], strict=True)
    ]
    encoder = PromptEncoder(loaded)
    ctx = TeacherContext(
        frozen=frozen_teacher(loaded.model, use_adapter_off=False), encoder=encoder
    )
    trainer = UnlearnTrainer(
        model=loaded.model,
        terms=method.terms,
        teacher_context=ctx,
        args=TrainingArguments(str(tmp_path), report_to="none", use_cpu=True),
        **options,
    )
    loaded.model.eval()
    return trainer, RoleCollator(encoder, batch_roles=method.batch_roles)(items)


def test_all_positions_kl_with_the_teacher_equal_to_the_student_is_zero(loaded, examples, tmp_path):
    same = {"noise": {"kind": "gaussian", "std": 0.0}}
    method = build_method("vgid_noise_only", teacher=same)
    assert {t.positions for t in method.terms} == {"all"}
    trainer, inputs = one_batch_trainer(loaded, examples, method, tmp_path)
    assert abs(trainer.compute_loss(loaded.model, inputs).item()) < 1e-5
    trainer.terms = build_method("vgid_noise_only").terms  # the authors' noise image
    assert trainer.compute_loss(loaded.model, inputs).item() > 1e-4


def test_all_positions_cover_the_prompt_not_only_the_answer(loaded, examples, tmp_path):
    """On image rows the noise changes predictions at prompt positions too: the all-positions
    KL sees them, the answer-only KL does not."""
    method = build_method("vgid_noise_only", loss={"reduction": "mean"})
    trainer, inputs = one_batch_trainer(loaded, examples, method, tmp_path)
    trainer.terms = method.terms[:1]
    everywhere = trainer.compute_loss(loaded.model, inputs).item()
    answer_only = dataclasses.replace(method.terms[0], positions="answer")
    trainer.terms = (answer_only,)
    assert everywhere != pytest.approx(trainer.compute_loss(loaded.model, inputs).item())


def test_alternating_methods_take_separate_optimizer_steps(loaded, examples, tmp_path):
    """Each optimizer step (one log entry per global step) computed one half of the terms."""
    method = build_method("vgid_noise_only")
    config = TrainConfig(steps=4, lr=1e-2, batch_size=2, logging_steps=1)
    train(loaded, method, group_by_role(examples), config, tmp_path, progress=False)
    history = [e for e in json.loads((tmp_path / "train_log.json").read_text()) if "loss" in e]
    assert [entry["step"] for entry in history] == [1, 2, 3, 4]
    terms = [sorted(k for k in entry if k.startswith("loss/")) for entry in history]
    forget, retain = ["loss/forget/VisualNoiseTeacher"], ["loss/retain/BaseTeacher"]
    assert terms == [forget, retain, forget, retain]


def test_a_pair_term_sees_both_views(loaded, examples, tmp_path):
    method = build_method("dpo_idk")
    assert method.batch_roles == ("forget:idk", "forget", "retain")
    trainer, inputs = one_batch_trainer(loaded, examples, method, tmp_path)
    trainer.terms = method.terms[:1]
    # an untrained student equal to its reference: every margin is 0, so the loss is (2/β)·log 2
    beta = method.terms[0].loss.beta
    loss = trainer.compute_loss(loaded.model, inputs).item()
    assert loss == pytest.approx(2 / beta * math.log(2), rel=1e-5)


def test_cached_teacher_trains_to_the_same_weights(examples, tmp_path, monkeypatch):
    """Several epochs over the forget set: targets from the cache give the weights that
    recomputing them gives (LoRA, the teacher is the student with adapters off)."""
    from mmunlearn.teachers.cache import TeacherCache
    from mmunlearn.testing import tiny_llava
    from mmunlearn.training import run

    caches = []

    class Recorded(TeacherCache):
        def __init__(self, top_k=0):
            super().__init__(top_k)
            caches.append(self)

    monkeypatch.setattr(run, "TeacherCache", Recorded)
    by_role = group_by_role(examples)
    steps = 2 * len(by_role["forget"]) // 4 + 1  # > 2 epochs of the forget set at batch 4
    weights = {}
    for cache in (False, True):
        config = TrainConfig(
            steps=steps, lr=1e-2, batch_size=4, lora=True, logging_steps=100, cache_teacher=cache
        )
        result = train(
            tiny_llava(examples),
            build_method("vgid"),
            by_role,
            config,
            tmp_path / str(cache),
            progress=False,
        )
        weights[cache] = snapshot(result.model)
    assert len(caches) == 1 and caches[0].hits > 0
    assert any(
        not torch.equal(weights[True][n], snapshot(tiny_llava(examples).model)[n])
        for n in weights[True]
    )
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=1e-5, atol=1e-6)


def test_cached_teacher_refuses_image_augmentation(loaded, examples, tmp_path):
    config = TrainConfig(steps=1, batch_size=2, cache_teacher=True)
    with pytest.raises(ValueError, match="cache_teacher"):
        train(
            loaded,
            build_method("vgid"),
            group_by_role(examples),
            config,
            tmp_path,
            augment=lambda pixels: pixels,
            progress=False,
        )


def test_shared_image_prefix_trains_to_the_same_weights(examples, tmp_path, monkeypatch):
    """Grouped batches through the shared-prefix forward (student, and a VGID teacher whose
    noise is seeded per image) give the weights the plain forward gives on the same batches."""
    from mmunlearn.models import prefix
    from mmunlearn.teachers import targets
    from mmunlearn.testing import tiny_llava
    from mmunlearn.training import trainer as trainer_module

    shared_batches = []

    monkeypatch.setattr(prefix, "SAVING", float("inf"))  # share even tiny prompts

    def spy(model, batch):
        shared_batches.append(any(len(g) > 1 for g in prefix.image_groups(batch)))
        return prefix.prefix_answer_logits(model, batch)

    by_role = group_by_role(examples)
    method = build_method("vgid", teacher={"noise": {"seed_by": "image"}})
    config = TrainConfig(steps=3, lr=1e-2, batch_size=4, lora=True, share_image_prefix=True)
    weights = {}
    for forward in ("shared", "plain"):
        replacement = spy if forward == "shared" else prefix.answer_logits
        monkeypatch.setattr(trainer_module, "prefix_answer_logits", replacement)
        monkeypatch.setattr(targets, "prefix_answer_logits", replacement)
        result = train(
            tiny_llava(examples), method, by_role, config, tmp_path / forward, progress=False
        )
        weights[forward] = snapshot(result.model)
    assert sum(shared_batches) >= 3  # student and teacher batches that shared an image
    before = snapshot(tiny_llava(examples).model)
    assert max((weights["plain"][n] - before[n]).abs().max() for n in before) > 1e-3
    # Adam divides by the gradient's root mean square: where a gradient is ~0, rounding
    # differences move a weight by up to ~lr·1e-3, far below the steps themselves (~lr)
    for name, value in weights["plain"].items():
        torch.testing.assert_close(weights["shared"][name], value, rtol=1e-4, atol=2e-5)


def test_shared_image_prefix_refuses_gradient_checkpointing(loaded, examples, tmp_path):
    config = TrainConfig(
        steps=1, batch_size=2, share_image_prefix=True, gradient_checkpointing=True
    )
    with pytest.raises(ValueError, match="share_image_prefix"):
        train(
            loaded, build_method("vgid"), group_by_role(examples), config, tmp_path, progress=False
        )


@pytest.fixture()
def small_chunks(monkeypatch):
    """The fused head in chunks of 2 tokens, so that a batch takes several; counts its calls."""
    from mmunlearn.losses import fused
    from mmunlearn.training import trainer as trainer_module

    calls = []

    def spy(term, hidden, head, targets, backend):
        calls.append(term.name)
        chunk = 2 * head.projection.out_features
        return fused.fused_term_value(term, hidden, head, targets, backend, chunk)

    monkeypatch.setattr(trainer_module, "fused_term_value", spy)
    return calls


@pytest.mark.parametrize("method", ["vgid", "ga", "npo", "vgid_noise_only", "dpo_idk"])
def test_fused_head_gives_the_plain_heads_loss_and_gradients(
    method, loaded, examples, tmp_path, small_chunks
):
    """Token-level terms through the chunked fused head, sequence and pair terms (NPO, DPO)
    through the head's whole logits: the same loss and the same gradient for every weight,
    the output projection's included (full fine-tuning)."""
    results = {}
    for head in ("off", "chunked"):
        trainer, inputs = one_batch_trainer(
            loaded, examples, build_method(method), tmp_path, fused_head=head
        )
        loaded.model.zero_grad(set_to_none=True)
        loss = trainer.compute_loss(loaded.model, inputs)
        loss.backward()
        grads = {
            n: p.grad.clone() for n, p in loaded.model.named_parameters() if p.grad is not None
        }
        results[head] = (loss.detach(), grads)
    tokens = [
        t.name for t in build_method(method).terms if getattr(t.loss, "level", "token") == "token"
    ]
    assert sorted(set(small_chunks)) == sorted(tokens)
    (plain, plain_grads), (fused, fused_grads) = results["off"], results["chunked"]
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-7)
    assert plain_grads.keys() == fused_grads.keys()
    assert loaded.model.get_output_embeddings().weight.grad is not None
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-7)


def test_fused_head_trains_the_same_lora_weights(examples, tmp_path, small_chunks):
    by_role = group_by_role(examples)
    weights = {}
    for head in ("off", "chunked"):
        config = TrainConfig(steps=3, lr=1e-2, batch_size=4, lora=True, fused_head=head)
        result = train(
            tiny_llava(examples),
            build_method("vgid"),
            by_role,
            config,
            tmp_path / head,
            progress=False,
        )
        weights[head] = snapshot(result.model)
    assert len(small_chunks) >= 6  # forget and retain terms, three steps
    before = snapshot(tiny_llava(examples).model)
    assert max((weights["off"][n] - before[n]).abs().max() for n in before) > 1e-3
    for name, value in weights["off"].items():
        torch.testing.assert_close(weights["chunked"][name], value, rtol=1e-4, atol=2e-5)


def test_fused_head_is_checked_by_the_config():
    with pytest.raises(ValueError, match="train.fused_head='triton'"):
        TrainConfig(fused_head="triton")


def test_a_nonfinite_gradient_is_found_by_name():
    from mmunlearn.training.trainer import nonfinite_gradient

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    assert nonfinite_gradient(model) is None  # no gradients yet
    model(torch.ones(1, 2)).sum().backward()
    assert nonfinite_gradient(model) is None
    model[1].weight.grad[0, 1] = float("nan")
    assert nonfinite_gradient(model) == "1.weight holds NaN"
    model[1].weight.grad[0, 1] = float("inf")
    assert nonfinite_gradient(model) == "1.weight holds inf"
    model[1].weight.grad[0, 1] = 3e38  # finite, though its norm overflows float32
    model[1].weight.grad[0, 0] = 3e38
    assert nonfinite_gradient(model) is None


def test_a_nan_gradient_stops_training_before_the_step_and_saves_nothing(
    loaded, examples, tmp_path
):
    from mmunlearn.training.trainer import NonFiniteLoss

    name, parameter = next(
        (n, p) for n, p in loaded.model.named_parameters() if n.endswith("lm_head.weight")
    )
    before = parameter.detach().clone()
    parameter.register_hook(lambda grad: grad * float("nan"))  # the loss itself stays finite
    config = TrainConfig(steps=2, batch_size=2)
    with pytest.raises(NonFiniteLoss, match=rf"at step 1: the gradient of .*{name} holds NaN"):
        train(loaded, build_method("ga"), group_by_role(examples), config, tmp_path)
    assert torch.equal(parameter.detach(), before)  # the optimizer never applied it
    assert not (tmp_path / "model").exists()
