"""The fused head gives the plain path's term values and gradients, one chunk of logits at a time."""

import pytest
import torch

from mmunlearn.losses import fused
from mmunlearn.losses.divergences import build_loss
from mmunlearn.losses.fused import (
    check_fused_setup,
    chunked_sum,
    fused_term_value,
    resolve_backend,
)
from mmunlearn.losses.objective import Term, term_value
from mmunlearn.models import prefix
from mmunlearn.models.encoding import PromptEncoder
from mmunlearn.models.families import FAMILIES
from mmunlearn.models.forward import answer_logits, hidden_states_out
from mmunlearn.models.prefix import prefix_answer_logits
from mmunlearn.models.tiny_families import TINY_FAMILIES
from mmunlearn.teachers import build_teacher
from mmunlearn.teachers.targets import TokenTargets
from mmunlearn.testing import tiny_family
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import add_lora


def one_per_adapter() -> list[str]:
    """The first tiny family of each input adapter (FAMILIES maps model types onto fewer)."""
    first = {}
    for name in TINY_FAMILIES.in_order():
        if name in FAMILIES:
            first.setdefault(FAMILIES[name], name)
    return list(first.values())


TOKEN_LOSSES = [
    {"name": "forward_kl"},
    {"name": "forward_kl", "reduction": "sum"},
    {"name": "reverse_kl"},
    {"name": "jsd", "beta": 0.3},
    {"name": "cross_entropy"},
]


def toy_head(vocab=11, width=6, seed=0):
    torch.manual_seed(seed)
    return fused.OutputHead(torch.nn.Linear(width, vocab, bias=False))


def toy_targets(batch=3, length=5, vocab=11, hard=False, seed=1):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, length, generator=generator) > 0.3
    mask[0] = False  # a row without an answer
    if hard:
        ids = torch.randint(vocab, (batch, length), generator=generator).masked_fill(~mask, -100)
        return TokenTargets(mask, token_ids=ids)
    logits = torch.randn(batch, length, vocab, generator=generator) * 2
    return TokenTargets(mask, logprobs=torch.log_softmax(logits, -1))


@pytest.mark.parametrize("spec", TOKEN_LOSSES, ids=lambda s: "-".join(map(str, s.values())))
@pytest.mark.parametrize("chunk_elements", [1, 23, 10_000])  # one token, a few, all at once
def test_chunked_value_and_gradients_equal_the_plain_term(spec, chunk_elements):
    head = toy_head()
    term = Term("forget", build_teacher("base"), build_loss(spec))
    targets = toy_targets(hard=spec["name"] == "cross_entropy")
    hidden = torch.randn(3, 5, 6, requires_grad=True)
    weight = head.projection.weight

    plain = term_value(term, head(hidden), targets, targets.mask)
    plain_grads = torch.autograd.grad(plain * 3, [hidden, weight])
    value = fused_term_value(term, hidden, head, targets, "chunked", chunk_elements)
    grads = torch.autograd.grad(value * 3, [hidden, weight])  # backward scales the kept grads
    torch.testing.assert_close(value, plain, rtol=1e-5, atol=1e-7)
    for got, want in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        without_grad = fused_term_value(term, hidden, head, targets, "chunked", chunk_elements)
    torch.testing.assert_close(without_grad, plain.detach(), rtol=1e-5, atol=1e-7)


def test_each_chunk_is_projected_once_holding_only_valid_tokens():
    """At most chunk_elements // V tokens per projection, only valid ones, and no second
    projection in the backward pass (the gradients were taken in the forward pass)."""
    head = toy_head(vocab=10)
    seen = []
    head.projection.register_forward_hook(lambda m, args, out: seen.append(out.shape[-2]))
    targets = toy_targets(vocab=10)
    hidden = torch.randn(3, 5, 6, requires_grad=True)
    values = chunked_sum(build_loss("forward_kl"), hidden, head, targets, 30)
    calls = len(seen)
    values.backward()
    assert len(seen) == calls  # nothing recomputed
    assert max(seen) == 3
    assert sum(seen) == int(targets.mask.sum())
    assert hidden.grad[~targets.mask].abs().sum() == 0  # padding gets no gradient


def test_a_frozen_head_gets_no_gradient():
    head = toy_head()
    head.projection.weight.requires_grad_(False)
    hidden = torch.randn(3, 5, 6, requires_grad=True)
    targets = toy_targets()
    chunked_sum(build_loss("forward_kl"), hidden, head, targets, 23).backward()
    assert head.projection.weight.grad is None and hidden.grad is not None


def test_empty_mask_gives_zero_and_no_head_call():
    head = toy_head()
    targets = toy_targets()
    targets = TokenTargets(torch.zeros_like(targets.mask), logprobs=targets.logprobs)
    term = Term("forget", build_teacher("base"), build_loss("forward_kl"))
    value = fused_term_value(term, torch.randn(3, 5, 6, requires_grad=True), head, targets)
    assert value.item() == 0.0


def test_liger_falls_back_to_chunked_without_a_gpu(caplog):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: liger may run")
    with caplog.at_level("WARNING"):
        assert resolve_backend("liger") == "chunked"
    assert "no CUDA GPU" in caplog.text
    assert resolve_backend("chunked") == "chunked"
    with pytest.raises(ValueError, match="fused_head='fast'.*'off', 'chunked', 'liger'"):
        resolve_backend("fast")


@pytest.mark.parametrize("family", one_per_adapter())
@pytest.mark.parametrize("forward", [answer_logits, prefix_answer_logits])
def test_the_model_returns_hidden_states_that_the_head_maps_to_its_logits(
    family, forward, examples, monkeypatch
):
    monkeypatch.setattr(prefix, "SAVING", float("inf"))  # share the tiny prompts' prefixes
    loaded = tiny_family(family, examples)
    vision = loaded.kind == "vision_language"
    chosen = [ex for ex in examples if ex.role == "forget" and (ex.image is not None) == vision]
    chosen = chosen[:3]  # on the vision families, questions about one image: a shared prefix
    encoder = PromptEncoder(loaded)
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    assert not vision or [0, 1, 2] in prefix.image_groups(batch)
    model = add_lora(loaded.model, TrainConfig(lora=True)).eval()
    projection = model.get_output_embeddings()
    with torch.no_grad():
        logits, labels = forward(model, batch)
        with hidden_states_out(model) as head:
            hidden, hidden_labels = forward(model, batch)
    assert model.get_output_embeddings() is projection  # restored
    assert torch.equal(labels, hidden_labels)
    assert hidden.shape == (*labels.shape, model.config.get_text_config().hidden_size)
    torch.testing.assert_close(head(hidden), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("spec", [{"name": "forward_kl"}, {"name": "cross_entropy"}])
def test_liger_kernels_equal_the_plain_term_on_a_gpu(spec):
    if resolve_backend("liger") != "liger":
        pytest.skip("needs a CUDA GPU and liger-kernel")
    head = fused.OutputHead(toy_head(vocab=300, width=64).projection.cuda())
    targets = toy_targets(batch=4, length=9, vocab=300, hard=spec["name"] == "cross_entropy")
    targets = TokenTargets(
        targets.mask.cuda(),
        logprobs=None if targets.logprobs is None else targets.logprobs.cuda(),
        token_ids=None if targets.token_ids is None else targets.token_ids.cuda(),
    )
    term = Term("forget", build_teacher("base"), build_loss(spec))
    hidden = torch.randn(4, 9, 64, device="cuda", requires_grad=True)
    plain = term_value(term, head(hidden), targets, targets.mask)
    (plain_grad,) = torch.autograd.grad(plain, hidden)
    value = fused_term_value(term, hidden, head, targets, backend="liger")
    (grad,) = torch.autograd.grad(value, hidden)
    torch.testing.assert_close(value, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad, plain_grad, rtol=1e-3, atol=1e-5)


def test_setups_that_keep_the_head_from_a_fused_loss_are_refused():
    fine = {"shards_parameters": False, "processes": 1, "head_trainable": True}
    check_fused_setup("chunked", **fine)
    check_fused_setup("chunked", **{**fine, "processes": 2, "head_trainable": False})
    with pytest.raises(ValueError, match="FSDP and DeepSpeed ZeRO-3"):
        check_fused_setup("chunked", **{**fine, "shards_parameters": True})
    with pytest.raises(ValueError, match="2 processes needs a frozen output projection"):
        check_fused_setup("chunked", **{**fine, "processes": 2})
