"""Several implementations of one LoRA distillation step, raced fairly on one model (b8, b9).

Every variant keeps its own copy of the LoRA weights and its own AdamW state, swapped into the
model before its step and out after it: all start from the same weights, share the frozen base,
and can be interleaved step by step. Before any timing, each variant's loss and every LoRA
gradient are checked against the naive loop's from the same weights; after the timed steps
(alternating two batch sets, so that Adam's updates are not just the signs of one gradient),
each variant's LoRA weights are checked against the naive loop's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks.common import LR, interleaved_times

Loss = Callable[[int], torch.Tensor]  # the step's loss on batch set `index % 2`


class Sides:
    def __init__(self, model: torch.nn.Module, losses: dict[str, Loss]) -> None:
        self.model = model
        self.losses = losses
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.initial = [p.detach().clone() for p in self.params]
        self.weights = {name: [p.clone() for p in self.initial] for name in losses}
        self.optimizers = {name: torch.optim.AdamW(self.params, lr=LR) for name in losses}
        self.steps = dict.fromkeys(losses, 0)

    def _swap_in(self, name: str) -> None:
        with torch.no_grad():
            for param, value in zip(self.params, self.weights[name], strict=True):
                param.copy_(value)

    def gradients(self, name: str, index: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`name`'s loss and LoRA gradients from its current weights; no update."""
        self._swap_in(name)
        self.model.zero_grad(set_to_none=True)
        loss = self.losses[name](index)
        loss.backward()
        grads = [p.grad.detach().clone() for p in self.params]
        self.model.zero_grad(set_to_none=True)
        return loss.detach(), grads

    def step(self, name: str, index: int) -> None:
        """One AdamW step of `name` on batch set `index % 2`."""
        self._swap_in(name)
        self.losses[name](index).backward()
        self.optimizers[name].step()
        self.optimizers[name].zero_grad(set_to_none=True)
        with torch.no_grad():
            for param, value in zip(self.params, self.weights[name], strict=True):
                value.copy_(param)
        self.steps[name] += 1


def _norm(tensors: list[torch.Tensor]) -> float:
    """The Frobenius norm of all `tensors` together."""
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)).item()


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """‖a − b‖ / ‖b‖ over all tensors together."""
    return _norm([x - y for x, y in zip(a, b, strict=True)]) / _norm(b)


def check_gradients(
    sides: Sides, lossy: dict[str, float], label: str, reference: str = "naive"
) -> str:
    """Every variant's loss and LoRA gradients against the reference's, from the same weights.
    Exact variants: loss rtol 1e-4, each gradient entry rtol 1e-3 (atol a millionth of the
    largest entry, for entries near zero). `lossy` variants (an fp16 cache): the gradients'
    relative error (norm over all LoRA gradients) at most the given bound. Returns the check's
    text with each lossy variant's measured errors (the loss's too)."""
    loss, grads = sides.gradients(reference)
    atol = 1e-6 * max(g.abs().max().item() for g in grads)
    measured = []
    for name in sides.losses:
        if name == reference:
            continue
        other_loss, other_grads = sides.gradients(name)
        if name in lossy:
            loss_error = abs(other_loss.item() / loss.item() - 1)
            grad_error = _relative(other_grads, grads)
            # the loss's relative error depends on how small the KL is: reported, not bounded
            assert grad_error <= lossy[name], f"{name}: gradients {grad_error:.1e} off"
            measured.append(f"{name}: loss {loss_error:.1e}, gradients {grad_error:.1e} off")
            continue
        torch.testing.assert_close(other_loss, loss, rtol=1e-4, atol=0.0, msg=f"{name} loss")
        for a, b in zip(other_grads, grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=atol, msg=f"{name} gradient")
    check = (
        f"vs {reference}: loss rtol 1e-4, all {len(grads)} LoRA gradients rtol 1e-3 atol "
        f"{atol:.1e} (1e-6 x largest)" + (f"; {'; '.join(measured)}" if measured else "")
    )
    print(f"{label}: same loss ({loss.item():.6f}) and gradients: {check}")
    return check


def race(sides: Sides, rounds: int) -> dict[str, list[float]]:
    """A warm-up round, then `rounds` timed ones: each variant takes one AdamW step per round,
    the order rotated, on alternating batch sets."""
    return interleaved_times(
        {name: (lambda index, name=name: sides.step(name, index)) for name in sides.losses},
        rounds,
    )


def check_weights(
    sides: Sides, tolerance: dict[str, float], label: str, reference: str = "naive"
) -> str:
    """After the race, each variant's LoRA weights differ from the reference's by at most its
    `tolerance` (default 1e-2) of how far the reference moved (norms over all LoRA weights).
    Adam divides by the gradient's running size, so entries whose gradient is near zero move
    by about the learning rate whatever their sign: rounding there shows, a wrong gradient
    gives differences of the update's own size. Returns each variant's measured difference."""
    ref = sides.weights[reference]
    update = [w - w0 for w, w0 in zip(ref, sides.initial, strict=True)]
    measured = []
    for name, weights in sides.weights.items():
        if name == reference:
            continue
        error = _relative(weights, ref) * _norm(ref) / _norm(update)
        assert error <= tolerance.get(name, 1e-2), f"{name}: weights {error:.1e} of the update off"
        measured.append(f"{name} {error:.0e}")
    steps = sides.steps[reference]
    check = (
        f"LoRA weights after {steps} AdamW steps (lr {LR:g}, two batch sets alternating) vs "
        f"{reference}, difference / update norm: {', '.join(measured)}"
    )
    print(f"{label}: {check}")
    return check
