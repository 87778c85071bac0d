"""Layers import downward only (STYLE.md): a module may import its own layer and the layers below.

Every `mmunlearn.*` import counts, at module level or inside a function (a lazy import is still a
dependency), including `if TYPE_CHECKING:` blocks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mmunlearn

PACKAGE = Path(mmunlearn.__file__).parent

# Bottom to top. A module's layer is its top folder under mmunlearn/ (or its own name for a
# top-level module). `methods` (the method catalogue) builds teachers and losses and is what
# training runs; `recipes` are whole runs (unlearn = train + the trajectory from evaluation).
LAYERS = (
    ("mmunlearn", "io", "registry", "values", "components", "errors"),
    ("data",),
    ("models",),
    ("teachers",),
    ("losses",),
    ("methods",),
    ("training",),
    ("evaluation",),
    ("recipes",),
    ("demo", "sweep", "cli", "__main__", "testing"),
)
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
# Tiny models and toy worlds for tests, notebooks and users: it builds them with whatever it
# needs (training's world models included), and nothing in the package imports it.
UNCHECKED = {"mmunlearn.testing"}
# Edges that break the order in files another change is rewriting; fix, then delete here.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every `mmunlearn.*` module `source` (the text of `module`) imports; `from mmunlearn import
    x` counts as `x` where x is a module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "mmunlearn" and exists(name)}


def exists(module: str) -> bool:
    """A module or package of mmunlearn (not a class or function imported from one)."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports() -> dict[str, set[str]]:
    return {
        module: imported_modules(path.read_text(), module, path.name == "__init__.py")
        for module, path in modules().items()
    }


def test_every_module_has_a_layer():
    unknown = sorted(m for m in modules() if layer(m) not in LEVEL)
    assert not unknown, f"modules of no layer (add them to LAYERS in {__file__}): {unknown}"


def test_layers_import_downward_only():
    violations = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in imports().items()
        if module not in UNCHECKED
        for target in sorted(targets)
        # (a module of no layer fails the test above, not this one)
        if LEVEL.get(layer(target), -1) > LEVEL.get(layer(module), len(LAYERS))
        and (module, target) not in KNOWN_EXCEPTIONS
    ]
    assert not violations, "imports of a higher layer:\n" + "\n".join(violations)


def test_known_exceptions_still_exist():
    """An exception that no longer happens is deleted, so the list only shrinks."""
    found = {(module, target) for module, targets in imports().items() for target in targets}
    assert KNOWN_EXCEPTIONS <= found, KNOWN_EXCEPTIONS - found


def test_the_checker_sees_lazy_relative_and_package_imports():
    source = (
        "import mmunlearn.io\n"
        "from .. import values\n"
        "from mmunlearn.teachers import TokenTargets\n"
        "def f():\n"
        "    from ..evaluation import suite\n"
        "    from mmunlearn.data.example import Example\n"
    )
    assert imported_modules(source, "mmunlearn.training.run") == {
        "mmunlearn",
        "mmunlearn.io",
        "mmunlearn.values",
        "mmunlearn.teachers",
        "mmunlearn.evaluation",
        "mmunlearn.evaluation.suite",
        "mmunlearn.data.example",
    }


def test_value_types_and_losses_load_no_teacher():
    """TokenTargets lives below every layer: the losses read it without loading the teachers
    (and with them the model stack)."""
    code = (
        "import sys, mmunlearn.values\n"
        "assert {m for m in sys.modules if m.startswith('mmunlearn.')} == {'mmunlearn.values'}\n"
        "import mmunlearn.losses.divergences\n"
        "assert not [m for m in sys.modules if m.startswith('mmunlearn.teachers')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
