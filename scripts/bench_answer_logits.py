"""Engine vs naive: one distillation step's forward + KL + backward, answer positions only vs
the full (B, T, V) logits that a naive loop computes and then masks.

Usage: python scripts/bench_answer_logits.py [--vocab 32000] [--batch 16] [--prompt 600] [--answer 8]
Both paths run on the same model and inputs; the script first checks that they compute the same
loss and gradients, then prints the median step time of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench import random_answer_batch, random_llama  # scripts/bench.py, beside this file

from mmunlearn.losses.divergences import ForwardKL, masked_mean
from mmunlearn.models.encoding import IGNORE_INDEX
from mmunlearn.models.forward import answer_logits
from mmunlearn.teachers.targets import TokenTargets, to_device


def engine_step(model, batch, teacher_logprobs):
    logits, labels = answer_logits(model, batch)  # (B, K, V)
    targets = TokenTargets(mask=labels != IGNORE_INDEX, logprobs=teacher_logprobs)
    return masked_mean(ForwardKL()(logits, targets), targets.mask)


def naive_step(model, batch, teacher_logprobs):
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    logits = model(**inputs).logits  # (B, T, V): every position
    shifted = logits[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX  # (B, T-1)
    k = teacher_logprobs.shape[1]
    full_teacher = torch.zeros_like(shifted, dtype=torch.float32)
    full_teacher[:, -k:] = teacher_logprobs
    student = torch.log_softmax(shifted.float(), -1)
    kl = (full_teacher.exp() * (full_teacher - student)).sum(-1) * mask
    return kl.sum() / mask.sum()


def timed(fn, model, batch, teacher, repeats: int, device: torch.device) -> tuple[float, list]:
    times = []
    for _ in range(repeats + 2):
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(model, batch, teacher).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]), [p.grad.clone() for p in model.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--prompt", type=int, default=600, help="prompt tokens (LLaVA: ~576 image tokens + text)"
    )
    parser.add_argument("--answer", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    length = args.prompt + args.answer
    model = random_llama(args.vocab, args.width, args.layers, length).to(device)
    gen = torch.Generator().manual_seed(0)
    batch = to_device(random_answer_batch(args.batch, length, args.answer, args.vocab, gen), device)
    with torch.no_grad():
        teacher = torch.log_softmax(
            torch.randn(args.batch, args.answer, args.vocab, device=device), -1
        )
    engine_loss, naive_loss = engine_step(model, batch, teacher), naive_step(model, batch, teacher)
    torch.testing.assert_close(engine_loss, naive_loss, rtol=1e-4, atol=1e-5)
    engine_time, engine_grads = timed(engine_step, model, batch, teacher, args.repeats, device)
    naive_time, naive_grads = timed(naive_step, model, batch, teacher, args.repeats, device)
    for a, b in zip(engine_grads, naive_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    full = args.batch * (args.prompt + args.answer) * args.vocab * 4 / 2**20
    kept = args.batch * (args.answer + 1) * args.vocab * 4 / 2**20
    print(
        f"device {device}, B={args.batch}, T={args.prompt + args.answer}, K={args.answer}, V={args.vocab}"
    )
    print(f"same loss ({engine_loss.item():.6f}) and gradients: checked")
    print(f"logits held: engine {kept:.1f} MiB, naive {full:.1f} MiB ({full / kept:.0f}x)")
    print(
        f"step time: engine {engine_time * 1e3:.1f} ms, naive {naive_time * 1e3:.1f} ms, speed-up {naive_time / engine_time:.2f}x"
    )


if __name__ == "__main__":
    main()
