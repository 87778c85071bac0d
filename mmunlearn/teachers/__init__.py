"""Teacher builders: each maps a batch to per-token targets at the student's answer positions."""

from __future__ import annotations

from typing import Any

from mmunlearn.teachers import (  # noqa: F401  (register the teachers)
    entity_swap,
    icu,
    simple,
    undial,
    vgid,
    visual_noise,
    whp,
)
from mmunlearn.teachers.targets import TEACHERS, TeacherContext, TokenTargets
from mmunlearn.teachers.visual_noise import VisualNoise


def build_teacher(spec: str | dict[str, Any]) -> Any:
    """`"base"` or `{"name": "vgid", "noise": {"kind": "gaussian", "std": 0.5}}` → a teacher."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    if "name" not in spec:
        raise KeyError(f"teacher spec {spec} has no 'name' (known: {', '.join(TEACHERS.names())})")
    cls = TEACHERS.get(spec.pop("name"))
    noise = spec.get("noise")
    if isinstance(noise, dict):
        spec["noise"] = VisualNoise(**noise)
    elif noise in ("none", "None"):
        spec["noise"] = None
    try:
        return cls(**spec)
    except TypeError as error:
        raise TypeError(f"teacher {cls.__name__}: {error}") from error


__all__ = ["TEACHERS", "TeacherContext", "TokenTargets", "VisualNoise", "build_teacher"]
