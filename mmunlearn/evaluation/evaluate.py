"""Evaluate models on a dataset: greedy ROUGE-L per split (`evaluate`), or the whole metric
suite on saved models with per-metric caching and a report (`evaluate_models`)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmunlearn.data.benchmarks import load_benchmark
from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import DEFAULT_MAX_NEW_TOKENS, generate_answers
from mmunlearn.evaluation.metrics import score_predictions, summarise
from mmunlearn.evaluation.report import SPLITS, build_report, write_predictions, write_report
from mmunlearn.evaluation.suite import METRICS, EvalModel, EvalSettings, Suite, without_rows
from mmunlearn.models.loading import LoadedModel

log = logging.getLogger(__name__)

EVAL_ROLES = SPLITS


def evaluate(
    loaded: LoadedModel,
    examples: Sequence[Example],
    roles: Sequence[str] = EVAL_ROLES,
    batch_size: int = 64,
    progress: bool = True,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """ROUGE-L and fact accuracy per split (and per modality); returns (summary, rows)."""
    chosen = [ex for ex in examples if ex.role in roles]
    if not chosen:
        raise ValueError(f"nothing to evaluate: no examples with a role in {tuple(roles)}")
    predictions = generate_answers(
        loaded, chosen, batch_size=batch_size, progress=progress, max_new_tokens=max_new_tokens
    )
    rows = score_predictions(chosen, predictions)
    return summarise(rows), rows


def evaluate_models(
    models: dict[str, str | Path],
    data: str | Path,
    output_dir: str | Path,
    metrics: Sequence[str] = (),
    oracle: str | Path | None = None,
    settings: EvalSettings | Mapping[str, Any] | None = None,
    progress: bool = True,
    benchmark: str = "mmunlearn_jsonl",
    data_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the evaluation suite on saved models; write report.json/.md/.png and predictions.

    `data` is read by the `benchmark` loader (`mmunlearn.data.benchmarks`) with `data_options`.

    `settings`: EvalSettings, or its configuration values (`{"noise": {"kind": "replace"}}`,
    built by `EvalSettings.from_values`). `metrics` empty means all (`suite.ALL_METRICS`). The oracle (`oracle`, or the model named
    "oracle") is the reference of forget quality and PrivLeak and is evaluated like the others.
    Results are cached per metric under OUTPUT_DIR/metrics/<model>/.
    """
    output_dir, models = Path(output_dir), dict(models)
    settings = EvalSettings.from_values(settings or {})
    if oracle is not None:
        if "oracle" in models and Path(models["oracle"]) != Path(oracle):
            raise ValueError("--oracle given and another --model is named 'oracle'; give one")
        models["oracle"] = oracle
    examples = load_benchmark(benchmark, data, **(data_options or {}))
    specs = {name: EvalModel(name, Path(path)) for name, path in models.items()}
    suite = Suite(examples, output_dir, settings, oracle=specs.get("oracle"), progress=progress)
    if "oracle" not in specs:
        log.warning("no oracle model: forget quality and PrivLeak will be reported as missing")
    results, timings = {}, {}
    for name, spec in specs.items():
        begin = time.perf_counter()
        results[name] = suite.run(spec, metrics)
        timings[name] = round(time.perf_counter() - begin, 1)
        if "rows" in results[name].get("generation", {}):
            write_predictions(
                results[name]["generation"]["rows"], output_dir / "predictions" / f"{name}.jsonl"
            )
    # methods[name]: the generation summary per split, and fluency's perplexity beside them
    summaries = {}
    for name, r in results.items():
        summary = {**r.get("generation", {}).get("summary", {})}
        summary.update(r.get("fluency", {}).get("summary", {}))
        if summary:
            summaries[name] = summary
    meta = {
        "data": str(data),
        "models": {name: str(path) for name, path in models.items()},
        "metrics": list(metrics) or METRICS.in_order(),
        "settings": dataclasses.asdict(settings),
        "timings_s": timings,
        "computed": [f"{model}/{metric}" for model, metric in suite.computed],
    }
    report = build_report(summaries, meta, {n: without_rows(r) for n, r in results.items()})
    write_report(report, output_dir)
    return report
