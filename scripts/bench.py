"""Engine vs naive loops: memory and time of the engine's choices, checked equal first.

Usage: python scripts/bench.py [--only b4,b8,b9] [--smoke] [--output FILE] [--table FILE]

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
  b8  b8_real_model      a real model (SmolLM2-135M): LoRA VGID-text step against the peer
                         baselines, its breakdown, an evaluation pass at the real token budgets
  b9  b9_peer_step       a LoRA KL step on a LLaVA-7B-proportional 32-layer stack, the engine vs
                         the naive loop and the peer baselines: time and memory
The peer baselines (scripts/peer_baselines.py) are what the best peers do: torchunlearn's cached
fp16 reference, TRL's adapter-disabled reference, `logits_to_keep` alone, open-unlearning's
batched evaluation. Timed variants run interleaved, round after round, after a warm-up; each
row keeps the median and the spread. Results go to a dated JSON file; `--table FILE` prints the
README's table from one (scripts/bench_last_run.json is the last full run's copy).
`--smoke` runs everything at tiny sizes in seconds (tests/scripts/test_bench.py runs it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
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
    b9_peer_step,
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
    "b9": b9_peer_step,
}


def print_table(rows: list[dict]) -> None:
    header = ("bench", "shape", "metric", "budget", "naive", "best peer", "engine", "ratio",
              "vs best")  # fmt: skip
    lines = [header]
    for r in rows:
        best = f"{r['best_peer']} {r['peers'][r['best_peer']]}" if r.get("best_peer") else "—"
        values = (r["bench"], r["shape"][:60], r["metric"], r["budget"], r["naive"], best,
                  r["engine"], r["ratio"], r["ratio_vs_best"])  # fmt: skip
        lines.append(tuple("—" if v is None else str(v) for v in values))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


PEER_COLUMNS = {  # a results file's peer names → the README's column headers
    "torchunlearn": "torchunlearn (fp16 cache)",
    "trl": "TRL (adapters off)",
    "logits_to_keep": "`logits_to_keep` alone",
    "open_unlearning": "open-unlearning (batch 32)",
}


def _cell(r: dict, name: str | None, value: float | None) -> str:
    """A value with its spread over the interleaved rounds, where there was more than one."""
    if value is None:
        return "—"
    runs = r["spreads"].get(name) if name else None
    text = f"{value:,.4g}"
    if runs and runs["runs"] > 1:
        text += f" ({runs['low']:.3g}–{runs['high']:.3g})"
    return text


def markdown_table(report: dict) -> str:
    """The README's Performance table from a results file: one column per baseline, then for
    each bench its shapes with their precision, what was checked and what a ratio depends on."""
    header = ["bench", "metric", "token budget", "naive", *PEER_COLUMNS.values(), "engine",
              "× vs naive", "× vs best peer"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    notes: dict[tuple, None] = {}
    for r in report["rows"]:
        spreads = r["spreads"]
        engine_key = next((k for k in spreads if k.startswith("engine")), "engine")
        naive_key = next((k for k in spreads if k.startswith(("naive", "one_at", "rouge"))), None)
        peer_cells = []
        for peer in PEER_COLUMNS:
            key = next((k for k in spreads if k.startswith(peer) or k.startswith("batched32")
                        and peer == "open_unlearning"), peer)  # fmt: skip
            peer_cells.append(_cell(r, key, r["peers"].get(peer)))
        best = f"{r['ratio_vs_best']}× ({r['best_peer']})" if r["best_peer"] else "—"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']}×"
        cells = [r["bench"].upper(), r["metric"], r["budget"], _cell(r, naive_key, r["naive"]),
                 *peer_cells, _cell(r, engine_key, r["engine"]), ratio, best]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        notes[(r["bench"].upper(), r["shape"], r["precision"], r["check"], r["caveat"])] = None
    lines.append("")
    for bench, shape, precision, check, caveat in notes:
        text = f"- **{bench}** {shape}; {precision}. Checked: {check}."
        lines.append(text + (f" Depends on: {caveat}." if caveat else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="e.g. b1,b4")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not numbers")
    parser.add_argument(
        "--output", help="results file (default: runs/bench/bench-<date>.json; dated)"
    )
    parser.add_argument("--table", metavar="RESULTS", help="print a results file's README table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return
    if args.worker:
        bench = BENCHES[args.worker.split(":")[0]]
        print(json.dumps(bench.worker(args.worker, sizes)))
        return
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        parser.error(f"--only: unknown {unknown}; expected some of {', '.join(BENCHES)}")
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows = []
    failed = {}
    for name in chosen:
        try:
            rows += BENCHES[name].run(sizes, args.smoke)
        except Exception as error:  # a failed check: the other comparisons still run and save
            traceback.print_exc()
            failed[name] = f"{type(error).__name__}: {error}"
    print_table(rows)
    today = datetime.date.today().isoformat()
    report = {
        "date": today,
        "wall_s": round(time.perf_counter() - started, 1),
        # 1, 5 and 15-minute load averages: above the thread count, other jobs shared the CPU
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "device": str(DEVICE),
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU"
        if DEVICE.type == "cpu"
        else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "command": " ".join(["python", "scripts/bench.py", *sys.argv[1:]]),
        "sizes": asdict(sizes),
        "rows": rows,
        "failed": failed,
    }
    output = Path(args.output or f"runs/bench/bench-{today}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (see above; the results file has the others)")


if __name__ == "__main__":
    main()
