"""`mmunlearn unlearn`: a saved model + a dataset + a method → an unlearned model on disk."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import yaml

from mmunlearn.data.benchmarks import load_benchmark
from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import row_locator
from mmunlearn.data.splits import check_unlearning_data, group_by_role
from mmunlearn.data.world import load_world_meta
from mmunlearn.evaluation.trajectory import rouge_by_role
from mmunlearn.io import atomic_write_text
from mmunlearn.losses.objective import Method
from mmunlearn.models.loading import load_model, model_kind
from mmunlearn.recipes.run_folder import claim_output_dir, mark_run, read_run, run_identity
from mmunlearn.training.config import UnlearnConfig, method_of, to_dict
from mmunlearn.training.run import train, world_size
from mmunlearn.training.trainer import NonFiniteLoss

log = logging.getLogger(__name__)


def swap_name_pool(data_path: Path, examples: list[Example]) -> tuple[str, ...]:
    """Names the model never saw: the world's `unused_names`, else the holdout entities."""
    world = data_path if data_path.is_dir() else data_path.parent
    if (world / "world.json").is_file():
        names = load_world_meta(world).get("unused_names", [])
        if names:
            return tuple(names)
    return tuple(sorted({ex.entity for ex in examples if ex.role == "holdout"}))


def text_path(examples: list[Example], method: Method, source: str) -> list[Example]:
    """A text-only model's share of the data: its text rows, with image-only teachers refused.

    Image rows are left out (logged with their count); VGID keeps its in-context half (prompt
    and/or entity swap) and skips the noise, which needs a picture.
    """
    for term in method.all_terms:
        if term.teacher.needs_images:
            raise ValueError(
                f"method {method.name!r}: teacher {type(term.teacher).__name__} needs images and "
                "the model is text-only; use vgid (its in-context half), icu_distill or "
                "teacher.name=entity_swap"
            )
    text = [ex for ex in examples if ex.image is None]
    if len(text) < len(examples):
        log.warning(
            "%s: the model is text-only; %d image rows left out, %d text rows used",
            source,
            len(examples) - len(text),
            len(text),
        )
    return text


def unlearn(
    model_path: str | Path,
    data_path: str | Path,
    config: UnlearnConfig,
    output_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    benchmark: str = "mmunlearn_jsonl",
    data_options: dict[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Run `config.method` on `model_path` with the forget/retain splits of `data_path`, read by
    the `benchmark` loader (`mmunlearn.data.benchmarks`; default the project's JSONL).

    `output_dir` must be new or empty, or hold this same run with `resume` (continued from its
    last checkpoint), or another run with `overwrite` (replaced): `recipes/run_folder.py`.
    """
    data_path, output_dir = Path(data_path), Path(output_dir)
    method = method_of(config)  # a wrong name or setting fails here, before the data loads
    examples = load_benchmark(benchmark, data_path, **(data_options or {}))
    locate = row_locator(data_path) if benchmark == "mmunlearn_jsonl" else None
    check_unlearning_data(examples, str(data_path), locate)
    missing = [role for role in method.roles if not any(ex.role == role for ex in examples)]
    if missing:
        raise ValueError(f"{data_path}: method {method.name!r} needs rows with role(s) {missing}")
    if model_kind(model_path) == "causal_lm":
        examples = text_path(examples, method, str(data_path))
        check_unlearning_data(examples, f"the text rows of {data_path}", locate)
    loaded = load_model(model_path)
    data_options = data_options or {}
    swap_names = swap_name_pool(data_path, examples)  # reads world.json: before any output
    identity = run_identity(config, model_path, examples, benchmark, data_options)
    record = {
        "config": to_dict(config),
        "model": str(model_path),
        "data": str(data_path),
        "benchmark": benchmark,
        "data_options": data_options,
        "world_size": world_size(),
    }
    main_process = int(os.environ.get("RANK", "0")) == 0  # the other processes write nothing
    # read by every process before the main one claims the folder, so that all agree
    complete = (
        resume
        and (read_run(output_dir) or {}).get("status") == "complete"
        and (output_dir / "model" / "config.json").is_file()
    )
    claim = claim_output_dir(output_dir, identity, record, resume, overwrite)
    with claim if main_process else contextlib.nullcontext():
        if complete:  # and the same run: the claim checked
            log.info("%s: the run is complete; nothing left to train", output_dir)
            if main_process:
                mark_run(output_dir, "complete")
            return output_dir / "model"
        if main_process:
            atomic_write_text(
                output_dir / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False)
            )
        by_role = group_by_role(examples)
        log.info(
            "unlearning with %s: %d forget, %d retain rows",
            method.name,
            len(by_role.get("forget", [])),
            len(by_role.get("retain", [])),
        )
        try:
            train(
                loaded,
                method,
                by_role,
                config.train,
                output_dir,
                swap_names,
                resume=resume,
                progress=progress,
                measure=rouge_by_role(examples),
            )
        except NonFiniteLoss as error:
            if main_process:
                mark_run(output_dir, "failed", failure=str(error))
            raise
        if main_process:
            mark_run(output_dir, "complete")
    return output_dir / "model"
