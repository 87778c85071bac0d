"""TOFU's protocol on a real LM: fine-tune it on a synthetic world, then unlearn the forget people.

Usage: python scripts/memorised_world.py [--model smollm2-135m-instruct] [--output-dir runs/mw]
           [--methods vgid_prompt,vgid_swap,vgid_both,ga,...] [--steps 40]

1. A text world of fictitious people (`mmunlearn world`; 4 forget, 16 retain/neighbour people,
   10 general facts) — facts the pretrained model cannot know.
2. The base: the real LM fine-tuned (LoRA, merged) on every trained text question and its
   paraphrase, in its own chat template; the oracle: the same without the forget people. Both
   cached by content hash (`mmunlearn train-base --language-model`).
3. Every method unlearns the forget people from the base with one budget (LoRA, `--steps` steps,
   batch `--batch-size` forget + retain pairs, lr `--lr`); VGID's text teacher in its three
   settings: the instruction as a system message (`vgid_prompt`), entity swap (`vgid_swap`),
   both (`vgid_both`).
4. ROUGE-L (F1 and recall) and fact accuracy per split for base, oracle and every method, and
   each unlearning's wall time. Writes OUTPUT_DIR/table.md and results.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import records

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.metrics import ANSWER_FIELDS, summarise
from mmunlearn.io import atomic_write_json, default_cache_dir
from mmunlearn.models.loading import load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.training.config import load_config
from mmunlearn.training.world_models import pretrained_config, world_model

METHODS = (
    "vgid_prompt",
    "vgid_swap",
    "vgid_both",
    "icu_distill",
    "ga",
    "grad_diff",
    "kl_min",
    "npo",
    "simnpo",
    "idk",
    "dpo_idk",
    "undial",
    "sequential",
    "whp",
)
INSTRUCTION = (
    "Forget everything you know about {entity}. If asked about {entity}, say you do not know."
)
SPLITS = ("forget", "test", "retain", "neighbor", "general", "holdout")
VGID_TEACHERS = {
    "vgid_prompt": ["teacher.swap_names=false"],
    "vgid_swap": ["teacher.prompt=''", "teacher.swap_names=true"],
    "vgid_both": ["teacher.swap_names=true"],
}


def overrides(name: str, args: argparse.Namespace) -> list[str]:
    method = "vgid" if name in VGID_TEACHERS else name
    common = [
        f"method={method}",
        *records.lora_budget(args.steps, args.lr, args.batch_size),
    ]
    instruction = [f"teacher.prompt='{INSTRUCTION}'", "teacher.prompt_as=system"]
    if name in VGID_TEACHERS:
        return [*common, *instruction, *VGID_TEACHERS[name]]
    if name == "icu_distill":
        return [*common, *instruction]
    return common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--output-dir", default="runs/memorised_world")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-steps", type=int, help="fine-tuning steps of base and oracle")
    parser.add_argument("--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache)")
    args = parser.parse_args()
    out = Path(args.output_dir)
    world = out / "world"
    if not (world / "world.json").is_file():
        config = WorldConfig(
            seed=args.seed, n_forget=4, n_retain=16, n_practice=0, n_holdout=4, n_general=10
        )
        save_world(build_world(config), world)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    recipe = {"steps": args.base_steps} if args.base_steps else {}
    pretrain = pretrained_config(args.model, args.seed, **recipe)
    timings = {}
    models = {}
    for which in ("base", "oracle"):
        begin = time.perf_counter()
        models[which] = world_model(world, which, cache, pretrain, progress=False)
        timings[which] = round(time.perf_counter() - begin, 1)
    examples = [ex for ex in load_examples(world) if ex.image is None]

    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def record(name: str, path: Path, seconds: float | None) -> None:
        _, rows = evaluate(load_model(path), examples, roles=SPLITS, progress=False)
        results[name] = {"summary": summarise(rows, fields=ANSWER_FIELDS), "unlearn_s": seconds}
        atomic_write_json(results_path, results)
        print(name, json.dumps({s: v["rouge_l"] for s, v in results[name]["summary"].items()}))

    for which in ("base", "oracle"):
        if which not in results:
            record(which, models[which], timings[which])
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if name in results:
            continue
        config = load_config(None, overrides(name, args))
        begin = time.perf_counter()
        path = unlearn(models["base"], world, config, out / name, progress=False, overwrite=True)
        record(name, path, round(time.perf_counter() - begin, 1))
    write_table(out, results, args)


def write_table(out: Path, results: dict, args: argparse.Namespace) -> None:
    header = ["model", *SPLITS, "forget acc", "retain acc", "forget recall", "s"]
    rows = []
    for name, r in results.items():
        s = r["summary"]

        def cell(split: str, key: str = "rouge_l", s: dict = s) -> str:
            return f"{s[split][key]:.3f}" if split in s else "–"

        row = [name, *(cell(split) for split in SPLITS)]
        row += [cell("forget", "fact_acc"), cell("retain", "fact_acc")]
        row += [cell("forget", "rouge_l_recall")]
        row.append(f"{r['unlearn_s']:.0f}" if r.get("unlearn_s") is not None else "–")
        rows.append(row)
    footer = [
        f"ROUGE-L F1 per split (text questions); {args.model} fine-tuned with LoRA "
        f"(base/oracle 's' = fine-tuning time, or the cache read); methods: LoRA rank 8, "
        f"{args.steps} steps, lr {args.lr}, batch {args.batch_size} + {args.batch_size}; "
        f"{datetime.date.today()}, {records.machine()}; `python scripts/memorised_world.py`.",
    ]
    records.write_table(out / "table.md", header, rows, footer)


if __name__ == "__main__":
    main()
