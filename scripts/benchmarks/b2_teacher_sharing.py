"""b2 — teacher sharing: the student's LoRA adapters disabled for the teacher (the engine) vs
a deep-copied teacher (the naive loop), on the LLaVA-7B-ratio shape: parameter bytes and the
peak memory of building both and taking one VGID step."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from benchmarks.common import Sizes, measure_in_subprocess, row
from benchmarks.tiny_world import VgidSides, parameter_bytes, step_memory


def run(s: Sizes, smoke: bool) -> list[dict]:
    shape = s.shapes[1]
    with tempfile.TemporaryDirectory() as tmp:
        sides = VgidSides(s, shape, Path(tmp), ("deep_copy", "adapters_off"))
        shared = parameter_bytes(sides.models["adapters_off"])
        with sides.trainers["deep_copy"].teacher_context.frozen() as teacher:
            copied = parameter_bytes(sides.models["deep_copy"], teacher)
        losses = {v: sides.steps[v]() for v in ("deep_copy", "adapters_off")}
    check_text = "step-1 loss rtol 1e-5"
    torch.testing.assert_close(losses["adapters_off"], losses["deep_copy"], rtol=1e-5, atol=1e-7)
    print(f"b2: same step-1 loss ({losses['adapters_off']:.6f}, {check_text})")
    memory = {
        v: measure_in_subprocess(f"b2:{v}", smoke, worker) for v in ("deep_copy", "adapters_off")
    }
    name = f"{shape.name} (width {shape.width}, vocab {shape.vocab})"
    bytes_row = row(
        "b2",
        name,
        "parameter MiB (student + teacher)",
        copied / 2**20,
        shared / 2**20,
        "engine <= 0.52 of two copies",
        1 / 0.52,
        check_text,
    )
    return [
        bytes_row,
        row(
            "b2",
            name,
            "peak memory, build + step (MiB)",
            memory["deep_copy"]["total_mib"],
            memory["adapters_off"]["total_mib"],
            "—",
            None,
            check_text,
        ),
    ]


def worker(key: str, s: Sizes) -> dict[str, float]:
    """`b2:VARIANT`: building the sides and one step."""
    return step_memory(s, s.shapes[1], key.split(":")[-1])
