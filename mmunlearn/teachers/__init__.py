"""Teacher builders: each maps a batch to per-token targets at the student's answer positions.

Every module of this package is imported here, so a teacher registers itself by being a file in
it: adding one is that file and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from mmunlearn.components import build_component
from mmunlearn.teachers.targets import TEACHERS, Teacher, TeacherContext, TokenTargets
from mmunlearn.teachers.visual_noise import VisualNoise

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def build_teacher(spec: str | dict[str, Any], path: str = "teacher") -> Teacher:
    """`"base"` or `{"name": "vgid", "noise": {"kind": "gaussian", "std": 0.5}}` → a teacher;
    `path`: where `spec` sits in the run's configuration (named by errors)."""
    return build_component(TEACHERS, spec, path)


__all__ = [
    "TEACHERS",
    "Teacher",
    "TeacherContext",
    "TokenTargets",
    "VisualNoise",
    "build_teacher",
]
