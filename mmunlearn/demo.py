"""The demo: build the world, train (or load) base and oracle, run VGID, evaluate, report."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world, text_only
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.report import (
    build_report,
    plot_trajectories,
    render_markdown,
    write_predictions,
    write_report,
)
from mmunlearn.io import atomic_write_text, default_cache_dir
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.tiny import CAUSAL_FAMILIES, TinyCausalLMConfig
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.teachers.icu import FORGET_PROMPT
from mmunlearn.training.config import (
    UnlearnConfig,
    apply_overrides,
    from_dict,
    load_config,
    method_of,
    to_dict,
)
from mmunlearn.training.world_models import pretrain_config, world_model

log = logging.getLogger(__name__)

# Chosen by measurement on the world (README, "VGID defaults"): full fine-tuning of all weights.
QUICK_WORLD = WorldConfig(
    n_forget=2, n_retain=6, n_practice=2, n_holdout=2, n_general=4, n_unused_names=4
)
# The quick world with a base trained until it knows it (forget and retain ROUGE-L 1.000 after
# 200 steps at batch 32 on seed 0, 2026-12-07; 120 steps gave 0.75): a small REAL run for the
# analysis notebook when no demo run is at hand. Not the README's results: those use the full
# world.
SMALL_PRETRAIN_STEPS = 200
QUICK_TEXT_MODEL = {
    family: TinyCausalLMConfig(family=family, width=32, layers=1, heads=2)
    for family in CAUSAL_FAMILIES
}
# VGID's visual half with entity swap as its in-context half (README, "VGID defaults"): on this
# world the "Forget <name> ." instruction learned on practice people does not transfer to the
# forget people (the demo's in-context probe measures it on every run), and naming the person in
# the teacher's prompt tells the teacher who is in the noised picture. The paper's teacher is
# `teacher={}` (noise + prompt); scripts/ablation.py compares them. The settings are the
# preset's (data/presets/vgid.yaml, also `mmunlearn unlearn --config`): one copy.
PRESETS = Path(__file__).resolve().parents[1] / "data" / "presets"
DEMO_UNLEARN = load_config(PRESETS / "vgid.yaml", [])


@dataclass
class Prepared:
    """A saved world with its trained (or cached) base and oracle."""

    world_dir: Path
    world_config: WorldConfig
    models: dict[str, Path]
    timings: dict[str, float]


def prepare(
    output_dir: Path,
    seed: int,
    quick: bool,
    cache_dir: str | Path | None,
    progress: bool,
    family: str = "llava",
    small: bool = False,
) -> Prepared:
    """Write the world to OUTPUT_DIR/world; train or load its base and oracle.

    `family` "gpt2" or "llama": the world's text records only, and text-only causal LMs.
    `small`: the quick world, its base and oracle trained to know it (`SMALL_PRETRAIN_STEPS`).
    """
    world_config, pretrain = WorldConfig(seed=seed), pretrain_config(family, seed)
    if small:
        world_config = dataclasses.replace(QUICK_WORLD, seed=seed)
        pretrain = pretrain_config(family, seed, steps=SMALL_PRETRAIN_STEPS, batch_size=32)
    if quick:  # a smoke test of every stage, not a result: the models barely train
        world_config = dataclasses.replace(QUICK_WORLD, seed=seed)
        pretrain = pretrain_config(family, seed, steps=40, batch_size=32)
        if family != "llava":
            pretrain = dataclasses.replace(pretrain, model=QUICK_TEXT_MODEL[family])
    world_dir = output_dir / "world"
    world = build_world(world_config)
    save_world(world if family == "llava" else text_only(world), world_dir)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    models, timings = {}, {}
    for which in ("base", "oracle"):
        begin = time.perf_counter()
        models[which] = world_model(world_dir, which, cache, pretrain, progress=progress)
        timings[f"train_{which}_s"] = round(time.perf_counter() - begin, 1)
    return Prepared(world_dir, world_config, models, timings)


# The synthetic world's answers are 1-3 words; every README table on it generated 8 new tokens.
WORLD_ANSWER_TOKENS = 8


def method_config(method: str, quick: bool, overrides: list[str] | None = None) -> UnlearnConfig:
    """The demo's settings for any method: one shared budget, VGID's teacher as measured."""
    values = to_dict(DEMO_UNLEARN)
    values["method"] = method
    if method != "vgid":
        values["teacher"] = {}
    values["train"]["eval_every"] = 10
    if quick:
        values["train"].update(steps=4, batch_size=8, eval_every=2)
    return from_dict(UnlearnConfig, apply_overrides(values, list(overrides or [])))


def evaluate_all(
    models: dict[str, Path], examples: list[Example], output_dir: Path, progress: bool
) -> dict[str, Any]:
    methods = {}
    for name, path in models.items():
        summary, rows = evaluate(
            load_model(path), examples, progress=progress, max_new_tokens=WORLD_ANSWER_TOKENS
        )
        methods[name] = summary
        write_predictions(rows, output_dir / "predictions" / f"{name}.jsonl")
    return methods


def run_demo(
    output_dir: str | Path,
    seed: int = 0,
    quick: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    return run_compare(output_dir, ("vgid",), seed, quick, cache_dir, progress=progress)


def run_compare(
    output_dir: str | Path,
    methods: tuple[str, ...],
    seed: int = 0,
    quick: bool = False,
    cache_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    family: str = "llava",
    small: bool = False,
) -> dict[str, Any]:
    """Unlearn with each method from the same cached base; evaluate all with the same code.

    `family`: "llava" (the image world), or "gpt2" / "llama" (its text records, a causal LM).
    `small`: the quick world with a base that knows it, the methods at the full budget (a real
    run in minutes; `quick`: a smoke test of every stage, whose base knows nothing).
    """
    if small and quick:
        raise ValueError("run_compare: small and quick are two sizes; give one")
    output_dir = Path(output_dir)
    start = time.perf_counter()
    configs = {m: method_config(m, quick, overrides) for m in methods}
    for config in configs.values():  # an unknown name or setting fails before any training
        method_of(config)
    prepared = prepare(output_dir, seed, quick, cache_dir, progress, family, small)
    models, timings = dict(prepared.models), prepared.timings
    for name, config in configs.items():
        begin = time.perf_counter()
        models[name] = unlearn(  # the demo's own folder: a rerun replaces its runs
            models["base"],
            prepared.world_dir,
            config,
            output_dir / name,
            progress=progress,
            overwrite=True,
        )
        timings[f"unlearn_{name}_s"] = round(time.perf_counter() - begin, 1)
    examples = load_examples(prepared.world_dir)
    results = evaluate_all(models, examples, output_dir, progress)
    probe = in_context_probe(load_model(models["base"]), examples, progress)
    trajectories = {
        name: json.loads((output_dir / name / "trajectory.json").read_text())
        for name in configs
        if (output_dir / name / "trajectory.json").is_file()
    }
    plot_trajectories(trajectories, output_dir / "trajectory.png")
    timings["total_s"] = round(time.perf_counter() - start, 1)
    meta = {
        "in_context_probe": probe,
        "trajectories": trajectories,
        "seed": seed,
        "quick": quick,
        "small": small,
        "model_family": family,
        "world": dataclasses.asdict(prepared.world_config),
        "configs": {name: to_dict(config) for name, config in configs.items()},
        "models": {k: str(v) for k, v in models.items()},
        "timings": timings,
    }
    report = build_report(results, meta)
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
    summary, _ = evaluate(
        base,
        prompted,
        roles=("forget", "retain"),
        progress=progress,
        max_new_tokens=WORLD_ANSWER_TOKENS,
    )
    return summary


def render_probe(probe: dict[str, Any]) -> str:
    lines = ["", "## In-context probe: the base with `Forget <name> .` before each question", ""]
    lines += ["| split | ROUGE-L | image | text |", "|---|---|---|---|"]
    for split, node in probe.items():
        by = node["by_modality"]
        cells = [f"{by[m]['rouge_l']:.3f}" if m in by else "–" for m in ("image", "text")]
        lines.append(f"| {split} | {node['rouge_l']:.3f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"
