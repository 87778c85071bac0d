"""Selection rules, and `train.keep_best` saving the step the rule picks (not the last)."""

import importlib.util
import json

import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.models.loading import load_model
from mmunlearn.testing import tiny_llava
from mmunlearn.training.config import TrainConfig, load_config
from mmunlearn.training.run import train
from mmunlearn.training.selection import RULES, select


def train_world(examples, method, config, out, measure):
    """`train` of a tiny LLaVA on the world with `measure` as its validation scores."""
    return train(
        tiny_llava(examples),
        build_method(method),
        group_by_role(examples),
        config,
        out,
        progress=False,
        measure=measure,
    )


def test_forget_within_retain_takes_the_lowest_forget_that_keeps_retain():
    points = [(1.0, 1.0), (0.2, 0.97), (0.0, 0.90), (0.2, 0.99)]
    assert select(points, "forget_within_retain", reference=1.0, tolerance=0.05) == 3
    assert select(points, "forget_within_retain", reference=1.0, tolerance=0.10) == 2


def test_forget_within_retain_falls_back_to_the_highest_retain():
    points = [(0.1, 0.5), (0.0, 0.7), (0.3, 0.6)]
    assert select(points, "forget_within_retain", reference=1.0, tolerance=0.05) == 1


def test_retain_minus_forget_and_ties_go_to_the_earlier_point():
    points = [(0.5, 1.0), (0.1, 0.6), (0.3, 0.8)]
    assert select(points, "retain_minus_forget", reference=1.0, tolerance=0.0) == 0


def test_an_unknown_rule_names_the_known_ones():
    with pytest.raises(KeyError, match="train.keep_best: unknown selection rule 'forget_within'"):
        load_config(None, ["train.keep_best=forget_within", "train.eval_every=2"])
    assert "forget_within_retain" in RULES.names()


def test_keep_best_needs_eval_every():
    with pytest.raises(ValueError, match="train.eval_every to 1 or more"):
        load_config(None, ["train.keep_best=forget_within_retain"])


def test_keep_best_saves_the_winning_step_and_says_which(examples, tmp_path):
    # The measure reports scores chosen so that step 2 wins (step 4 forgets more but loses
    # retain beyond the tolerance), and snapshots the weights it was shown.
    scores = {0: (1.0, 1.0), 2: (0.3, 0.98), 4: (0.0, 0.5)}
    seen = {}

    def measure(loaded):
        step = len(seen) * 2
        seen[step] = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
        forget, retain = scores[step]
        return {"val_forget": forget, "val_retain": retain}

    config = TrainConfig(
        steps=4, lr=1e-2, batch_size=2, eval_every=2, keep_best="forget_within_retain"
    )
    out = tmp_path / "run"
    train_world(examples, "grad_diff", config, out, measure)
    best = json.loads((out / "best.json").read_text())
    assert best["step"] == 2 and best["final_step"] == 4
    saved = dict(load_model(out / "model").model.named_parameters())
    changed = [n for n in seen[2] if not torch.equal(seen[2][n], seen[4][n])]
    assert changed
    for name in changed:
        torch.testing.assert_close(saved[name], seen[2][name])
    log = json.loads((out / "train_log.json").read_text())
    assert [e["eval/val_forget"] for e in log if "eval/val_forget" in e] == [1.0, 0.3, 0.0]


def test_keep_best_is_refused_for_phased_methods(examples, tmp_path):
    config = TrainConfig(steps=2, batch_size=2, eval_every=1, keep_best="forget_within_retain")
    with pytest.raises(ValueError, match="'sequential' trains in phases"):
        train_world(examples, "sequential", config, tmp_path, lambda loaded: {})


def test_report_to_an_unknown_or_missing_logger_is_named():
    with pytest.raises(ValueError, match="'tensorbord' is not a logger"):
        load_config(None, ["train.report_to=tensorbord"])
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ValueError, match="wandb is not installed"):
            load_config(None, ["train.report_to=wandb"])


def test_report_to_tensorboard_writes_events_offline(examples, tmp_path):
    pytest.importorskip("tensorboard")
    settings = ["report_to=tensorboard", "steps=2", "batch_size=2", "logging_steps=1"]
    config = load_config(None, [f"train.{s}" for s in settings] + ["train.eval_every=1"]).train
    out = tmp_path / "run"
    train_world(examples, "ga", config, out, lambda loaded: {"forget": 0.5})
    assert list(out.rglob("events.out.tfevents.*"))


def test_keep_best_with_lora_saves_what_stopping_at_the_winning_step_saves(examples, tmp_path):
    def run(steps, **keep):
        scores = iter([(1.0, 1.0), (0.2, 1.0), (0.1, 0.2)])  # steps 0, 1, 2: step 1 wins

        def measure(loaded):
            forget, retain = next(scores)
            return {"val_forget": forget, "val_retain": retain}

        config = TrainConfig(steps=steps, lr=5e-2, batch_size=2, eval_every=1, lora=True, **keep)
        out = tmp_path / str(steps)
        loaded = train_world(examples, "grad_diff", config, out, measure)
        return dict(loaded.model.named_parameters()), out

    kept, out = run(2, keep_best="forget_within_retain")
    assert json.loads((out / "best.json").read_text())["step"] == 1
    stopped, _ = run(1)
    last, _ = run(2)
    assert any(not torch.equal(last[n], stopped[n]) for n in stopped)
    for name, value in stopped.items():
        torch.testing.assert_close(kept[name], value)
