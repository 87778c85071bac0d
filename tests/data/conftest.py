"""A shared check for benchmark loaders: their records drive one training step and an evaluation."""

import json
import math

import pytest


@pytest.fixture()
def train_and_evaluate(tmp_path):
    """`check(examples, method)` → the evaluation summary, after one VGID (or `method`) step on
    a tiny LLaVA whose vocabulary covers `examples`."""
    from mmunlearn.data.splits import check_unlearning_data, group_by_role
    from mmunlearn.evaluation.evaluate import evaluate
    from mmunlearn.methods import build_method
    from mmunlearn.testing import tiny_llava
    from mmunlearn.training.config import TrainConfig
    from mmunlearn.training.run import train

    def check(examples, method="vgid"):
        check_unlearning_data(examples, "fixture")
        loaded = tiny_llava(examples)
        config = TrainConfig(steps=1, batch_size=2, logging_steps=1)
        out = tmp_path / "run"
        result = train(
            loaded, build_method(method), group_by_role(examples), config, out, progress=False
        )
        losses = [
            entry["loss"]
            for entry in json.loads((out / "train_log.json").read_text())
            if "loss" in entry
        ]
        assert len(losses) == 1 and math.isfinite(losses[0])
        summary, rows = evaluate(result, examples, progress=False)
        assert len(rows) == sum(ex.role in summary for ex in examples)
        return summary

    return check
