"""Does VGID's headline hold beyond the default seed? Base + VGID on worlds of several seeds.

Usage: python scripts/seeds.py --seeds 0 1 2 [--output-dir runs/seeds]
Prints, per seed, base forget/retain ROUGE-L, VGID's changes, and whether the headline criterion
(forget drop >= 0.371, retain drop <= 0.055) holds. The oracle is skipped (it does not enter it).
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.demo import DEMO_UNLEARN, WORLD_ANSWER_TOKENS
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.io import atomic_write_text, default_cache_dir
from mmunlearn.models.loading import load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.training.world_models import PretrainConfig, world_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output-dir", default="runs/seeds")
    args = parser.parse_args()
    lines = [
        "| seed | base forget | base retain | VGID forget Δ | VGID retain Δ | VGID neighbor Δ | headline holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed in args.seeds:
        out = Path(args.output_dir) / f"seed{seed}"
        save_world(build_world(WorldConfig(seed=seed)), out / "world")
        base = world_model(out / "world", "base", default_cache_dir(), PretrainConfig(seed=seed))
        examples = load_examples(out / "world")
        b, _ = evaluate(
            load_model(base), examples, progress=False, max_new_tokens=WORLD_ANSWER_TOKENS
        )
        model = unlearn(
            base,
            out / "world",
            DEMO_UNLEARN,
            out / "vgid",
            progress=False,
            overwrite=True,
        )
        v, _ = evaluate(
            load_model(model), examples, progress=False, max_new_tokens=WORLD_ANSWER_TOKENS
        )
        df, dr, dn = (v[s]["rouge_l"] - b[s]["rouge_l"] for s in ("forget", "retain", "neighbor"))
        holds = df <= -0.371 and dr >= -0.055
        lines.append(
            f"| {seed} | {b['forget']['rouge_l']:.3f} | {b['retain']['rouge_l']:.3f} | {df:+.3f} | {dr:+.3f} | {dn:+.3f} | {'yes' if holds else 'NO'} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines) + f"\n\nMeasured {datetime.date.today()} with scripts/seeds.py.\n"
    atomic_write_text(Path(args.output_dir) / "seeds.md", table)
    print(table)


if __name__ == "__main__":
    main()
