"""The trajectory callback records what its caller measures, on its schedule, and resumes."""

import json
from types import SimpleNamespace

import torch

from mmunlearn.training.trajectory import TrajectoryCallback


def run_steps(callback: TrajectoryCallback, model: torch.nn.Module, max_steps: int) -> None:
    state = SimpleNamespace(global_step=0, max_steps=max_steps)
    callback.on_train_begin(None, state, None, model=model)
    for step in range(1, max_steps + 1):
        state.global_step = step
        callback.on_step_end(None, state, None, model=model)


def test_measures_at_the_start_every_n_steps_and_at_the_last(tmp_path):
    model = torch.nn.Linear(2, 2).train()
    seen = []

    def measure(loaded):
        seen.append((loaded.model is model, loaded.kind))
        model.eval()  # a measure may switch modes: the callback puts training mode back
        return {"forget": 0.5, "retain": 1.0}

    path = tmp_path / "trajectory.json"
    run_steps(TrajectoryCallback("processor", "causal_lm", measure, 3, path), model, 7)
    points = json.loads(path.read_text())
    assert [point["step"] for point in points] == [0, 3, 6, 7]
    assert points[0] == {"step": 0, "forget": 0.5, "retain": 1.0}
    assert seen == [(True, "causal_lm")] * 4 and model.training


def test_restore_keeps_the_points_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps([{"step": s, "forget": 0.0} for s in (0, 2, 4, 6)]))
    callback = TrajectoryCallback(None, "causal_lm", lambda loaded: {}, 2, path)
    callback.restore(4)
    assert [point["step"] for point in callback.points] == [0, 2, 4]
