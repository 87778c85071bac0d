"""scripts/vgid_ranking.py scores options under base, noised teacher, student and oracle."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from vgid_ranking import mean_over_draws  # noqa: E402

from mmunlearn.testing import tiny_llava  # noqa: E402


def test_the_teacher_mixes_draws_in_probability():
    draws = [[[[math.log(0.2)]]], [[[math.log(0.6)]]]]
    assert math.exp(mean_over_draws(draws)[0][0][0]) == pytest.approx(0.4)


def test_it_reports_each_model(examples, world_dir, tmp_path):
    for name, seed in (("base", 0), ("vgid", 1), ("oracle", 2)):
        tiny_llava(examples, seed=seed).save(tmp_path / name)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vgid_ranking.py"), "--world", str(world_dir),
         "--base", str(tmp_path / "base"), "--vgid", str(tmp_path / "vgid"), "--oracle",
         str(tmp_path / "oracle"), "--draws", "2", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "ranking.json").read_text())["results"]
    assert set(results) == {"image", "text"}  # the tiny world has unused names to swap in
    for modality in results.values():
        models = modality["models"]
        assert {"base", "vgid student", "oracle"} <= set(models) and len(models) == 4
        for name in ("base", "oracle"):
            assert 0 <= models[name]["mcq_mean"] <= 1
            assert 0 < models[name]["options_first_mass"] <= 1 + 1e-6
