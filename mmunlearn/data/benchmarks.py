"""One entry point for every data source: `load_benchmark(name, path, **options)` → records.

| name | reads | loader |
| --- | --- | --- |
| `mmunlearn_jsonl` | the project's own JSONL (a file or a folder of them) | `jsonl.load_examples` |
| `melu` | MELU's CSVs | `melu.load_melu` |
| `mllmu_bench` | a clone of `MLLMMU/MLLMU-Bench` (parquet) | `mllmu_bench.load_mllmu_bench` |
| `clear` | a clone of `therem/CLEAR` (parquet) | `clear.load_clear` |
| `tofu` | a clone of `locuslab/TOFU` (JSON lines) | `tofu.load_tofu` |
| `semeval` | SemEval-2025 Task 4's public split (parquet) | `semeval.load_semeval` (items) |

Options are the loader's keyword arguments (`forget_percent`, `sets`, `image_dir`, ...). Strings
are accepted for int, bool and tuple options (`"5"`, `"true"`, `"forget,retain"`), so settings
from a command line or YAML pass through unchanged.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable
from typing import Any

from mmunlearn.data.clear import load_clear
from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.melu import load_melu
from mmunlearn.data.mllmu_bench import load_mllmu_bench
from mmunlearn.data.semeval import load_semeval
from mmunlearn.data.tofu import load_tofu
from mmunlearn.registry import Registry

Loader = Callable[..., list[Example]]
BENCHMARKS: Registry[Loader] = Registry("benchmark")

# The loaders live in their own modules; this table is the one list of names. jsonl and melu
# predate the registry, so all are registered here rather than half with decorators.
BENCHMARKS.register("mmunlearn_jsonl")(load_examples)
BENCHMARKS.register("melu")(load_melu)
BENCHMARKS.register("mllmu_bench")(load_mllmu_bench)
BENCHMARKS.register("clear")(load_clear)
BENCHMARKS.register("tofu")(load_tofu)


@BENCHMARKS.register("semeval")
def load_semeval_items(
    folder: str | os.PathLike, subsets: tuple[str, ...] = ("train", "validation")
) -> list[Example]:
    """SemEval-2025 Task 4's forget and retain items (its member/nonmember documents, which the
    MIA score needs, come with `semeval.load_semeval`)."""
    return list(load_semeval(folder, subsets).examples)


def benchmark_options(name: str) -> dict[str, inspect.Parameter]:
    """The options `name` accepts (every parameter of its loader after the path)."""
    return dict(list(inspect.signature(BENCHMARKS.get(name)).parameters.items())[1:])


def load_benchmark(name: str, path: str | os.PathLike, **options: Any) -> list[Example]:
    """Records of benchmark `name` read from `path`; unknown names and options are refused with
    the known ones and the closest match."""
    loader = BENCHMARKS.get(name)
    accepted = benchmark_options(name)
    for key, value in options.items():
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            known = ", ".join(accepted) or "none"
            raise TypeError(f"benchmark {name!r} has no option {key!r}{hint} (options: {known})")
        options[key] = _coerce(name, accepted[key], value)
    return loader(path, **options)


def _coerce(name: str, parameter: inspect.Parameter, value: Any) -> Any:
    """A string for an int, bool or tuple option becomes one (annotations are strings here)."""
    kind = str(parameter.annotation)
    if not isinstance(value, str):
        return value
    if kind.startswith("bool"):
        if value.lower() not in ("true", "false"):
            raise ValueError(
                f"benchmark {name!r}: {parameter.name}={value!r}; expected true or false"
            )
        return value.lower() == "true"
    if kind.startswith("int"):
        try:
            return int(value)
        except ValueError:
            raise ValueError(
                f"benchmark {name!r}: {parameter.name}={value!r}; expected an integer"
            ) from None
    if kind.startswith("tuple"):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value
