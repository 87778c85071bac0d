"""VGID teacher ablation on the synthetic world: noise only, prompt only, both, both + entity swap.

Usage: python scripts/ablation.py [--seed 0] [--output-dir runs/ablation]
Trains (or loads from the demo's cache) the world's base model, runs each teacher variant with the
demo's training settings, evaluates, and prints/writes a markdown table of ROUGE-L changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
from pathlib import Path

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.demo import DEMO_UNLEARN, WORLD_ANSWER_TOKENS
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.io import atomic_write_text, default_cache_dir
from mmunlearn.models.loading import load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.training.world_models import PretrainConfig, world_model

VARIANTS = {
    "noise only": {"prompt": "", "swap_names": False},
    "prompt only": {"noise": "none", "prompt": "Forget {entity} .", "swap_names": False},
    "swap only": {"noise": "none", "prompt": "", "swap_names": True},
    "noise + prompt (the paper's teacher)": {"prompt": "Forget {entity} .", "swap_names": False},
    "noise + swap (demo default)": {"prompt": "", "swap_names": True},
    "noise + prompt + swap": {"prompt": "Forget {entity} .", "swap_names": True},
}


def cell(summary: dict, split: str, modality: str | None = None) -> float:
    node = summary[split] if modality is None else summary[split]["by_modality"][modality]
    return node["rouge_l"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/ablation")
    args = parser.parse_args()
    out = Path(args.output_dir)
    world_dir = out / "world"
    save_world(build_world(WorldConfig(seed=args.seed)), world_dir)
    base = world_model(world_dir, "base", default_cache_dir(), PretrainConfig(seed=args.seed))
    examples = load_examples(world_dir)
    base_summary, _ = evaluate(
        load_model(base), examples, progress=False, max_new_tokens=WORLD_ANSWER_TOKENS
    )
    columns = [
        ("forget", "image"),
        ("forget", "text"),
        ("forget", None),
        ("test", None),
        ("retain", None),
        ("neighbor", None),
    ]
    header = "| teacher | " + " | ".join(f"{s}{' ' + m if m else ''}" for s, m in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    lines.append(
        "| base (absolute) | "
        + " | ".join(f"{cell(base_summary, s, m):.3f}" for s, m in columns)
        + " |"
    )
    for name, teacher in VARIANTS.items():
        config = dataclasses.replace(DEMO_UNLEARN, teacher=teacher)
        model = unlearn(
            base,
            world_dir,
            config,
            out / name.replace(" ", "_").replace("+", "and"),
            progress=False,
            overwrite=True,
        )
        summary, _ = evaluate(
            load_model(model), examples, progress=False, max_new_tokens=WORLD_ANSWER_TOKENS
        )
        deltas = [cell(summary, s, m) - cell(base_summary, s, m) for s, m in columns]
        lines.append(f"| {name} | " + " | ".join(f"{d:+.3f}" for d in deltas) + " |")
    stamp = f"seed {args.seed}, {datetime.date.today()}, {platform.machine()} CPU ({platform.node() and 'this machine'})"
    table = "\n".join(lines) + f"\n\nChange in ROUGE-L from the base ({stamp}).\n"
    atomic_write_text(out / "ablation.md", table)
    print(table)


if __name__ == "__main__":
    main()
