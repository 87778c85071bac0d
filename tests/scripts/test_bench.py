"""scripts/bench.py keeps working: its smoke mode runs every comparison at tiny sizes (the
equality checks included, which fail the run), and writes the table. Not a timing test."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_every_comparison_and_writes_the_table(tmp_path):
    output = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--smoke", "--output", str(output)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    benches = {"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"}
    assert {r["bench"] for r in report["rows"]} == benches
    for r in report["rows"]:
        # smoke sizes: the numbers mean nothing, but they exist (a step may add no RSS: inf);
        # a row without a naive side (open-unlearning's budget) has no naive ratio
        assert r["engine"] >= 0 and r["check"], r
        assert r["naive"] is None or (r["naive"] >= 0 and not math.isnan(r["ratio"])), r
    # the peer baselines sit beside the naive loop, with the spread of the interleaved rounds
    peers = {name for r in report["rows"] for name in r["peers"]}
    assert peers == {"torchunlearn", "trl", "logits_to_keep", "open_unlearning"}
    steps = [r for r in report["rows"] if r["bench"] == "b9" and "time" in r["metric"]]
    assert steps and set(steps[0]["spreads"]) == {"naive", *steps[0]["peers"], "engine"}
    budgets = {r["budget"] for r in report["rows"] if r["metric"] == "generation time (s)"}
    assert len(budgets) == 2, budgets  # MLLMU-Bench's and open-unlearning's token budgets
    assert "b1: same loss" in done.stdout and "b5: LoRA weights" in done.stdout
    assert "b6: same step-1 loss" in done.stdout and "b7 smoke: same loss" in done.stdout
    assert "b8: same loss" in done.stdout and "b9: same loss" in done.stdout
    assert "b9: LoRA weights after" in done.stdout


def test_bench_table_renders_a_results_file_with_a_column_per_baseline(tmp_path):
    results = tmp_path / "bench.json"
    row = {
        "bench": "b9", "shape": "32 layers", "metric": "step time (s), median",
        "naive": 2.0, "engine": 1.0, "ratio": 2.0,
        "peers": {"trl": 1.5, "torchunlearn": 1.25}, "best_peer": "torchunlearn",
        "ratio_vs_best": 1.25, "spreads": {"engine": {"median": 1.0, "low": 0.9, "high": 1.2,
                                                      "runs": 3}},
        "precision": "fp32", "budget": "—", "caveat": "fp16 cache", "check": "same loss",
    }  # fmt: skip
    results.write_text(json.dumps({"rows": [row]}))
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--table", str(results)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    header, _, line, _, note = done.stdout.strip().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    cells = dict(zip(columns, [c.strip() for c in line.strip("|").split("|")], strict=True))
    assert cells["TRL (adapters off)"] == "1.5" and cells["torchunlearn (fp16 cache)"] == "1.25"
    assert cells["`logits_to_keep` alone"] == "—"  # not measured in this row
    assert cells["engine"] == "1 (0.9–1.2)"  # median and spread of the rounds
    assert cells["× vs best peer"] == "1.25× (torchunlearn)"
    # the shape, precision, check and caveat once per bench below the table
    assert note.startswith("- **B9** 32 layers; fp32. Checked: same loss.")
    assert "Depends on: fp16 cache" in note
