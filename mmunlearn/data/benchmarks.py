"""One entry point for every data source: `load_benchmark(name, path, **options)` → records.

| name | reads | loader |
| --- | --- | --- |
| `mmunlearn_jsonl` | the project's own JSONL (a file or a folder of them) | `jsonl.load_examples` |
| `melu` | MELU's CSVs | `melu.load_melu` |
| `mllmu_bench` | a clone of `MLLMMU/MLLMU-Bench` (parquet) | `mllmu_bench.load_mllmu_bench` |
| `clear` | a clone of `therem/CLEAR` (parquet) | `clear.load_clear` |
| `tofu` | a clone of `locuslab/TOFU` (JSON lines) | `tofu.load_tofu` |
| `semeval` | SemEval-2025 Task 4's public split (parquet) | `semeval.load_semeval` (items) |

Options are the loader's keyword arguments (`forget_percent`, `sets`, `image_dir`, ...), built
into a frozen options dataclass by the one builder (`mmunlearn.components.build_component`): an
unknown option fails with the closest match. Strings are accepted for int, bool and tuple options
(`"5"`, `"true"`, `"forget,retain"`), so settings from a command line or YAML pass through
unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable
from typing import Any

from mmunlearn.components import UnknownFieldError, build_component
from mmunlearn.data.clear import load_clear
from mmunlearn.data.example import Example
from mmunlearn.data.idk import with_idk_answers
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
    folder: str | os.PathLike,
    subsets: tuple[str, ...] = ("train", "validation"),
    idk_seed: int = 0,
) -> list[Example]:
    """SemEval-2025 Task 4's forget and retain items (its member/nonmember documents, which the
    MIA score needs, come with `semeval.load_semeval`), each with an "I don't know" phrase as
    `alt_answers` (`idk.with_idk_answers`)."""
    return with_idk_answers(list(load_semeval(folder, subsets).examples), idk_seed)


def benchmark_options(name: str) -> dict[str, dataclasses.Field]:
    """The options `name` accepts (the fields of its options dataclass, in signature order)."""
    return {f.name: f for f in dataclasses.fields(options_type(BENCHMARKS.get(name)))}


@functools.cache
def options_type(loader: Loader) -> type:
    """A frozen dataclass of `loader`'s options: its parameters after the path, with their
    annotations and defaults. The loader's signature stays the one schema; the builder
    (`build_component`) reads it from this class."""
    hints = typing.get_type_hints(loader)
    parameters = list(inspect.signature(loader).parameters.values())[1:]
    fields = [
        (p.name, hints.get(p.name, Any), dataclasses.field(default=p.default)) for p in parameters
    ]
    title = "".join(word.title() for word in loader.__name__.removeprefix("load_").split("_"))
    return dataclasses.make_dataclass(f"{title}Options", fields, frozen=True)


def load_benchmark(name: str, path: str | os.PathLike, **options: Any) -> list[Example]:
    """Records of benchmark `name` read from `path`; unknown names and options are refused with
    the known ones and the closest match."""
    loader = BENCHMARKS.get(name)
    kind = options_type(loader)
    hints = typing.get_type_hints(kind)
    values = {
        key: _parse(name, key, hints[key], value) if key in hints else value
        for key, value in options.items()
    }
    try:
        chosen = build_component(kind, values)
    except UnknownFieldError as error:
        hint = f" — did you mean {error.suggestion!r}?" if error.suggestion else ""
        raise UnknownFieldError(
            f"benchmark {name!r} has no option {error.key!r}{hint} "
            f"(--data-option {error.key}; options: {', '.join(error.known) or 'none'})",
            error.key,
            error.suggestion,
            error.known,
        ) from None
    return loader(path, **{f.name: getattr(chosen, f.name) for f in dataclasses.fields(kind)})


def _parse(name: str, key: str, hint: Any, value: Any) -> Any:
    """A command-line string for an int, bool or tuple option becomes one; the builder converts
    and checks the rest."""
    if not isinstance(value, str):
        return value
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = typing.get_args(hint) if union else (hint,)
    if bool in allowed:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"benchmark {name!r}: {key}={value!r}; expected true or false")
        return value.lower() == "true"
    if int in allowed:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"benchmark {name!r}: {key}={value!r}; expected an integer") from None
    if any(typing.get_origin(option) is tuple for option in allowed):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value
