"""VGID with both halves on a LLaVA built on a real LM (SmolLM2-135M-Instruct).

Usage: python scripts/llava_on_lm.py [--output-dir runs/llava_lm] [--oracle]
           [--variants noise,instruction,both,both_swap] [--steps 8]

1. A small synthetic world (2 forget people, 6 retain/neighbour, 2 holdout, 4 general facts) —
   fictitious people, each with a portrait, image and text questions.
2. The base: `mmunlearn train-base --language-model smollm2-135m-instruct --vision`'s recipe
   (LLaVA's two stages on the real LM, `world_models.LlavaOnLM`); with `--oracle` the oracle
   too (the same without the forget people). Cached by content hash.
3. VGID's teacher ablation, each run with one budget (LoRA rank 8, `--steps` steps, batch
   `--batch-size` forget + retain, lr `--lr`): noise only, the instruction only (a system
   message naming the person), both (the paper's teacher), both + entity swap.
4. ROUGE-L per split, image+text and text-only separately, and each stage's and run's wall
   time. Writes OUTPUT_DIR/table.md and results.json (a second run continues where it stopped).
5. The teachers themselves (`--teacher-probe`, no training): the base's greedy answers to the
   forget and retain questions under each teacher's inputs (image replaced by noise, the
   instruction as a system message, both) — what each VGID variant distils toward.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import sys
import time
from pathlib import Path

import records

from mmunlearn.data.jsonl import load_examples
from mmunlearn.data.world import WorldConfig, build_world, save_world
from mmunlearn.evaluation.evaluate import evaluate
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.metrics import GENERATION_FIELDS, score_predictions, summarise
from mmunlearn.io import atomic_write_json, default_cache_dir
from mmunlearn.models.families import pixel_bounds
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.teachers.visual_noise import VisualNoise
from mmunlearn.training.config import load_config
from mmunlearn.training.world_models import (
    LLAVA_ON_LM_RECIPE,
    LlavaOnLM,
    llava_on_lm_config,
    world_model,
)

WORLD = {"n_forget": 2, "n_retain": 6, "n_practice": 0, "n_holdout": 2, "n_general": 4}
INSTRUCTION = (
    "Forget everything you know about {entity}. If asked about {entity}, say you do not know."
)
VARIANTS = {
    "noise": ["teacher.prompt=''", "teacher.swap_names=false"],
    "instruction": ["teacher.noise=none", "teacher.swap_names=false"],
    "both": ["teacher.swap_names=false"],
    "both_swap": ["teacher.swap_names=true"],
}
SPLITS = ("forget", "test", "retain", "neighbor", "general", "holdout")
COLUMNS = [(s, m) for s in ("forget", "test", "retain", "neighbor") for m in ("image", "text")]
COLUMNS += [("general", "text"), ("holdout", "image"), ("holdout", "text")]
HEADLINE = {"forget": -0.371, "retain": -0.055}  # the paper's forget drop / retain drop bound
ANSWER_TOKENS = 16


def overrides(variant: str, args: argparse.Namespace) -> list[str]:
    return [
        "method=vgid",
        *records.lora_budget(args.steps, args.lr, args.batch_size),
        f"teacher.prompt='{INSTRUCTION}'",
        "teacher.prompt_as=system",
        *VARIANTS[variant],
    ]


def teacher_summary(loaded: LoadedModel, rows: list, noise: bool, instruction: bool) -> dict:
    """ROUGE-L of the base's answers under a teacher's inputs: images replaced by noise (the
    teacher's own intervention and seeds), the instruction as a system message, or both."""
    replace, bounds = VisualNoise(kind="replace"), pixel_bounds(loaded.processor, loaded.family)

    def noised(pixels, examples):  # noqa: ANN001, ANN202
        return replace.apply(pixels, [replace.seed_key(ex) for ex in examples], bounds)

    predictions = generate_answers(
        loaded,
        rows,
        max_new_tokens=ANSWER_TOKENS,
        progress=False,
        transform_pixels=noised if noise else None,
        system_of=(lambda ex: INSTRUCTION.format(entity=ex.entity)) if instruction else None,
    )
    scored = score_predictions(rows, predictions)
    for row in scored:
        row["refuses"] = REFUSAL.search(row["prediction"]) is not None
    summary = summarise(scored, fields={**GENERATION_FIELDS, "refusal": "refuses"})
    summary["answers"] = [(row["answer"], row["prediction"]) for row in scored[:6]]
    return summary


TEACHER_INPUTS = {
    "plain": (False, False),
    "noise": (True, False),
    "instruction": (False, True),
    "both": (True, True),
}
# an answer that declines ("I don't know", "I'm sorry, I cannot ...")
REFUSAL = re.compile(r"\b(know|sorry|cannot|can't|unable|not sure|no information)\b", re.I)


def stage_seconds(model_dir: Path) -> dict[str, float]:
    """Each training stage's runtime, from the Trainer logs the recipe wrote."""
    seconds = {}
    for stage, log in (("stage1", "stage1/train_log.json"), ("stage2", "train_log.json")):
        path = model_dir.parent / log
        if path.is_file():
            seconds[stage] = round(json.loads(path.read_text())[-1]["train_runtime"], 1)
    return seconds


def value(summary: dict, split: str, modality: str) -> float | None:
    node = summary.get(split, {}).get("by_modality", {}).get(modality)
    return None if node is None else node["rouge_l"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--output-dir", default="runs/llava_lm")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--oracle", action="store_true", help="train and evaluate the oracle too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache)")
    stage2 = LLAVA_ON_LM_RECIPE
    parser.add_argument(
        "--align-steps", type=int, default=LlavaOnLM.align_steps, help="the base's stage 1 steps"
    )
    parser.add_argument(
        "--base-steps", type=int, default=stage2["steps"], help="the base's stage 2 steps"
    )
    parser.add_argument("--base-lr", type=float, default=stage2["lr"], help="stage 2's lr")
    parser.add_argument(
        "--base-batch-size", type=int, default=stage2["batch_size"], help="both stages' batch"
    )
    parser.add_argument(
        "--base-warmup-steps", type=int, default=stage2["warmup_steps"], help="stage 2's warmup"
    )
    parser.add_argument(
        "--freeze-tower-in-stage2",
        action="store_true",
        help="train only the projector and the LM's LoRA in stage 2, as LLaVA does with its "
        "pretrained CLIP (the measured alternative; the default trains the tower too)",
    )
    parser.add_argument(
        "--teacher-probe", action="store_true", help="also answer as each teacher (no training)"
    )
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants {unknown}: expected some of {', '.join(VARIANTS)}")
    out = Path(args.output_dir)
    world = out / "world"
    if not (world / "world.json").is_file():
        save_world(build_world(WorldConfig(seed=args.seed, **WORLD)), world)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    recipe = llava_on_lm_config(
        args.model,
        args.seed,
        align_steps=args.align_steps,
        tower_in_stage2=not args.freeze_tower_in_stage2,
        steps=args.base_steps,
        lr=args.base_lr,
        batch_size=args.base_batch_size,
        warmup_steps=args.base_warmup_steps,
    )
    examples = load_examples(world)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def record(name: str, path: Path, seconds: dict[str, float]) -> None:
        begin = time.perf_counter()
        summary, _ = evaluate(
            load_model(path), examples, SPLITS, progress=False, max_new_tokens=ANSWER_TOKENS
        )
        seconds["eval"] = round(time.perf_counter() - begin, 1)
        results[name] = {"summary": summary, "seconds": seconds}
        atomic_write_json(results_path, results)
        print(name, {f"{s} {m}": value(summary, s, m) for s, m in COLUMNS}, seconds, flush=True)

    models = {}
    start = time.time()
    for which in ("base", "oracle") if args.oracle else ("base",):
        begin = time.perf_counter()
        models[which] = world_model(world, which, cache, recipe, progress=False)
        if which not in results:
            trained = (models[which].parent / "train_log.json").stat().st_mtime > start
            wall = {"wall": round(time.perf_counter() - begin, 1)} if trained else {}
            record(which, models[which], {**stage_seconds(models[which]), **wall})
    if args.teacher_probe:
        probed = results.setdefault("teacher_probe", {})
        rows = [ex for ex in examples if ex.role in ("forget", "retain")]
        loaded = load_model(models["base"])
        for name, (noise, instruction) in TEACHER_INPUTS.items():
            if name not in probed:
                probed[name] = teacher_summary(loaded, rows, noise, instruction)
                atomic_write_json(results_path, results)
    for variant in variants:
        if variant in results:
            continue
        config = load_config(None, overrides(variant, args))
        begin = time.perf_counter()
        path = unlearn(models["base"], world, config, out / variant, progress=False)
        record(variant, path, {"unlearn": round(time.perf_counter() - begin, 1)})
    write_table(out, results, args, recipe)


def write_table(out: Path, results: dict, args: argparse.Namespace, recipe) -> None:  # noqa: ANN001
    header = ["model", *(f"{s} {'img' if m == 'image' else 'txt'}" for s, m in COLUMNS)]
    header += ["headline img", "headline txt", "s"]
    base = results["base"]["summary"]
    rows = []
    for name, r in results.items():
        if name == "teacher_probe":
            continue
        s = r["summary"]
        row = [name]
        for split, modality in COLUMNS:
            v = value(s, split, modality)
            row.append("–" if v is None else f"{v:.3f}")
        for modality in ("image", "text"):
            if name in ("base", "oracle"):
                row.append("–")
                continue
            drops = {k: value(s, k, modality) - value(base, k, modality) for k in HEADLINE}
            met = drops["forget"] <= HEADLINE["forget"] and drops["retain"] >= HEADLINE["retain"]
            row.append(f"{drops['forget']:+.3f} / {drops['retain']:+.3f} {'✓' if met else '✗'}")
        row.append(" + ".join(f"{k} {v:.0f}" for k, v in r["seconds"].items()))
        rows.append(row)
    model = recipe.model
    footer = [
        f"ROUGE-L F1 per split and modality (img: image+text questions, txt: text-only). "
        f"{args.model} + a CLIP-style vision tower ({model.vision.image_size} px, "
        f"{model.vision.image_tokens} image tokens, width {model.vision.width}, "
        f"{model.vision.layers} layers): stage 1 {model.align_steps} steps, stage 2 "
        f"{recipe.steps} steps (LoRA rank {model.lora_rank} + projector"
        f"{' + vision tower' if model.tower_in_stage2 else ''}), batch "
        f"{recipe.batch_size}, lr {recipe.lr}. VGID runs: LoRA rank 8, {args.steps} steps, "
        f"lr {args.lr}, batch {args.batch_size} + {args.batch_size}, noise = image replaced, "
        "instruction = a system message naming the person. headline: forget / retain change "
        f"against the base, ✓ where forget ≤ {HEADLINE['forget']} and retain ≥ "
        f"{HEADLINE['retain']} (the paper's). s: seconds (stage1, stage2, the whole build "
        f"with saves, unlearning, evaluation; as measured by the run that trained each "
        f"model); {datetime.date.today()}, {records.machine()}; "
        f"`python scripts/llava_on_lm.py {shlex.join(sys.argv[1:])}`.",
    ]
    probed = results.get("teacher_probe", {})
    if probed:
        columns = [(s, m) for s in ("forget", "retain") for m in ("image", "text")]
        names = [f"{s} {m}" for s, m in columns]
        lines = ["| base answering as | " + " | ".join(names + [f"{n} refusals" for n in names])]
        lines[0] += " |"
        lines.append("|" + "---|" * (2 * len(columns) + 1))
        for name, summary in probed.items():
            nodes = [summary[s]["by_modality"][m] for s, m in columns]
            cells = [f"{n['rouge_l']:.3f}" for n in nodes] + [f"{n['refusal']:.2f}" for n in nodes]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        footer += [
            "",
            "The teachers (`--teacher-probe`, no training): ROUGE-L of the base's own greedy "
            "answers under each teacher's inputs, and the share of answers that decline "
            "(know / sorry / cannot / unable / not sure / no information).",
            "",
        ]
        footer += lines
    records.write_table(out / "table.md", header, rows, footer)


if __name__ == "__main__":
    main()
