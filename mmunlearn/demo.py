"""The demo: build the world, train (or load) base and oracle, run VGID, evaluate, report."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.report import (
    build_report,
    render_markdown,
    write_predictions,
    write_report,
)
from mmunlearn.io import atomic_write_text
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.teachers.icu import FORGET_PROMPT
from mmunlearn.training.config import TrainConfig, UnlearnConfig
from mmunlearn.training.unlearn import unlearn
from mmunlearn.training.world_models import PretrainConfig, world_model

log = logging.getLogger(__name__)

# Chosen by measurement on the world (README, "VGID defaults"): full fine-tuning of all weights.
QUICK_WORLD = WorldConfig(
    n_forget=2, n_retain=6, n_practice=2, n_holdout=2, n_general=4, n_unused_names=4
)
# VGID's visual half with entity swap as its in-context half (README, "VGID defaults"): on this
# world the "Forget <name> ." instruction learned on practice people does not transfer to the
# forget people (the demo's in-context probe measures it on every run), and naming the person in
# the teacher's prompt tells the teacher who is in the noised picture. The paper's teacher is
# `teacher={}` (noise + prompt); scripts/ablation.py compares them.
DEMO_UNLEARN = UnlearnConfig(
    method="vgid",
    teacher={"prompt": "", "swap_names": True},
    train=TrainConfig(steps=40, lr=3e-4, batch_size=16),
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("MMUNLEARN_CACHE", Path.home() / ".cache" / "mmunlearn"))


def run_demo(
    output_dir: str | Path,
    seed: int = 0,
    quick: bool = False,
    cache_dir: str | Path | None = None,
    unlearn_config: UnlearnConfig = DEMO_UNLEARN,
    progress: bool = True,
) -> dict[str, Any]:
    output_dir = Path(output_dir)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    timings: dict[str, float] = {}
    world_config = (
        WorldConfig(seed=seed, n_retain=12, n_practice=4, n_holdout=4, n_general=12)
        if quick
        else WorldConfig(seed=seed)
    )
    pretrain = PretrainConfig(steps=150, seed=seed) if quick else PretrainConfig(seed=seed)
    world_dir = output_dir / "world"
    start = time.perf_counter()
    save_world(build_world(world_config), world_dir)
    paths = {}
    for which in ("base", "oracle"):
        begin = time.perf_counter()
        paths[which] = world_model(world_dir, which, cache_dir, pretrain, progress=progress)
        timings[f"train_{which}_s"] = round(time.perf_counter() - begin, 1)
    begin = time.perf_counter()
    paths["vgid"] = unlearn(
        paths["base"], world_dir, unlearn_config, output_dir / "vgid", progress=progress
    )
    timings["unlearn_s"] = round(time.perf_counter() - begin, 1)
    examples = load_examples(world_dir)
    methods = {}
    for name, path in paths.items():
        summary, rows = evaluate(load_model(path), examples, progress=progress)
        methods[name] = summary
        write_predictions(rows, output_dir / "predictions" / f"{name}.jsonl")
    probe = in_context_probe(load_model(paths["base"]), examples, progress)
    timings["total_s"] = round(time.perf_counter() - start, 1)
    meta = {
        "in_context_probe": probe,
        "seed": seed,
        "quick": quick,
        "world": world_config.__dict__,
        "unlearn": unlearn_config.method,
        "models": {k: str(v) for k, v in paths.items()},
        "timings": timings,
    }
    report = build_report(methods, meta)
    files = write_report(report, output_dir)
    markdown = render_markdown(report) + render_probe(probe)
    atomic_write_text(files["markdown"], markdown)
    print(markdown)
    return report


def in_context_probe(base: LoadedModel, examples: list[Example], progress: bool) -> dict[str, Any]:
    """Does the base follow "Forget <name> ." (learned on practice people) for other people?

    The base answers forget and retain questions with the prompt naming the person asked about;
    a transferring instruction lowers both (it is not told which people are the forget set).
    """
    chosen = [ex for ex in examples if ex.role in ("forget", "retain")]
    prompted = [
        dataclasses.replace(ex, question=f"{FORGET_PROMPT.format(entity=ex.entity)} {ex.question}")
        for ex in chosen
    ]
    summary, _ = evaluate(base, prompted, roles=("forget", "retain"), progress=progress)
    return summary


def render_probe(probe: dict[str, Any]) -> str:
    lines = ["", "## In-context probe: the base with `Forget <name> .` before each question", ""]
    lines += ["| split | ROUGE-L | image | text |", "|---|---|---|---|"]
    for split, node in probe.items():
        by = node["by_modality"]
        cells = [f"{by[m]['rouge_l']:.3f}" if m in by else "–" for m in ("image", "text")]
        lines.append(f"| {split} | {node['rouge_l']:.3f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"
