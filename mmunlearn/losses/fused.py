"""Token-level terms computed from final hidden states, fusing the output projection with the loss.

The plain path asks the model for logits at the answer positions (B, K, V) and keeps them, their
float32 copy and their log-softmax for the backward pass: for a 128k vocabulary and 2,048 answer
tokens that is 1 GiB per tensor. The fused head (`train.fused_head`) stops the model before its
output projection and computes each term over chunks of valid tokens, so that at most one chunk's
logits exist at a time:

- `chunked` (any device): project a chunk, compute its loss and, at once, that loss's gradient
  for the chunk's hidden states and the head's trainable weights; drop the logits. The backward
  pass only scales the gradients kept (Liger's scheme, written in torch for every token-level
  loss). The same value and gradients as the plain path up to float rounding.
- `liger` (CUDA, `pip install liger-kernel`): Liger's Triton kernels, which compute the gradient
  inside the forward pass, for the two losses they implement: forward KL to a soft teacher and
  cross-entropy on hard labels; other losses take the `chunked` path. Where a GPU or the package
  is missing, `resolve_backend` says so in the log and falls back to `chunked`.

Sequence- and pair-level losses (NPO, SimNPO, DPO) need whole-answer log-likelihoods: their
terms get the answer logits from the head, as on the plain path.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from typing import Any

import torch

from mmunlearn.losses.divergences import CrossEntropy, ForwardKL
from mmunlearn.losses.objective import Term, term_count
from mmunlearn.models.forward import OutputHead
from mmunlearn.teachers.targets import TokenTargets

log = logging.getLogger(__name__)

BACKENDS = ("off", "chunked", "liger")
CHUNK_ELEMENTS = 1 << 23  # logits per chunk: 32 MiB in float32 (256 tokens of a 32k vocabulary)


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"train.fused_head={backend!r}; expected one of {BACKENDS}")


def liger_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None


def resolve_backend(backend: str) -> str:
    """`backend`, or `chunked` in place of `liger` where its kernels cannot run (logged)."""
    check_backend(backend)
    if backend == "liger" and not liger_available():
        why = "no CUDA GPU" if not torch.cuda.is_available() else "liger-kernel is not installed"
        log.warning("train.fused_head=liger: %s; using the chunked fused head instead", why)
        return "chunked"
    return backend


def check_fused_setup(
    backend: str, *, shards_parameters: bool, processes: int, head_trainable: bool
) -> None:
    """Refuse the setups where the output projection cannot be applied outside the model's
    forward: FSDP / ZeRO-3 keep it sharded there, and DDP (which looks for parameters its
    forward did not use) would count a trainable projection's gradient twice."""
    if shards_parameters:
        raise ValueError(
            f"train.fused_head={backend} applies the output projection outside the model's "
            "forward, where FSDP and DeepSpeed ZeRO-3 keep it sharded; set train.fused_head=off"
        )
    if processes > 1 and head_trainable:
        raise ValueError(
            f"train.fused_head={backend} with {processes} processes needs a frozen output "
            "projection: DDP sees it unused by the forward, then receives its gradient. Train "
            "with LoRA (train.lora=true, a scope without the head) or set train.fused_head=off"
        )


def fusable(term: Term) -> bool:
    """Whether the term's loss is token-level on logits (per-token values the head can chunk)."""
    return term.loss.level == "token" and term.loss.reads == "logits"


def fused_term_value(
    term: Term,
    hidden: torch.Tensor,
    head: OutputHead,
    targets: TokenTargets,
    backend: str = "chunked",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """`objective.term_value` of a token-level term from answer-position hidden states (B, K, H)."""
    assert fusable(term), "sequence and pair losses take the head's logits"
    count = term_count(term, targets).clamp(min=1).float()  # what term_value divides by
    if backend == "liger" and hidden.is_cuda and head.plain_linear:
        value = _liger_sum(term.loss, hidden, head, targets)
        if value is not None:
            return value / count
    return chunked_sum(term.loss, hidden, head, targets, chunk_elements) / count


def chunked_sum(
    loss: Any,
    hidden: torch.Tensor,
    head: OutputHead,
    targets: TokenTargets,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Σ over valid positions of `loss(head(hidden), targets)`, one chunk of logits at a time.

    Under autograd each chunk's gradient (for the hidden states and the head's trainable
    weights) is taken as soon as its loss is known, and the chunk's logits are freed; the
    backward pass only scales those gradients. Exact because the sum is linear in each chunk.
    """
    rows = targets.mask.flatten().nonzero().squeeze(-1)  # (N,) valid positions of B·K
    size = max(1, chunk_elements // _vocab_size(head, targets))
    chunks = rows.split(size)
    names = [name for name, p in head.projection.named_parameters() if p.requires_grad]
    params = [head.projection.get_parameter(name) for name in names]
    if not torch.is_grad_enabled() or not (hidden.requires_grad or params):
        flat = hidden.flatten(0, 1)
        total = hidden.new_zeros((), dtype=torch.float32)
        for chunk in chunks:
            total = total + _chunk_sum(loss, head, flat.index_select(0, chunk), targets, chunk)
        return total
    return _GradientInForward.apply(
        functools.partial(_sum_and_gradients, loss, head, targets, chunks, names), hidden, *params
    )


def _chunk_sum(
    loss: Any,
    head: OutputHead,
    hidden: torch.Tensor,
    targets: TokenTargets,
    chunk: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The loss summed over one chunk's positions: hidden (n, H) at flat positions `chunk`."""
    return loss(head(hidden, params).unsqueeze(0), _select(targets, chunk)).float().sum()


def _sum_and_gradients(
    loss: Any,
    head: OutputHead,
    targets: TokenTargets,
    chunks: tuple[torch.Tensor, ...],
    names: list[str],
    hidden: torch.Tensor,
    params: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The sum over all chunks and its gradient for `hidden` and each of `params` (the head's
    trainable parameters, `names`). The chunks differentiate detached stand-ins of the
    parameters: the real ones receive their gradient once, from the backward pass (DDP counts
    on that)."""
    flat = hidden.detach().flatten(0, 1)  # (B·K, H)
    grad_hidden = torch.zeros_like(flat) if hidden.requires_grad else None
    grad_params = [torch.zeros_like(p) for p in params]
    stand_ins = {name: p.detach().requires_grad_() for name, p in zip(names, params, strict=True)}
    total = flat.new_zeros((), dtype=torch.float32)
    for chunk in chunks:
        with torch.enable_grad():
            piece = flat.index_select(0, chunk).requires_grad_(hidden.requires_grad)
            chunk_total = _chunk_sum(loss, head, piece, targets, chunk, stand_ins)
        wrt = ([piece] if grad_hidden is not None else []) + list(stand_ins.values())
        grads = list(torch.autograd.grad(chunk_total, wrt, allow_unused=True))
        if grad_hidden is not None:
            grad_hidden.index_add_(0, chunk, grads.pop(0).to(grad_hidden.dtype))
        for accumulated, grad in zip(grad_params, grads, strict=True):
            if grad is not None:
                accumulated.add_(grad)
        total = total + chunk_total.detach()
    grad_hidden = None if grad_hidden is None else grad_hidden.view_as(hidden)
    return total, [grad_hidden, *grad_params]


class _GradientInForward(torch.autograd.Function):
    """A scalar whose gradients were computed with it: backward only scales them."""

    @staticmethod
    def forward(ctx: Any, compute: Any, hidden: torch.Tensor, *params: torch.Tensor) -> Any:
        total, grads = compute(hidden, params)
        ctx.has_hidden_grad = grads[0] is not None
        ctx.save_for_backward(*[g for g in grads if g is not None])
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Any:
        saved = list(ctx.saved_tensors)
        grad_hidden = saved.pop(0) * grad_output if ctx.has_hidden_grad else None
        return (None, grad_hidden, *[g * grad_output for g in saved])


def _select(targets: TokenTargets, rows: torch.Tensor) -> TokenTargets:
    """The targets at flat positions `rows` of (B, K), as a batch of one row (1, n)."""
    mask = targets.mask.flatten()[rows].unsqueeze(0)
    if targets.logprobs is not None:
        logprobs = targets.logprobs.flatten(0, 1).index_select(0, rows).unsqueeze(0)
        return TokenTargets(mask, logprobs=logprobs)
    return TokenTargets(mask, token_ids=targets.token_ids.flatten()[rows].unsqueeze(0))


def _vocab_size(head: OutputHead, targets: TokenTargets) -> int:
    if targets.logprobs is not None:
        return targets.logprobs.shape[-1]
    return int(getattr(head.projection, "out_features", 0) or head.projection.weight.shape[0])


def _liger_sum(
    loss: Any, hidden: torch.Tensor, head: OutputHead, targets: TokenTargets
) -> torch.Tensor | None:
    """The sum over valid tokens of the loss by a Liger kernel; None for losses it lacks."""
    from liger_kernel.transformers import (  # noqa: PLC0415 (CUDA-only, optional)
        LigerFusedLinearCrossEntropyLoss,
        LigerFusedLinearKLDivLoss,
    )

    mask = targets.mask.flatten()
    student = hidden.flatten(0, 1)[mask]  # (N, H)
    weight = head.projection.weight
    if type(loss) is ForwardKL and targets.logprobs is not None:
        probs = targets.logprobs.flatten(0, 1)[mask].exp()  # (N, V)
        return LigerFusedLinearKLDivLoss(reduction="sum")(student, weight, probs)
    if type(loss) is CrossEntropy and targets.token_ids is not None:
        labels = targets.token_ids.flatten()[mask]  # (N,)
        return LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight, student, labels)
    return None
