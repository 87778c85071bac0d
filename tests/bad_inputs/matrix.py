"""The bad-input matrix: one row per class of bad input or fault, run through the CLI.

A row (`Case`) says how to damage a fresh scene (a copy of the tiny world, a saved tiny model
and an output folder, all in a tmp dir), which `mmunlearn` command to run, the exit code
expected (2: a user error, 1: an OS error), the words the message must contain, and what the
output folder may hold afterwards. `check_case` runs a row in-process (`cli.main`, far cheaper
than a subprocess) and checks all of it, including that nothing half-made was left behind: every
file the folder held before the command is unchanged and no new file appeared, apart from the
row's `may_write`. A new class of bad input is one more row in a test module's table::

    CASES = [Case("empty forget split", empty_forget, unlearn, 2, ("no rows",)), ...]

    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
    def test_bad_input(case, scene, capsys):
        check_case(case, scene, capsys)
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Scene:
    """What a row may damage: all of it is a private copy in the test's tmp dir."""

    tmp: Path  # the test's tmp dir
    world: Path  # a copy of the tiny synthetic world (`mmunlearn world` layout)
    model: Path  # a copy of a saved tiny LLaVA (model + processor, save_pretrained)
    out: Path  # the output folder the command is given (not created)


@dataclass(frozen=True)
class Case:
    """One bad input and what the CLI must do with it.

    `build(scene)` damages the scene (or prepares files) and returns the command's argv, e.g.
    `["unlearn", "--model", str(scene.model), ...]`. `words` must all appear in stderr
    (case-insensitive). After the command, the files under `scene.out` must be those before it,
    byte for byte, plus new files matching a `may_write` glob (relative to `scene.out`).
    """

    name: str
    build: Callable[[Scene], list[str]]
    exit_code: int
    words: tuple[str, ...]
    may_write: tuple[str, ...] = field(default=())
    traceback: bool = False  # whether stderr must hold a traceback (only bugs print one)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder`, by relative path, with its content hash."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def half_made(before: dict[str, str], after: dict[str, str], may_write: tuple[str, ...]) -> list:
    """What a failed command changed that it should not have: files it altered or removed, and
    new files no `may_write` pattern allows."""
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    new = [
        name
        for name in after
        if name not in before and not any(fnmatch.fnmatch(name, glob) for glob in may_write)
    ]
    return sorted(changed + new)


def check_case(case: Case, scene: Scene, capsys) -> str:
    """Run `case` in-process and check its exit code, message and output folder; returns
    stderr for any further checks a test wants."""
    from mmunlearn.cli import main

    argv = case.build(scene)
    before = snapshot(scene.out)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.exit_code, f"exit {code}, expected {case.exit_code}; stderr:\n{err}"
    missing = [word for word in case.words if word.lower() not in err.lower()]
    assert not missing, f"stderr lacks {missing}:\n{err}"
    assert ("Traceback" in err) == case.traceback, f"traceback expected: {case.traceback}\n{err}"
    left = half_made(before, snapshot(scene.out), case.may_write)
    assert not left, f"{scene.out} holds half-made or altered files: {left}"
    return err


def unlearn_argv(scene: Scene, *settings: str, method: str | None = None) -> list[str]:
    """`mmunlearn unlearn` on the scene, a few cheap steps; each setting is `--set KEY=VALUE`."""
    argv = ["unlearn", "--model", str(scene.model), "--data", str(scene.world)]
    argv += ["--output-dir", str(scene.out)] + (["--method", method] if method else [])
    cheap = ("train.steps=2", "train.batch_size=2")
    return argv + [item for setting in (*cheap, *settings) for item in ("--set", setting)]


def eval_argv(scene: Scene, *extra: str, metrics: str = "generation") -> list[str]:
    """`mmunlearn eval` of the scene's model on its world, cheap metrics by default."""
    argv = ["eval", "--model", f"tiny={scene.model}", "--data", str(scene.world)]
    return argv + ["--output-dir", str(scene.out), "--metrics", metrics, *extra]
