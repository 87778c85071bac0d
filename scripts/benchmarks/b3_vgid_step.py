"""b3 — a full VGID step (forget + retain, LoRA): the engine vs the naive loop on two model
shapes, checked equal in loss and in LoRA weights after three steps; step time and peak memory."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Sizes, measure_in_subprocess, row
from benchmarks.tiny_world import VgidSides, step_memory, trainable


def run(s: Sizes, smoke: bool) -> list[dict]:
    rows = []
    goals = {s.shapes[0].name: (1.8, 3.0), s.shapes[1].name: (1.0, 1.15)}
    for shape in s.shapes:
        with tempfile.TemporaryDirectory() as tmp:
            sides = VgidSides(s, shape, Path(tmp), ("naive", "engine"))
            losses = {v: [] for v in ("naive", "engine")}
            times = {v: [] for v in ("naive", "engine")}
            for _ in range(3):
                for variant in ("naive", "engine"):
                    start = time.perf_counter()
                    losses[variant].append(sides.steps[variant]())
                    times[variant].append(time.perf_counter() - start)
            torch.testing.assert_close(
                losses["engine"][0], losses["naive"][0], rtol=1e-4, atol=1e-6
            )
            after = {v: trainable(sides.models[v]) for v in ("naive", "engine")}
            for name, value in after["engine"].items():
                torch.testing.assert_close(value, after["naive"][name], rtol=1e-4, atol=1e-5)
        check = "step-1 loss rtol 1e-4 atol 1e-6; LoRA weights after 3 steps rtol 1e-4 atol 1e-5"
        print(
            f"b3 {shape.name}: same step-1 loss ({losses['engine'][0]:.6f}) and weights ({check})"
        )
        memory = {
            v: measure_in_subprocess(f"b3:{shape.name}:{v}", smoke, worker)
            for v in ("naive", "engine")
        }
        speed, less = goals[shape.name]
        name = f"{shape.name} (width {shape.width}, vocab {shape.vocab})"
        rows += [
            row(
                "b3",
                name,
                "step time (s)",
                statistics.median(times["naive"]),
                statistics.median(times["engine"]),
                f">= {speed}x faster",
                speed,
                check,
            ),
            row(
                "b3",
                name,
                "peak memory, build + step (MiB)",
                memory["naive"]["total_mib"],
                memory["engine"]["total_mib"],
                f">= {less}x less",
                less,
                check,
            ),
        ]
    return rows


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b3:SHAPE:VARIANT`: building the sides and one step."""
    _, shape, variant = key.split(":")
    return step_memory(s, next(x for x in s.shapes if x.name == shape), variant)
