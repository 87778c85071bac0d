"""`mmunlearn sweep`: methods × a grid of settings on one cached base, scored on the validation
half, with the forget/retain frontier and each method's best point.

Every point unlearns the same base (the demo's world and recipes, cached by content hash) and is
evaluated on the validation half of the world (`data.splits.is_validation`); the test half is
scored too but chooses nothing. Each point's result is written atomically to
`points/<id>.json` with a fingerprint of its settings, so a rerun skips every finished point and
an interrupted sweep continues where it stopped; when only the scoring changed, a point's saved
model is scored again without training.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmunlearn.data.jsonl import load_examples
from mmunlearn.demo import WORLD_ANSWER_TOKENS, method_config, prepare
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.frontier import pareto_front, plot_frontier
from mmunlearn.evaluation.trajectory import SCORES, half_means, half_rows
from mmunlearn.io import atomic_write_json, atomic_write_text
from mmunlearn.models.loading import load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.training.config import method_of, to_dict
from mmunlearn.training.selection import RULES, describe, select

log = logging.getLogger(__name__)
REFERENCES = ("base", "oracle")


@dataclass(frozen=True)
class Axis:
    """One `--grid` entry: a setting and its values, for every method or only `method`."""

    key: str
    values: tuple[str, ...]
    method: str = ""


def parse_grid(specs: Sequence[str], methods: Sequence[str]) -> list[Axis]:
    """`KEY=V1,V2,...` (every method) or `METHOD:KEY=V1,...` (that method only); the values are
    read as YAML by the config builder, as `--set` values are."""
    axes = []
    for spec in specs:
        head, sep, values = spec.partition("=")
        method, _, key = head.rpartition(":")
        items = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not key.strip() or not items:
            raise ValueError(
                f"--grid {spec!r}; expected KEY=V1,V2 (e.g. train.lr=1e-4,3e-4) or "
                "METHOD:KEY=V1,V2 (e.g. npo:loss.beta=0.05,0.1)"
            )
        if method and method not in methods:
            raise ValueError(
                f"--grid {spec!r}: method {method!r} is not in --methods ({', '.join(methods)})"
            )
        axes.append(Axis(key.strip(), items, method))
    keys = [(a.method, a.key) for a in axes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"--grid names {repeated[0][1]!r} twice; give its values in one --grid")
    return axes


def grid_points(methods: Sequence[str], axes: Sequence[Axis]) -> list[tuple[str, tuple[str, ...]]]:
    """(method, its settings as `key=value` overrides) for every point, methods in order."""
    points = []
    for method in methods:
        mine = [a for a in axes if a.method in ("", method)]
        for values in itertools.product(*(a.values for a in mine)):
            points.append(
                (method, tuple(f"{a.key}={v}" for a, v in zip(mine, values, strict=True)))
            )
    return points


def point_id(method: str, settings: Sequence[str]) -> str:
    """A readable file name for a point: `npo__train.lr=1e-4__train.steps=20`."""
    return "__".join([method, *(re.sub(r"[^\w.=+-]", "-", s) for s in settings)])


def fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def score_model(path: Path, examples: list, progress: bool) -> dict[str, dict[str, float]]:
    """The model's ROUGE-L on each score (`evaluation.trajectory.SCORES`) of both halves."""
    halves = {half: half_rows(examples, half == "validation") for half in ("validation", "test")}
    rows = {ex.id: ex for chosen in halves.values() for exs in chosen.values() for ex in exs}
    _, scored = evaluate(
        load_model(path),
        list(rows.values()),
        progress=progress,
        max_new_tokens=WORLD_ANSWER_TOKENS,
    )
    return {half: half_means(scored, chosen) for half, chosen in halves.items()}


def run_sweep(
    output_dir: str | Path,
    methods: Sequence[str],
    grid: Sequence[str],
    seed: int = 0,
    quick: bool = False,
    cache_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    rule: str = "forget_within_retain",
    tolerance: float = 0.05,
    progress: bool = True,
) -> dict[str, Any]:
    """Unlearn with every method at every grid point; write points/, sweep.json, sweep.md and
    frontier.png. `overrides` apply to every point (before the grid's settings)."""
    output_dir = Path(output_dir)
    RULES.get(rule)  # an unknown rule fails before any training
    if tolerance < 0:
        raise ValueError(f"--tolerance {tolerance}: expected 0 or more")
    if not methods:
        raise ValueError("--methods is empty; give at least one method name")
    points = grid_points(methods, parse_grid(grid, methods))
    configs = {point_id(m, s): (m, s, method_config(m, quick, [*overrides, *s])) for m, s in points}
    for _, _, config in configs.values():  # a wrong name or setting fails before training
        method_of(config)
    prepared = prepare(output_dir, seed, quick, cache_dir, progress)
    examples = load_examples(prepared.world_dir)
    base = prepared.models["base"]
    results: dict[str, dict[str, Any]] = {}
    for name in REFERENCES:
        key = fingerprint(name, str(prepared.models[name]), seed, quick, scoring_key())
        results[name] = cached_point(output_dir / "points" / f"{name}.json", key) or save_point(
            output_dir / "points" / f"{name}.json",
            {"method": name, "settings": [], "fingerprint": key}
            | score_model(prepared.models[name], examples, progress),
        )
    scoring = scoring_key()
    for index, (pid, (method, settings, config)) in enumerate(configs.items(), 1):
        key = fingerprint(to_dict(config), str(base), seed, quick)
        path = output_dir / "points" / f"{pid}.json"
        run_dir = output_dir / "runs" / pid
        found = cached_point(path, key)
        if found is not None and found.get("scoring") == scoring["scoring"]:
            log.info("sweep point %d/%d %s: done before, skipped", index, len(configs), pid)
            results[pid] = found
            continue
        if found is not None and (run_dir / "model" / "config.json").is_file():
            log.info("sweep point %d/%d %s: scoring changed, rescored", index, len(configs), pid)
            results[pid] = save_point(
                path, found | score_model(run_dir / "model", examples, progress) | scoring
            )
            continue
        log.info("sweep point %d/%d %s", index, len(configs), pid)
        if run_dir.exists():  # an interrupted or outdated run of this point: the sweep's own
            shutil.rmtree(run_dir)
        begin = time.perf_counter()
        model = unlearn(base, prepared.world_dir, config, run_dir, progress=progress)
        seconds = round(time.perf_counter() - begin, 1)
        results[pid] = save_point(
            path,
            {"method": method, "settings": list(settings), "fingerprint": key}
            | score_model(model, examples, progress)
            | scoring
            | {"unlearn_s": seconds, "config": to_dict(config)},
        )
    summary = summarise_sweep(results, methods, rule, tolerance)
    summary["meta"] = {
        "seed": seed,
        "quick": quick,
        "grid": list(grid),
        "overrides": list(overrides),
        "models": {k: str(v) for k, v in prepared.models.items()},
    }
    atomic_write_json(output_dir / "sweep.json", summary)
    atomic_write_text(output_dir / "sweep.md", render_sweep(summary))
    plot_frontier(
        *frontier_inputs(summary),
        output_dir / "frontier.png",
        title=f"Sweep on the validation half (seed {seed}); ringed: best by {rule}",
    )
    return summary


def frontier_inputs(summary: dict[str, Any]) -> tuple[list, dict, dict]:
    """`plot_frontier`'s points, references and best indices from a `sweep.json` summary, on
    the validation half."""
    points = [p["validation"] | {"method": p["method"]} for p in summary["points"].values()]
    ids = list(summary["points"])
    references = {name: summary["references"][name]["validation"] for name in REFERENCES}
    best = {method: ids.index(pid) for method, pid in summary["best"].items()}
    return points, references, best


def scoring_key() -> dict[str, Any]:
    """What a point's scores depend on besides its model: a change rescores saved models."""
    key = {"scores": SCORES, "max_new_tokens": WORLD_ANSWER_TOKENS}
    return {"scoring": json.loads(json.dumps(key))}  # as it reads back from a point's file


def cached_point(path: Path, key: str) -> dict[str, Any] | None:
    """A finished point's result, if `path` holds one with this fingerprint."""
    if path.is_file():
        result = json.loads(path.read_text())
        if result.get("fingerprint") == key:
            return result
        log.info("%s: settings changed since it was written; computing it again", path.name)
    return None


def save_point(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    atomic_write_json(path, result)
    return result


def summarise_sweep(
    results: dict[str, dict[str, Any]], methods: Sequence[str], rule: str, tolerance: float
) -> dict[str, Any]:
    """Points, references, each method's best point by `rule` (against the base's validation
    retain) and the frontier (forget vs retain, forget vs neighbour) over all points."""
    points = {pid: r for pid, r in results.items() if pid not in REFERENCES}
    reference = results["base"]["validation"]["retain"]
    best = {}
    for method in methods:
        mine = [pid for pid, r in points.items() if r["method"] == method]
        if mine:
            scores = [
                (points[p]["validation"]["forget"], points[p]["validation"]["retain"]) for p in mine
            ]
            best[method] = mine[select(scores, rule, reference, tolerance)]
    ids = list(points)
    validation = [points[pid]["validation"] for pid in ids]
    frontier = {
        kept: [ids[i] for i in pareto_front(validation, kept)]
        for kept in ("retain", "neighbor")
        if all(kept in v for v in validation)
    }
    return {
        "rule": {"name": rule, "tolerance": tolerance, "text": describe(rule, tolerance)},
        "references": {name: results[name] for name in REFERENCES},
        "points": points,
        "best": best,
        "frontier": frontier,
    }


def _row(name: str, settings: str, result: dict[str, Any]) -> str:
    cells = [name, settings or "–"]
    for half in ("validation", "test"):
        cells += [f"{result[half][s]:.3f}" if s in result[half] else "–" for s in SCORES]
    cells.append(str(result.get("unlearn_s", "–")))
    return "| " + " | ".join(cells) + " |"


def render_sweep(summary: dict[str, Any]) -> str:
    """Markdown: each method's best point (with the rule), then every point."""
    names = list(SCORES)
    header = ["method", "settings"]
    header += [f"val {s}" for s in names] + [f"test {s}" for s in names] + ["unlearn s"]
    head = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    refs = [_row(name, "", r) for name, r in summary["references"].items()]
    lines = ["## Best point of each method", ""]
    lines += [f"Rule: {summary['rule']['text']} Reference retain: the base's, validation half."]
    lines += ["", *head, *refs]
    for method, pid in summary["best"].items():
        point = summary["points"][pid]
        lines.append(_row(method, ", ".join(point["settings"]), point))
    lines += ["", "## Every point", "", *head, *refs]
    for pid, point in summary["points"].items():
        flag = " (frontier)" if pid in summary["frontier"].get("retain", []) else ""
        lines.append(_row(point["method"] + flag, ", ".join(point["settings"]), point))
    lines += [
        "",
        "ROUGE-L. `val`: the validation half that chose the best points; `test`: the other half. "
        "Neighbour and general: held-out rows only (never trained on). (frontier): on the "
        "forget/retain frontier of the validation half.",
    ]
    return "\n".join(lines) + "\n"
