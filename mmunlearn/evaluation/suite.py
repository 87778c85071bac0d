"""The evaluation suite: named metrics, computed per model and cached per metric.

Each metric's result is written atomically to OUTPUT_DIR/metrics/<model>/<metric>.json with a
key hashing the model's weights, the data, the metric's settings and the keys of the results it
reads, so an interrupted or extended evaluation recomputes only what it lacks. A metric that
needs a reference the data or the run does not have (an oracle, holdout rows, options) returns
`{"missing": "<reason>"}` and the log says so; nothing is silently None.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmunlearn.components import build_component
from mmunlearn.data.example import ROLES, Example
from mmunlearn.evaluation.fluency import DEFAULT_CHUNK_TOKENS, read_fluency_text
from mmunlearn.evaluation.generate import DEFAULT_MAX_NEW_TOKENS
from mmunlearn.evaluation.probes import RelearnConfig
from mmunlearn.evaluation.report import SPLITS
from mmunlearn.evaluation.scoring import AnswerScore
from mmunlearn.io import atomic_write_json
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.sources import resolve_model
from mmunlearn.registry import Registry
from mmunlearn.teachers.icu import FORGET_PROMPT
from mmunlearn.teachers.visual_noise import VisualNoise

log = logging.getLogger(__name__)

SUITE_VERSION = 2  # bump when a metric's computation changes: every cached result is stale
Result = dict[str, Any]


@dataclass(frozen=True)
class EvalSettings:
    """What the metrics depend on; each metric hashes only the fields it names."""

    roles: tuple[str, ...] = SPLITS
    batch_size: int = 64
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    min_k: float = 0.2  # Min-K% and Min-K%++: the fraction k of lowest tokens
    # Additive Gaussian noise of std 1.0 keeps the face recognisable to the base
    # (shared/DESIGN.md), so it probes whether an unlearned model is fooled by a noisy copy.
    noise: VisualNoise = VisualNoise(kind="gaussian", std=1.0)
    forget_prompt: str = FORGET_PROMPT
    forget_prompt_as: str = "prefix"  # or system: how probe_prompt gives the instruction
    relearn: RelearnConfig = RelearnConfig()
    unrelated_examples: int = 8  # the out-of-distribution relearning attack's training rows
    recover_threshold: float = 0.05  # a probe "recovers" facts above this ROUGE-L gain
    fluency_text: str = ""  # a UTF-8 text file (--fluency-text); empty: fluency is missing
    fluency_chunk_tokens: int = DEFAULT_CHUNK_TOKENS  # longest scored sequence, specials included

    @classmethod
    def from_values(cls, values: Mapping[str, Any], path: str = "eval") -> EvalSettings:
        """Settings from configuration values (`{"noise": {"kind": "replace"}}`), through the
        one builder: nested components (`noise`, `relearn`) are built as the teachers' are, and
        an unknown or inapplicable key fails with its path (`eval.noise.knd`)."""
        return build_component(cls, values, path)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(self.roles))  # YAML gives a list
        for role in self.roles:
            if role not in ROLES:
                close = difflib.get_close_matches(role, ROLES, n=1)
                hint = f" — did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"roles (--splits): {role!r} is not a role{hint} (known: {', '.join(ROLES)})"
                )
        if self.unrelated_examples < 1:
            raise ValueError(f"unrelated_examples {self.unrelated_examples}: expected at least 1")
        if self.fluency_chunk_tokens < 2:
            raise ValueError(
                f"fluency_chunk_tokens {self.fluency_chunk_tokens}: expected at least 2"
            )
        if self.fluency_text:
            read_fluency_text(self.fluency_text)  # a bad path fails before any model loads

    @property
    def fluency_text_sha256(self) -> str:
        """The fluency text's content hash: the setting fluency's cache key hashes, so the key
        follows the file's content, not its name."""
        if not self.fluency_text:
            return ""
        return hashlib.sha256(read_fluency_text(self.fluency_text).encode()).hexdigest()


class Missing(Exception):
    """A metric cannot be computed: its message is the reason shown in the report and log."""


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Callable[[MetricContext], Result]
    settings: tuple[str, ...] = ()  # EvalSettings fields (or properties) hashed into the key
    needs: tuple[str, ...] = ()  # this model's metrics it reads
    oracle_needs: tuple[str, ...] = ()  # the oracle's metrics it reads

    @property
    def description(self) -> str:
        """The docstring's first paragraph, on one line."""
        first = (self.compute.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(first.split())


METRICS: Registry[Metric] = Registry("metric")  # registration order: the order of the report


def metric(
    name: str,
    settings: tuple[str, ...] = (),
    needs: tuple[str, ...] = (),
    oracle_needs: tuple[str, ...] = (),
) -> Callable:
    def decorate(compute: Callable[[MetricContext], Result]) -> Callable:
        METRICS.register(name)(Metric(name, compute, settings, needs, oracle_needs))
        return compute

    return decorate


@dataclass
class EvalModel:
    """A saved model under evaluation; loaded and hashed only when a metric needs it."""

    name: str
    path: Path
    _loaded: LoadedModel | None = field(default=None, repr=False)
    _hash: str | None = field(default=None, repr=False)
    scores: dict[tuple, AnswerScore] = field(default_factory=dict, repr=False)  # `_score` memo

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.path)
        return self._loaded

    @property
    def weights_hash(self) -> str:
        if self._hash is None:
            self._hash = hash_directory(resolve_model(self.path))
        return self._hash


def hash_directory(path: Path) -> str:
    """sha256 over every file's relative name and bytes (weights, config, processor)."""
    if not path.is_dir():
        raise FileNotFoundError(f"--model {str(path)!r}: not a directory")
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            digest.update(file.relative_to(path).as_posix().encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def hash_examples(examples: Sequence[Example]) -> str:
    """sha256 over every record (all fields) and the bytes of every image it names."""
    digest = hashlib.sha256()
    images: set[str] = set()
    for ex in examples:
        row = {f.name: getattr(ex, f.name) for f in dataclasses.fields(ex)}
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
        if ex.image is not None and ex.image not in images:
            images.add(ex.image)
            digest.update(Path(ex.image).read_bytes())
    return digest.hexdigest()


@dataclass
class MetricContext:
    model: EvalModel
    examples: list[Example]  # the rows whose role is in settings.roles
    settings: EvalSettings
    own: Callable[[str], Result]
    oracle: Callable[[str], Result] | None
    progress: bool

    def role(self, role: str) -> list[Example]:
        return [ex for ex in self.examples if ex.role == role]

    def needed(self, name: str, from_oracle: bool = False) -> Result:
        """Another metric's result; a missing one makes this metric missing too."""
        if from_oracle and self.oracle is None:
            raise Missing("no oracle model (give --oracle PATH or a model named 'oracle')")
        result = (self.oracle if from_oracle else self.own)(name)
        if "missing" in result:
            whose = "the oracle's" if from_oracle else "its"
            raise Missing(f"{whose} {name} is missing ({result['missing']})")
        return result


class Suite:
    """Computes (or reads from the cache) metric results for models on one dataset."""

    def __init__(
        self,
        examples: Sequence[Example],
        output_dir: str | Path,
        settings: EvalSettings = EvalSettings(),
        oracle: EvalModel | None = None,
        progress: bool = True,
    ) -> None:
        self.examples = [ex for ex in examples if ex.role in settings.roles]
        if not self.examples:
            raise ValueError(f"nothing to evaluate: no examples with a role in {settings.roles}")
        self.output_dir = Path(output_dir)
        self.settings = settings
        self.oracle = oracle
        self.progress = progress
        self.data_hash = hash_examples(self.examples)
        self.computed: list[tuple[str, str]] = []  # (model, metric) computed, not read back
        self._memo: dict[tuple[str, str], Result] = {}

    def path(self, model: EvalModel, name: str) -> Path:
        return self.output_dir / "metrics" / model.name / f"{name}.json"

    def key(self, model: EvalModel, name: str) -> str:
        spec = METRICS.get(name)
        settings = {s: _jsonable(getattr(self.settings, s)) for s in spec.settings}
        parts = {
            "suite": SUITE_VERSION,
            "metric": name,
            "settings": settings,
            "model": model.weights_hash,
            "data": self.data_hash,
            "needs": {n: self.key(model, n) for n in spec.needs},
        }
        if spec.oracle_needs:
            parts["oracle"] = (
                {n: self.key(self.oracle, n) for n in spec.oracle_needs} if self.oracle else None
            )
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def result(self, model: EvalModel, name: str) -> Result:
        """The metric's result for `model`: from memory, from the cache file, or computed."""
        memo_key = (model.name, name)
        if memo_key in self._memo:
            return self._memo[memo_key]
        spec, key, path = METRICS.get(name), self.key(model, name), self.path(model, name)
        cached = _read_cache(path, key)
        if cached is None:
            begin = time.perf_counter()
            context = MetricContext(
                model=model,
                examples=self.examples,
                settings=self.settings,
                own=lambda n: self.result(model, n),
                oracle=(lambda n: self.result(self.oracle, n)) if self.oracle else None,
                progress=self.progress,
            )
            try:
                result = spec.compute(context)
            except Missing as reason:
                result = {"missing": str(reason)}
            seconds = round(time.perf_counter() - begin, 2)
            atomic_write_json(
                path, {"key": key, "metric": name, "seconds": seconds, "result": result}
            )
            self.computed.append(memo_key)
            log.info("%s: %s computed in %.1f s", model.name, name, seconds)
        else:
            result = cached
            log.info("%s: %s read from %s", model.name, name, path)
        if "missing" in result:
            log.warning("%s: %s missing: %s", model.name, name, result["missing"])
        self._memo[memo_key] = result
        return result

    def run(self, model: EvalModel, names: Sequence[str] = ()) -> dict[str, Result]:
        """Every metric in `names` (default all, in report order) for `model`."""
        names = list(names) or METRICS.in_order()
        for name in names:
            METRICS.get(name)  # an unknown name fails before anything runs
        return {name: self.result(model, name) for name in names}


def _jsonable(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _read_cache(path: Path, key: str) -> Result | None:
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("%s: unreadable cache file, recomputing", path)
        return None
    return stored["result"] if stored.get("key") == key else None


def without_rows(results: dict[str, Result]) -> dict[str, Result]:
    """Results as the report shows them: per-question rows left to predictions/ files."""
    return {n: {k: v for k, v in r.items() if k != "rows"} for n, r in results.items()}


# The metrics register themselves on import; imported last, as they use the names above.
from mmunlearn.evaluation import suite_metrics  # noqa: E402, F401


def __getattr__(name: str) -> Any:
    """`ALL_METRICS`: every metric of the suite, in report order, read from the registry when
    asked (lazily, so it is complete whichever metrics module was imported first)."""
    if name == "ALL_METRICS":
        return METRICS.in_order()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
