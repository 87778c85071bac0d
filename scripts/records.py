"""What every results script writes beside its numbers: the machine, and a markdown table."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path

from mmunlearn.io import atomic_write_text


def machine() -> str:
    return f"{os.cpu_count()}-core {platform.machine()} CPU"


def write_table(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], footer: Sequence[str]
) -> None:
    """A markdown table and its footer lines, written atomically and printed."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join([*lines, "", *footer]) + "\n"
    atomic_write_text(path, text)
    print(text)


def lora_budget(steps: int, lr: float, batch_size: int, rank: int = 8) -> list[str]:
    """One LoRA unlearning budget as `--set` overrides, shared by the real-model scripts
    (alpha = 2 × rank)."""
    return [
        f"train.steps={steps}",
        f"train.lr={lr}",
        f"train.batch_size={batch_size}",
        "train.lora=true",
        f"train.lora_rank={rank}",
        f"train.lora_alpha={2 * rank}",
    ]
