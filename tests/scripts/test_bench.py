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
    assert {r["bench"] for r in report["rows"]} == {"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}
    for r in report["rows"]:
        # smoke sizes: the numbers mean nothing, but they exist (a step may add no RSS: inf)
        assert r["naive"] >= 0 and r["engine"] >= 0 and not math.isnan(r["ratio"]), r
        assert r["check"], r
    assert "b1: same loss" in done.stdout and "b5: LoRA weights" in done.stdout
    assert "b6: same step-1 loss" in done.stdout and "b7 smoke: same loss" in done.stdout
    assert "b8: same loss" in done.stdout
