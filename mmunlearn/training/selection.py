"""Choosing the best of several measured points (a run's checkpoints, a sweep's settings).

A rule sees each point's forget and retain scores (lower forget = more forgotten, higher retain
= more kept) and the retain score of the model before unlearning (the reference), and returns
the index of the winner. Rules are registered by name (`train.keep_best=NAME`, `mmunlearn sweep
--rule NAME`). Ties go to the earlier point, so a growing list of points only ever changes its
winner to the newest one.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmunlearn.io import atomic_write_bytes, atomic_write_json
from mmunlearn.registry import Registry

log = logging.getLogger(__name__)

Scores = tuple[float, float]  # (forget, retain) of one point
Rule = Callable[[Sequence[Scores], float, float], int]
RULES: Registry[Rule] = Registry("selection rule")


@RULES.register("forget_within_retain")
def forget_within_retain(points: Sequence[Scores], reference: float, tolerance: float) -> int:
    """The lowest forget score among points whose retain is at least `reference − tolerance`
    (ties: the higher retain, then the earlier point); when none is, the highest retain."""
    allowed = [i for i, (_, retain) in enumerate(points) if retain >= reference - tolerance]
    if not allowed:
        return min(range(len(points)), key=lambda i: (-points[i][1], i))
    return min(allowed, key=lambda i: (points[i][0], -points[i][1], i))


@RULES.register("retain_minus_forget")
def retain_minus_forget(points: Sequence[Scores], reference: float, tolerance: float) -> int:
    """The largest retain − forget (`reference` and `tolerance` unused)."""
    return min(range(len(points)), key=lambda i: (points[i][0] - points[i][1], i))


def select(points: Sequence[Scores], rule: str, reference: float, tolerance: float) -> int:
    """Index of the winner of `points` under the rule named `rule`."""
    if not points:
        raise ValueError("select: no points to choose from")
    return RULES.get(rule)(points, reference, tolerance)


def describe(rule: str, tolerance: float) -> str:
    """One line a report can print under its table of chosen points."""
    doc = " ".join((RULES.get(rule).__doc__ or "").split())
    return f"`{rule}` (tolerance {tolerance:g}): {doc}"


# What a run's measure must return for `train.keep_best`: the validation half's scores.
FORGET_KEY, RETAIN_KEY = "val_forget", "val_retain"


class BestKeeper:
    """Keeps the trainable weights of the best measured step of a run (`train.keep_best`).

    `consider` is called after every measured point; when the newest point wins, its trainable
    parameters (all frozen ones are unchanged by training) go to `best_state.pt` and the step to
    `best.json`, atomically, so a resumed run still knows its best. `load_best` puts them back
    into the model at the end. The reference retain score is the first point's (step 0).
    """

    def __init__(self, rule: str, tolerance: float, directory: Path) -> None:
        RULES.get(rule)  # an unknown name fails with the known ones
        self.rule, self.tolerance = rule, tolerance
        self.state_path = directory / "best_state.pt"
        self.info_path = directory / "best.json"
        self.step: int | None = None

    def _scores(self, point: dict[str, Any]) -> Scores:
        missing = [key for key in (FORGET_KEY, RETAIN_KEY) if key not in point]
        if missing:
            raise ValueError(
                f"train.keep_best={self.rule!r} scores the validation half ({FORGET_KEY}, "
                f"{RETAIN_KEY}) and the run's measure returned {sorted(point)}"
            )
        return float(point[FORGET_KEY]), float(point[RETAIN_KEY])

    def consider(self, model: torch.nn.Module, points: list[dict[str, Any]]) -> None:
        scores = [self._scores(point) for point in points]
        winner = select(scores, self.rule, scores[0][1], self.tolerance)
        if winner != len(points) - 1 or points[winner]["step"] == self.step:
            return
        state = {
            n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.state_path, buffer.getvalue())
        self.step = int(points[winner]["step"])
        atomic_write_json(
            self.info_path,
            {"step": self.step, "rule": self.rule, "tolerance": self.tolerance, **points[winner]},
        )

    def restore(self, step: int) -> None:
        """After resuming at `step`: the best kept so far, if it was measured by then."""
        if self.info_path.is_file() and self.state_path.is_file():
            best = json.loads(self.info_path.read_text())
            if best["step"] <= step:
                self.step = int(best["step"])

    def load_best(self, model: torch.nn.Module, final_step: int) -> None:
        """Put the best step's weights back into `model` and record which step won."""
        if self.step is None:
            raise RuntimeError("BestKeeper.load_best: no point was measured")
        info = json.loads(self.info_path.read_text())
        if self.step != final_step:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, value in state.items():
                    params[name].copy_(value.to(params[name].device))
        atomic_write_json(self.info_path, {**info, "final_step": final_step})
        log.info(
            "kept step %d of %d (rule %s, tolerance %g)",
            self.step,
            final_step,
            self.rule,
            self.tolerance,
        )
