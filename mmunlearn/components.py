"""One builder from configuration values to components (STYLE.md, "Components and configuration").

A component is a frozen dataclass; its fields and their type annotations are its schema. The
builder turns `{"name": "vgid", "noise": {"kind": "gaussian", "std": 0.5}}` into objects:
a field annotated with a dataclass (or `X | None`) becomes that component, built the same way;
an unknown field fails with the known ones and the closest match; a field that does not apply
to the chosen variant (`std` with `kind: replace`, declared by the class in `only_for`) fails;
scalars from YAML or `--set` are converted to the field's type. Every error names the config
path (`teacher.noise.knd`), so a run's configuration fails before any data or model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmunlearn.registry import Registry

NONE_WORDS = (None, "none", "None", "null")


class UnknownFieldError(KeyError, TypeError):
    """A configuration key the component does not have (a KeyError for config code, a TypeError
    like Python's own unexpected keyword). `key`, `suggestion` (the closest known key, or None)
    and `known` let a caller word the error in its own terms (a command-line option)."""

    def __init__(
        self, message: str, key: str = "", suggestion: str | None = None, known: tuple = ()
    ) -> None:
        super().__init__(message)
        self.key, self.suggestion, self.known = key, suggestion, tuple(known)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class OnlyFor:
    """Fields that apply only when `selector` (another field) has certain values:
    `OnlyFor("kind", {"std": ("gaussian",)})` refuses a given `std` unless `kind` is gaussian."""

    selector: str
    fields: dict[str, tuple[str, ...]]


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_field(path: str, key: str, known: list[str], owner: str) -> UnknownFieldError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    of = f" of {owner}" if owner else ""
    return UnknownFieldError(
        f"unknown config key '{join_path(path, key)}'{of}{hint} (known: {', '.join(known)})",
        key,
        close[0] if close else None,
        known,
    )


def build_component(kind: type | Registry, values: Any, path: str = "") -> Any:
    """`values` (a mapping, or a registered name) → a component of `kind`.

    `kind`: a dataclass, or a registry of them (then `values` names one: `"base"` or
    `{"name": "vgid", ...}`). `path`: where `values` sit in the run's configuration, for errors.
    """
    if isinstance(kind, Registry):
        return _build_registered(kind, values, path)
    if dataclasses.is_dataclass(values) and isinstance(values, kind):
        return values
    if not isinstance(values, Mapping):
        where = path or kind.__name__
        raise TypeError(f"config {where}={values!r}: expected a mapping of {kind.__name__} fields")
    return _build_dataclass(kind, dict(values), path)


def _build_registered(registry: Registry, values: Any, path: str) -> Any:
    spec = {"name": values} if isinstance(values, str) else values
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"config {path or registry.kind}={values!r}: expected a {registry.kind} name or a "
            f"mapping with 'name' (known: {', '.join(registry.names())})"
        )
    spec = dict(spec)
    if "name" not in spec:
        raise KeyError(
            f"config {path or registry.kind} has no 'name' "
            f"(known {registry.kind}s: {', '.join(registry.names())})"
        )
    name = spec.pop("name")
    try:
        cls = registry.get(name)
    except KeyError as error:
        raise KeyError(f"{join_path(path, 'name')}: {error.args[0]}") from None
    return _build_dataclass(cls, spec, path, f"{registry.kind} {name!r} ({cls.__name__})")


def _build_dataclass(cls: type, values: dict[str, Any], path: str, owner: str = "") -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise unknown_field(path, key, list(fields), owner or cls.__name__)
        kwargs[key] = _convert(hints.get(key), fields[key], value, join_path(path, key))
    _check_applies(cls, kwargs, path)
    return cls(**kwargs)


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # a class defined in a function: fall back to the defaults
        return {}


def _components(hint: Any) -> tuple[list[type], bool]:
    """The dataclass types `hint` allows, and whether it allows None."""
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    classes = [t for t in options if isinstance(t, type) and dataclasses.is_dataclass(t)]
    return classes, type(None) in options


def _scalar_type(hint: Any, field: dataclasses.Field) -> type | None:
    if hint in (int, float, str, bool):
        return hint
    if hint is None and field.default is not dataclasses.MISSING:
        kind = type(field.default)
        return kind if kind in (int, float, str, bool) else None
    return None


def _convert(hint: Any, field: dataclasses.Field, value: Any, path: str) -> Any:
    classes, optional = _components(hint)
    if not classes and hint is None and field.default_factory is not dataclasses.MISSING:
        factory = field.default_factory
        classes = (
            [factory] if isinstance(factory, type) and dataclasses.is_dataclass(factory) else []
        )
    if classes:
        if optional and value in NONE_WORDS:
            return None
        if len(classes) == 1 and (isinstance(value, Mapping) or isinstance(value, classes[0])):
            return build_component(classes[0], value, path)
        if len(classes) == 1:  # `--set train=5`: a section given a value
            raise TypeError(_not_a_section(path, value, classes[0]))
        return value
    if typing.get_origin(hint) is dict and not isinstance(value, Mapping):
        raise TypeError(_not_a_section(path, value))
    kind = _scalar_type(hint, field)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config {path}={value!r}: expected true or false")
        return value
    if kind in (int, float) and not isinstance(value, bool):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"config {path}={value!r}: expected a {kind.__name__}") from None
        if kind is int and isinstance(value, float) and number != value:
            raise ValueError(f"config {path}={value!r}: expected a whole number")
        if number != number:  # NaN: no setting means "not a number"
            raise ValueError(f"config {path}={value!r}: expected a number, not NaN")
        return number
    if kind is str and isinstance(value, bool):
        return "on" if value else "off"  # YAML 1.1 reads off/no/false (on/yes/true) as booleans
    if kind is str and isinstance(value, int | float):
        return str(value)  # `--set loss.scale=1` reads a number where the field is text
    return value


def _not_a_section(path: str, value: Any, cls: type | None = None) -> str:
    fields = [f.name for f in dataclasses.fields(cls)][:3] if cls is not None else ["name"]
    example = ", ".join(f"{path}.{name}=..." for name in fields)
    return f"config {path}={value!r}: {path} is a section, not a value; set its fields ({example})"


def _check_applies(cls: type, given: dict[str, Any], path: str) -> None:
    only_for: OnlyFor | None = getattr(cls, "only_for", None)
    if only_for is None:
        return
    selector = only_for.selector
    chosen = given.get(selector, _default(cls, selector))
    for key, allowed in only_for.fields.items():
        if key in given and chosen not in allowed:
            raise ValueError(
                f"config {join_path(path, key)} does not apply with "
                f"{join_path(path, selector)}={chosen!r} (only with {selector}: "
                f"{', '.join(allowed)})"
            )


def _default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise AssertionError(f"{cls.__name__}.only_for names no field {name!r}")
