"""`mmunlearn sweep`: the grid, resumable points, the best point per method and the frontier."""

import json

import pytest

import mmunlearn.sweep as sweep
from mmunlearn.cli import main
from mmunlearn.evaluation.frontier import pareto_front
from mmunlearn.sweep import grid_points, parse_grid, point_id


def test_the_grid_is_the_product_of_its_axes_and_method_axes_apply_to_their_method():
    axes = parse_grid(["train.lr=1e-4,3e-4", "npo:loss.beta=0.05,0.1"], ["ga", "npo"])
    points = grid_points(["ga", "npo"], axes)
    assert points[:2] == [("ga", ("train.lr=1e-4",)), ("ga", ("train.lr=3e-4",))]
    assert len(points) == 2 + 4
    assert ("npo", ("train.lr=3e-4", "loss.beta=0.05")) in points
    assert point_id(*points[-1]) == "npo__train.lr=3e-4__loss.beta=0.1"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("train.lr", "expected KEY=V1,V2"),
        ("train.lr=", "expected KEY=V1,V2"),
        ("simnpo:loss.beta=1", "method 'simnpo' is not in --methods (ga, npo)"),
    ],
)
def test_a_malformed_grid_is_named(spec, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_grid([spec], ["ga", "npo"])


def test_a_setting_given_twice_is_refused():
    with pytest.raises(ValueError, match="names 'train.lr' twice"):
        parse_grid(["train.lr=1", "train.lr=2"], ["ga"])


def test_pareto_front_keeps_the_points_no_other_beats():
    points = [
        {"forget": 0.5, "retain": 1.0},
        {"forget": 0.1, "retain": 0.9},
        {"forget": 0.2, "retain": 0.8},  # beaten by the second
        {"forget": 0.0, "retain": 0.1},
    ]
    assert pareto_front(points) == [3, 1, 0]


def test_an_unknown_setting_fails_before_any_training(tmp_path, capsys):
    args = ["sweep", "--methods", "ga", "--grid", "train.lrr=1,2", "--quick"]
    assert main([*args, "--output-dir", str(tmp_path / "out")]) == 2
    assert "train.lrr" in capsys.readouterr().err
    assert not (tmp_path / "out" / "world").exists()


def test_a_quick_sweep_writes_points_best_and_frontier_and_skips_finished_points(
    tmp_path, monkeypatch, capsys
):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["sweep", "--methods", "ga", "--grid", "train.lr=1e-3,1e-2", "--quick"]
    args += ["--set", "train.steps=1", "--output-dir", str(out), "--cache-dir", str(cache)]
    assert main(args) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert sorted(summary["points"]) == ["ga__train.lr=1e-2", "ga__train.lr=1e-3"]
    assert summary["best"]["ga"] in summary["points"]
    assert set(summary["references"]) == {"base", "oracle"}
    point = summary["points"]["ga__train.lr=1e-3"]
    assert point["config"]["train"]["lr"] == pytest.approx(1e-3)
    assert set(point["validation"]) >= {"forget", "retain", "neighbor"}
    assert (out / "frontier.png").stat().st_size > 0
    assert "## Best point of each method" in (out / "sweep.md").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished point was trained again")

    monkeypatch.setattr(sweep, "unlearn", no_training)
    assert main(args) == 0  # every point finished: nothing trains
    monkeypatch.setattr(sweep, "WORLD_ANSWER_TOKENS", 3)
    assert main(args) == 0  # the scoring changed: saved models are scored, not trained
    point = json.loads((out / "points" / "ga__train.lr=1e-3.json").read_text())
    assert point["scoring"]["max_new_tokens"] == 3 and point["config"]["train"]["steps"] == 1
    capsys.readouterr()
    assert main([*args, "--set", "train.seed=1"]) != 0  # other settings: the points run again
    assert "a finished point was trained again" in capsys.readouterr().err
