"""Engine vs naive loops: memory and time of the engine's choices, checked equal first.

Usage: python scripts/bench.py [--only b1,b4] [--smoke] [--output runs/bench/bench.json]

Each comparison runs both sides in one process on the same inputs and seeds, FIRST asserts that
they compute the same numbers (the tolerance is printed), then times them. Memory on CPU is the
peak RSS of a fresh subprocess per variant (`--worker KEY`, see benchmarks/common.py); on a GPU
torch.cuda.max_memory_allocated. The naive side is scripts/naive_reference.py. Each comparison is
one module of scripts/benchmarks/ (its docstring says what it compares):

  b1  b1_answer_logits   loss memory/time: answer-position logits vs all-position log-softmax
  b2  b2_teacher_sharing LoRA adapters disabled for the teacher vs a deep-copied teacher
  b3  b3_vgid_step       a full VGID step (forget + retain, LoRA) vs the naive loop, two shapes
  b4  b4_evaluation      batched generation, ROUGE-L throughput, MCQ options sharing a prefix
  b5  b5_teacher_cache   cached targets, shared image prefixes, batched draws, top-k targets
  b6  b6_gpu_step        GPU only: a LLaVA-7B-shaped VGID LoRA step: samples/s, memory, MFU
  b7  b7_fused_head      the fused head (train.fused_head) vs plain answer logits
  b8  b8_real_model      a real model (SmolLM2-135M): LoRA KL step, its breakdown, cached teacher
`--smoke` runs everything at tiny sizes in seconds (tests/scripts/test_bench.py runs it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import torch

# this checkout's package and the yardstick and benchmarks beside this file, whatever is installed
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from benchmarks import (  # noqa: E402
    b1_answer_logits,
    b2_teacher_sharing,
    b3_vgid_step,
    b4_evaluation,
    b5_teacher_cache,
    b6_gpu_step,
    b7_fused_head,
    b8_real_model,
)
from benchmarks.common import DEVICE, FULL, SMOKE  # noqa: E402

BENCHES = {
    "b1": b1_answer_logits,
    "b2": b2_teacher_sharing,
    "b3": b3_vgid_step,
    "b4": b4_evaluation,
    "b5": b5_teacher_cache,
    "b6": b6_gpu_step,
    "b7": b7_fused_head,
    "b8": b8_real_model,
}


def print_table(rows: list[dict]) -> None:
    header = ("bench", "shape", "metric", "naive", "engine", "ratio", "target", "met")
    lines = [header] + [tuple(str(r[k]) for k in header) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="e.g. b1,b4")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not numbers")
    parser.add_argument("--output", default="runs/bench/bench.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    if args.worker:
        bench = BENCHES[args.worker.split(":")[0]]
        print(json.dumps(bench.worker(args.worker, sizes)))
        return
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        parser.error(f"--only: unknown {unknown}; expected some of {', '.join(BENCHES)}")
    rows = []
    for name in chosen:
        rows += BENCHES[name].run(sizes, args.smoke)
    print_table(rows)
    report = {
        "date": datetime.date.today().isoformat(),
        "device": str(DEVICE),
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU"
        if DEVICE.type == "cpu"
        else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "command": " ".join(["python", "scripts/bench.py", *sys.argv[1:]]),
        "sizes": asdict(sizes),
        "rows": rows,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
