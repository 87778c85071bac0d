"""scripts/top_k_error.py runs on a saved model and a world, and reports every k asked for."""

import subprocess
import sys
from pathlib import Path

from mmunlearn.testing import tiny_llava

ROOT = Path(__file__).resolve().parents[2]


def test_top_k_error_reports_each_k(examples, world_dir, tmp_path):
    tiny_llava(examples).save(tmp_path / "model")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "top_k_error.py"), "--model",
         str(tmp_path / "model"), "--data", str(world_dir), "--k", "2", "5"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "top-2: KL" in done.stdout and "top-5: KL" in done.stdout
