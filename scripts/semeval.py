"""SemEval-2025 Task 4 on a CPU: memorise the task's documents with a tiny causal LM, unlearn the
forget set with several methods, and score every component of the task's metric.

The official target models (OLMo-7B/1B fine-tuned on these documents) cannot be downloaded here,
so a tiny GPT-2-style model with a word-level tokenizer built on this text — or, with
`--language-model`, a real pretrained LM (`smollm2-135m-instruct`, `gemma3-270m`: the task's own
recipe at a size this CPU trains, LoRA) — is first fine-tuned on every chosen forget and retain
item (train and validation) and the member documents, until it (mostly) reproduces them; that
model is the "base" the methods unlearn from. Its own scores are
reported as they are. Text VGID / entity swap / in-context teachers do not apply: a SemEval item's
entity is a document id that its text never names (there is no name to swap or to put in a
"Forget <name> ." prompt).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/semeval.py --max-items 4 --max-docs 12
    python scripts/semeval.py --language-model smollm2-135m-instruct --output-dir runs/semeval-smol

writes runs/semeval/report.json and report.md (base and each method, every component).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import random
import time
from pathlib import Path

import torch

from mmunlearn.data.example import Example
from mmunlearn.data.semeval import SemEvalData, document_example, load_semeval
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.semeval import document_losses, semeval_scores
from mmunlearn.io import atomic_write_json, atomic_write_text
from mmunlearn.methods import build_method
from mmunlearn.models.encoding import FALLBACK_TEMPLATE
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.models.tiny import TinyCausalLMConfig, build_tiny_causal_lm, build_word_tokenizer
from mmunlearn.training.config import TrainConfig
from mmunlearn.training.run import train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "semeval25"
log = logging.getLogger("semeval")


def choose(data: SemEvalData, max_items: int, max_docs: int, seed: int):
    """Up to `max_items` items per (split, subset, task, kind) cell, and `max_docs` member and
    nonmember documents (0 = all), drawn with `seed`."""
    rng = random.Random(seed)
    cells: dict[tuple, list[Example]] = {}
    for ex in data.examples:
        key = (ex.role, ex.meta["subset"], ex.meta["task"], ex.meta["kind"])
        cells.setdefault(key, []).append(ex)
    items = []
    for key in sorted(cells):
        rows = cells[key]
        items += rows if not max_items else rng.sample(rows, min(max_items, len(rows)))
    members, nonmembers = data.members(True), data.members(False)
    if max_docs:
        members = rng.sample(members, min(max_docs, len(members)))
        nonmembers = rng.sample(nonmembers, min(max_docs, len(nonmembers)))
    return (
        items,
        [document_example(d, "forget") for d in members],
        [document_example(d, "holdout") for d in nonmembers],
    )


def token_budget(loaded: LoadedModel, examples: list[Example]) -> int:
    return max(len(loaded.tokenizer(ex.answer)["input_ids"]) for ex in examples) + 2


def score(
    loaded: LoadedModel,
    items: list[Example],
    members: list[Example],
    nonmembers: list[Example],
) -> dict:
    predictions: dict[str, str] = {}
    for kind in ("qa", "sc"):
        chosen = [ex for ex in items if ex.meta["kind"] == kind]
        answers = generate_answers(
            loaded,
            chosen,
            batch_size=32,
            max_new_tokens=token_budget(loaded, chosen),
            progress=False,
        )
        predictions.update({ex.id: a for ex, a in zip(chosen, answers, strict=True)})
    scores = semeval_scores(
        items,
        [predictions[ex.id] for ex in items],
        document_losses(loaded, [ex.meta["text"] for ex in members]),
        document_losses(loaded, [ex.meta["text"] for ex in nonmembers]),
    )
    scores["examples"] = [
        {"id": ex.id, "answer": ex.answer[:120], "prediction": predictions[ex.id][:120]}
        for ex in items[:: max(1, len(items) // 6)]
    ]
    return scores


def train_base(args, items, members, nonmembers, out: Path) -> Path:
    """Fine-tune a tiny causal LM on every item and member document; reused when the recipe and
    data are unchanged."""
    recipe = {
        "ids": sorted(ex.id for ex in items + members + nonmembers),
        "steps": args.base_steps,
        "lr": args.base_lr,
        "batch_size": args.batch_size,
        "model": dataclasses.asdict(args.model),
        "seed": args.seed,
    }
    if args.language_model:
        recipe["language_model"] = args.language_model
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = out / f"base-{digest}"
    if (path / "model" / "config.json").is_file():
        log.info("base found: %s", path / "model")
        return path / "model"
    torch.manual_seed(args.seed)
    if args.language_model:
        loaded = load_model(args.language_model)
    else:
        texts = [FALLBACK_TEMPLATE]
        for ex in items + members + nonmembers:
            texts += [ex.question, ex.answer]
        tokenizer = build_word_tokenizer(texts)
        loaded = LoadedModel(build_tiny_causal_lm(tokenizer, args.model), tokenizer, "causal_lm")
    config = TrainConfig(
        steps=args.base_steps,
        lr=args.base_lr,
        batch_size=args.batch_size,
        warmup_steps=min(50, args.base_steps // 10),
        scheduler="cosine",
        logging_steps=50,
        seed=args.seed,
        **lora_settings(args, rank=16),
    )
    train(
        loaded,
        build_method("finetune"),
        {"train": items + members},
        config,
        path,
        progress=False,
    )
    return path / "model"


def lora_settings(args, rank: int) -> dict:
    """A real LM trains LoRA adapters (merged when saved); a tiny one trains in full. Token-level
    terms take the fused head (`--fused-head chunked`: one chunk of logits at a time), which
    Gemma-3's 262k vocabulary needs to fit a CPU's memory at document length."""
    if not args.language_model:
        return {}
    return {
        "lora": True,
        "lora_rank": rank,
        "lora_alpha": 2 * rank,
        "fused_head": args.fused_head,
    }


def fmt(value) -> str:
    return "missing" if isinstance(value, dict) else f"{value:.3f}"


def render(report: dict) -> str:
    components = [
        (task, name)
        for task, cells in next(iter(report["models"].values()))["components"].items()
        for name in cells
    ]
    short = {
        "forget_regurgitation_score": "F sc",
        "forget_knowledge_score": "F qa",
        "retain_regurgitation_score": "R sc",
        "retain_knowledge_score": "R qa",
    }
    header = ["model"] + [f"{t[-1]} {short[n]}" for t, n in components]
    header += ["hmean(12)", "MIA AUC", "MIA score", "MMLU", "mean w/o MMLU", "s"]
    lines = [
        f"# SemEval-2025 Task 4 on {report['settings'].get('language_model') or 'a tiny causal LM'}",
        "",
        "Columns `<task> F sc` = 1 − regurgitation score (ROUGE-L recall) on forget sentence "
        "completions, `F qa` = 1 − knowledge score (exact match after strip and lower-case) on "
        "forget questions, `R sc` / `R qa` the same on retain "
        "(not inverted); higher is better everywhere. MIA score = 1 − 2·|AUC − 0.5| (1 = chance).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, s in report["models"].items():
        cells = [fmt(s["components"][t][n]) for t, n in components]
        cells += [
            fmt(s["harmonic_mean"]),
            f"{s['mia']['auc']:.3f}",
            f"{s['mia']['mia_score']:.3f}",
            "missing",
            fmt(s["aggregate_without_mmlu"]),
            f"{report['timings'].get(name, 0):.0f}",
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    lines += ["", f"MMLU: {report['models']['base']['mmlu']['reason']}.", ""]
    lines += [f"Items per cell: {json.dumps(report['models']['base']['n_items'])}", ""]
    lines += [f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="folder of SemEval-2025 Task 4 files")
    parser.add_argument("--output-dir", default="runs/semeval")
    parser.add_argument("--max-items", type=int, default=4, help="items per cell (0: all)")
    parser.add_argument("--max-docs", type=int, default=12, help="member/nonmember docs (0: all)")
    parser.add_argument("--methods", default="ga,grad_diff,npo,simnpo,undial")
    parser.add_argument("--family", choices=("gpt2", "llama"), default="gpt2")
    parser.add_argument(
        "--language-model",
        help="fine-tune this real pretrained LM (a folder, .gguf file or `get-model` name, "
        "e.g. smollm2-135m-instruct, gemma3-270m) with LoRA instead of a tiny model",
    )
    parser.add_argument("--base-steps", type=int, default=400)
    parser.add_argument("--base-lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--unlearn-steps", type=int, default=30)
    parser.add_argument("--unlearn-lr", type=float, default=3e-4)
    parser.add_argument(
        "--unlearn-batch-size", type=int, default=8, help="forget (and retain) rows per step"
    )
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument(
        "--fused-head",
        choices=("off", "chunked"),
        default="chunked",
        help="with --language-model: token-level losses from hidden states in chunks",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.model = TinyCausalLMConfig(
        family=args.family, width=args.width, layers=args.layers, heads=4
    )
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.output_dir)
    start = time.perf_counter()
    items, members, nonmembers = choose(
        load_semeval(args.data), args.max_items, args.max_docs, args.seed
    )
    print(f"{len(items)} items, {len(members)} member and {len(nonmembers)} nonmember documents")
    # each model's training time, kept so that a rerun scores saved models without retraining
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    begin = time.perf_counter()
    base_path = train_base(args, items, members, nonmembers, out)
    timings.setdefault("base", time.perf_counter() - begin)
    models = {"base": score(load_model(base_path), items, members, nonmembers)}
    print(
        f"base: hmean {fmt(models['base']['harmonic_mean'])}, MIA AUC {models['base']['mia']['auc']:.3f}"
    )
    by_role = {
        "forget": [ex for ex in items if ex.role == "forget"] + members,
        "retain": [ex for ex in items if ex.role == "retain"],
    }
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        begin = time.perf_counter()
        config = TrainConfig(
            steps=args.unlearn_steps,
            lr=args.unlearn_lr,
            batch_size=args.unlearn_batch_size,
            seed=args.seed,
            **lora_settings(args, rank=8),
        )
        saved = out / name / "model"
        if (saved / "config.json").is_file() and name in timings:  # scored again, not retrained
            log.info("%s found: %s", name, saved)
            result = load_model(saved)
        else:
            result = train(load_model(base_path), build_method(name), by_role, config, out / name)
            timings[name] = time.perf_counter() - begin
            atomic_write_json(out / "timings.json", timings)
        models[name] = score(result, items, members, nonmembers)
        print(
            f"{name}: hmean {fmt(models[name]['harmonic_mean'])}, MIA AUC {models[name]['mia']['auc']:.3f}"
        )
    report = {
        "models": models,
        "timings": timings,
        "total_s": time.perf_counter() - start,
        "settings": {
            k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
            for k, v in vars(args).items()
        },
        "command": "python scripts/semeval.py "
        + f"--max-items {args.max_items} --max-docs {args.max_docs} --methods {args.methods} "
        + f"--base-steps {args.base_steps} --batch-size {args.batch_size} "
        + f"--unlearn-steps {args.unlearn_steps} --unlearn-batch-size {args.unlearn_batch_size} "
        + (
            f"--language-model {args.language_model} --base-lr {args.base_lr} "
            f"--unlearn-lr {args.unlearn_lr}"
            if args.language_model
            else f"--family {args.family} --width {args.width} --layers {args.layers}"
        ),
        "base_model": str(base_path),
    }
    atomic_write_json(out / "report.json", report)
    markdown = render(report) + f"Total: {report['total_s']:.0f} s\n"
    atomic_write_text(out / "report.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
