"""scripts/vgid_targets.py evaluates every model of a sweep folder against issue 17's bar."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from mmunlearn.testing import tiny_llava

ROOT = Path(__file__).resolve().parents[2]


def test_it_reports_each_model_and_what_it_misses(examples, world_dir, tmp_path):
    folder = tmp_path / "sweep"
    shutil.copytree(world_dir, folder / "world")
    models = {}
    for name, seed in (("base", 0), ("oracle", 1)):
        tiny_llava(examples, seed=seed).save(tmp_path / name)
        models[name] = str(tmp_path / name)
    tiny_llava(examples, seed=2).save(folder / "runs" / "vgid__x=1" / "model")
    summary = {"meta": {"seed": 7, "models": models}, "points": {"vgid__x=1": {}}}
    (folder / "sweep.json").write_text(json.dumps(summary))
    out = tmp_path / "targets.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vgid_targets.py"), str(folder), "--output",
         str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 7 |")]
    assert [row.split(" | ")[1] for row in rows] == ["base", "vgid__x=1", "oracle"]
    # an untrained model forgets nothing it never knew: the forget bar is missed
    assert "misses" in rows[1] and "forget" in rows[1]
