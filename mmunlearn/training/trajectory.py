"""Numbers measured during training: methods that cross a threshold and then collapse or drift
show it here, not in the last numbers alone (shared/DESIGN.md).

What is measured comes from the caller (`Measure`; the recipes pass forget/retain ROUGE-L from
`mmunlearn.evaluation.trajectory`), so training does not depend on evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mmunlearn.io import atomic_write_json
from mmunlearn.models.loading import LoadedModel
from mmunlearn.training.selection import BestKeeper

Measure = Callable[[LoadedModel], dict[str, float]]  # the student → {name: value} at one step


class TrajectoryCallback(TrainerCallback):
    """Every `every` steps (and at the last), `measure` the student.

    Points are written to `path` as they are measured (before the Trainer saves the checkpoint of
    the same step), so a resumed run picks up every point up to its checkpoint.
    """

    def __init__(
        self,
        processor: Any,
        kind: str,
        measure: Measure,
        every: int,
        path: Path,
        keeper: BestKeeper | None = None,
        log: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        """`keeper`: offered every point (`train.keep_best`). `log`: the Trainer's `log`, so the
        points reach the loggers of `train.report_to` (as `eval/<name>`) and train_log.json."""
        self.processor, self.kind, self.every, self.path = processor, kind, every, path
        self.measure, self.keeper, self.log = measure, keeper, log
        self.points: list[dict[str, Any]] = []

    def restore(self, step: int) -> None:
        """Keep the points a killed run measured up to `step` (where it resumes)."""
        if self.path.is_file():
            points = json.loads(self.path.read_text())
            self.points = [point for point in points if point["step"] <= step]
        if self.keeper is not None:
            self.keeper.restore(step)

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        if model is not None and state.global_step == 0:
            self._measure(model, 0)
        return control

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        step = state.global_step
        if model is not None and (step % self.every == 0 or step == state.max_steps):
            self._measure(model, step)
        return control

    def _measure(self, model: Any, step: int) -> None:
        was_training = model.training
        values = self.measure(LoadedModel(model, self.processor, self.kind))
        model.train(was_training)
        self.points.append({"step": step, **values})
        atomic_write_json(self.path, self.points)
        if self.keeper is not None:
            self.keeper.consider(model, self.points)
        if self.log is not None:
            self.log({f"eval/{name}": value for name, value in values.items()})
