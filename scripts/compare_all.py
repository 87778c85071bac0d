"""Every unlearning method on the default world, side by side: the README's comparison table.

Usage: python scripts/compare_all.py [--seed 0] [--output-dir runs/compare_all] [--cache-dir DIR]

Runs `mmunlearn compare` with every registered method (all but `finetune`, which is how base and
oracle are trained) under the demo's shared budget, no per-method or per-seed tuning, and writes
OUTPUT_DIR/table.md: ROUGE-L per split (forget image / text separately), the time each method's
unlearning took, the total wall time (base and oracle training included when they were not
cached), the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

from records import machine

from mmunlearn.demo import run_compare
from mmunlearn.io import atomic_write_text
from mmunlearn.methods import METHODS

COLUMNS = ("forget", "test", "retain", "neighbor", "general")


def cell(summary: dict, split: str, modality: str | None = None) -> str:
    node = summary.get(split, {})
    if modality is not None:
        node = node.get("by_modality", {}).get(modality, {})
    return f"{node['rouge_l']:.3f}" if "rouge_l" in node else "–"


def table(report: dict, timings: dict) -> list[str]:
    header = ["method", *COLUMNS, "forget image", "forget text", "unlearn s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in report["methods"].items():
        seconds = timings.get(f"unlearn_{name}_s")
        row = [name, *(cell(summary, s) for s in COLUMNS)]
        row += [cell(summary, "forget", "image"), cell(summary, "forget", "text")]
        row.append(f"{seconds:.0f}" if seconds is not None else "–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/compare_all")
    parser.add_argument("--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache)")
    args = parser.parse_args()
    methods = tuple(name for name in METHODS.names() if name != "finetune")
    begin = time.perf_counter()
    report = run_compare(
        args.output_dir, methods, args.seed, cache_dir=args.cache_dir, progress=False
    )
    minutes = (time.perf_counter() - begin) / 60
    timings = report["meta"]["timings"]
    trained = [k for k in ("base", "oracle") if timings.get(f"train_{k}_s", 0) > 30]
    lines = table(report, timings)
    lines += [
        "",
        f"ROUGE-L, seed {args.seed}; {len(methods)} methods in {minutes:.1f} min wall"
        + (f" including training {' and '.join(trained)} from scratch" if trained else "")
        + f" ({datetime.date.today()}, {machine()}; `python scripts/compare_all.py`).",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(Path(args.output_dir) / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()
