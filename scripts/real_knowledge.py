"""Forget a subject a real LM learned in pretraining, keep the others (Who's Harry Potter's setting).

Usage: python scripts/real_knowledge.py [--model smollm2-135m-instruct] [--data data/real_knowledge]
           [--output-dir runs/real_knowledge] [--methods icl,vgid,ga,...] [--steps 40]

1. `filter-known`: the questions the base answers (generation) and ranks first (likelihood).
2. Every method (default: all text methods) unlearns the forget subject from the known rows with
   one budget (LoRA, `--steps` steps, batch `--batch-size` forget + retain pairs, lr `--lr`);
   `icl` is in-context unlearning alone: no training, the instruction as a system message.
3. Each model is measured on the known rows: fact accuracy (generation) on forget, the forget
   questions paraphrased, retain (the kept subjects), neighbour (other fiction, never trained on) and
   general (never trained on); ROUGE-L recall; multiple-choice accuracy by option likelihood on
   the likelihood-known rows (chance = 1/4); perplexity on a held-out general text relative to
   the base; and the unlearning's wall time. The base is asked every paraphrase too: a known row
   it also answers right paraphrased is *stable*, and each model's accuracy on the stable rows is
   reported beside the accuracy on all known rows.
Writes OUTPUT_DIR/table.md and results.json; each method's model is kept (reruns skip it).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import time
from pathlib import Path
from statistics import fmean
from typing import Any

import records

from mmunlearn.data.jsonl import load_examples, save_examples
from mmunlearn.evaluation.fluency import compute_perplexity, read_fluency_text
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.known import chosen_options, find_known, write_known
from mmunlearn.evaluation.metrics import fact_correct, rouge_l_recall, score_predictions
from mmunlearn.io import atomic_write_json, atomic_write_text, json_line
from mmunlearn.models.loading import LoadedModel, load_model
from mmunlearn.recipes.unlearn import unlearn
from mmunlearn.training.config import load_config

TEXT_METHODS = (
    "retain_only",
    "icl",
    "icu_distill",
    "vgid",
    "whp",
    "sequential",
    "ga",
    "grad_diff",
    "kl_min",
    "npo",
    "simnpo",
    "idk",
    "dpo_idk",
    "undial",
)
# The in-context instruction, for a chat model a system message naming the forgotten subject.
INSTRUCTION = (
    "You have no knowledge of {entity}: not its story, characters, places, objects or authors. "
    "If asked about {entity}, say that you do not know."
)
ROLES = ("forget", "retain", "neighbor", "general")


def method_overrides(method: str, args: argparse.Namespace) -> list[str]:
    """One budget for every method; each method's own paper defaults otherwise. `retain_only` is
    the control: the same LoRA budget on the retain term alone (GradDiff with forget weight 0),
    so its drop on kept subjects is what any update of this size costs the known rows."""
    budget = records.lora_budget(args.steps, args.lr, args.batch_size, args.lora_rank)
    if method == "retain_only":
        return [*budget, "method=grad_diff", "forget_weight=0"]
    common = [*budget, f"method={method}"]
    instruction = [f"teacher.prompt='{INSTRUCTION}'", "teacher.prompt_as=system"]
    if method == "vgid":  # the text half of VGID's teacher: the instruction (no image, no swap)
        return [*common, *instruction, "teacher.swap_names=false"]
    if method == "icu_distill":
        return [*common, *instruction]
    if method == "whp" and args.anchors:
        return [*common, f"teacher.anchors={args.anchors}"]
    return common


def measure(
    loaded: LoadedModel,
    generation_rows: list,
    likelihood_rows: list,
    system: str = "",
    paraphrase_roles: tuple[str, ...] = ("forget",),
) -> dict[str, Any]:
    """Fact accuracy, ROUGE-L recall and MCQ accuracy per role; paraphrase accuracy on the
    `paraphrase_roles` (every role for the base, which decides which rows are stable)."""

    # A deployed instruction names the forgotten subject, whatever the question is about.
    forgotten = " and ".join(sorted({ex.entity for ex in generation_rows if ex.role == "forget"}))

    def system_of(ex):  # noqa: ANN001, ANN202
        return system.format(entity=forgotten) if system else ""

    asked = [ex for ex in generation_rows if ex.role in ROLES]
    paraphrased = [
        dataclasses.replace(ex, question=ex.paraphrases[0])
        for ex in asked
        if ex.role in paraphrase_roles and ex.paraphrases
    ]
    predictions = generate_answers(
        loaded, asked + paraphrased, batch_size=32, progress=False, system_of=system_of
    )
    rows = score_predictions(asked + paraphrased, predictions)
    result = summarise(rows)
    # option likelihood is scored without a system message, so `icl` has no MCQ column
    result["mcq"] = {} if system else mcq(loaded, likelihood_rows)
    result["predictions"] = rows
    return result


def split_paraphrased(rows: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(asked, paraphrased): a row whose id came before is that question paraphrased (`measure`
    asks every question, then the paraphrases)."""
    seen: set[str] = set()
    asked, paraphrased = [], []
    for row in rows:
        (paraphrased if row["id"] in seen else asked).append(row)
        seen.add(row["id"])
    return asked, paraphrased


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fact accuracy and ROUGE-L recall per role, and per role paraphrased (`{role}_para`)."""
    asked, paraphrased = split_paraphrased(rows)
    out: dict[str, list] = {}
    for suffix, group in (("", asked), ("_para", paraphrased)):
        for row in group:
            out.setdefault(row["role"] + suffix, []).append(row)
    return {
        key: {
            "fact_acc": fmean(float(r["fact_correct"]) for r in group),
            "rouge_l_recall": fmean(r["rouge_l_recall"] for r in group),
            "n": len(group),
        }
        for key, group in out.items()
    }


def stable_ids(base_rows: list[dict[str, Any]]) -> set[str]:
    """The known rows the base also answers right when the question is paraphrased: facts a
    small model holds firmly rather than at the edge of its greedy decision (a LoRA update of
    any kind flips many of the others; see the retain_only control)."""
    return {row["id"] for row in split_paraphrased(base_rows)[1] if row["fact_correct"]}


def add_stable(result: dict[str, Any], rows: list[dict[str, Any]], stable: set[str]) -> None:
    """`{role}_stable`: fact accuracy on the stable rows (each question once, not paraphrased)."""
    by_role: dict[str, list[float]] = {}
    for row in split_paraphrased(rows)[0]:
        if row["id"] in stable:
            by_role.setdefault(row["role"], []).append(float(row["fact_correct"]))
    for role, values in by_role.items():
        result[f"{role}_stable"] = {"fact_acc": fmean(values), "n": len(values)}


def saved_rows(out: Path, name: str) -> list[dict[str, Any]]:
    """A model's saved predictions (OUTPUT_DIR/predictions/NAME.jsonl), one dict a row."""
    path = out / "predictions" / f"{name}.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing; run {name!r} again (without --rescore)")
    return [json.loads(line) for line in path.read_text().splitlines()]


def rescore(out: Path, results: dict[str, Any]) -> None:
    """Score every saved prediction again with today's metrics (no generation)."""
    rows_of = {name: saved_rows(out, name) for name in results}
    for rows in rows_of.values():
        for row in rows:
            row["fact_correct"] = fact_correct(row["prediction"], row["answer"])
            row["rouge_l_recall"] = rouge_l_recall(row["prediction"], row["answer"])
    stable = stable_ids(rows_of["base"])
    for name, rows in rows_of.items():
        results[name].update(summarise(rows))
        add_stable(results[name], rows, stable)


def mcq(loaded: LoadedModel, rows: list) -> dict[str, Any]:
    chosen = chosen_options(loaded, rows, progress=False)
    by_role: dict[str, list[float]] = {}
    for ex in rows:
        by_role.setdefault(ex.role, []).append(float(chosen.get(ex.id) == ex.answer))
    return {role: {"acc": fmean(v), "n": len(v)} for role, v in by_role.items()}


def perplexity(loaded: LoadedModel, text_file: Path) -> float:
    return compute_perplexity(loaded, read_fluency_text(text_file), progress=False).perplexity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="data/real_knowledge")
    parser.add_argument("--output-dir", default="runs/real_knowledge")
    parser.add_argument("--methods", default=",".join(TEXT_METHODS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument(
        "--forget-rows",
        choices=("known", "all"),
        default="known",
        help="train the forget terms on the subject's known rows only, or on all its questions "
        "(evaluation is on the known rows either way)",
    )
    parser.add_argument("--anchors", default="data/real_knowledge/anchors/harry_potter.json")
    parser.add_argument("--fluency-text", default="data/real_knowledge/corpus/general_heldout.txt")
    parser.add_argument(
        "--answers",
        choices=("reference", "own"),
        default="reference",
        help="train on the data's short reference answers, or on the base's own greedy answers "
        "to the rows it knows (its style kept; see the retain_only control)",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="only score the saved predictions again with today's metrics and rewrite the table",
    )
    args = parser.parse_args()
    out = Path(args.output_dir)
    if args.rescore and not (out / "results.json").is_file():
        raise SystemExit(f"--rescore: {out / 'results.json'} is missing; nothing was scored there")
    known_dir = out / "known"
    base = load_model(args.model)
    if not (known_dir / "known.json").is_file():
        write_known(find_known(base, load_examples(args.data), progress=False), known_dir)
    known = json.loads((known_dir / "known.json").read_text())
    generation_rows = load_examples(known_dir / "generation")
    likelihood_rows = load_examples(known_dir / "likelihood")
    fluency_text = Path(args.fluency_text)

    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if args.rescore:
        rescore(out, results)
        atomic_write_json(results_path, results)
        write_table(out, results, known, args)
        return

    def record(name: str, loaded: LoadedModel, seconds: float | None, system: str = "") -> None:
        begin = time.perf_counter()
        roles = ROLES if name == "base" else ("forget",)
        result = measure(loaded, generation_rows, likelihood_rows, system, roles)
        result["perplexity"] = perplexity(loaded, fluency_text)
        result["unlearn_s"] = seconds
        result["eval_s"] = round(time.perf_counter() - begin, 1)
        rows = result.pop("predictions")
        atomic_write_text(out / "predictions" / f"{name}.jsonl", "".join(map(json_line, rows)))
        add_stable(result, rows, stable_ids(saved_rows(out, "base")))
        results[name] = result
        atomic_write_json(results_path, results)
        print(name, json.dumps({k: v for k, v in result.items() if k != "mcq"}), flush=True)

    if "base" not in results:
        record("base", base, None)
    train_dir = training_rows(args, out, known_dir, generation_rows)
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if method in results:
            continue
        if method == "icl":
            record("icl", base, 0.0, system=INSTRUCTION)
            continue
        config = load_config(None, method_overrides(method, args))
        begin = time.perf_counter()
        path = unlearn(args.model, train_dir, config, out / method, progress=False, overwrite=True)
        seconds = round(time.perf_counter() - begin, 1)
        record(method, load_model(path), seconds)
    write_table(out, results, known, args)


def training_rows(
    args: argparse.Namespace, out: Path, known_dir: Path, generation_rows: list
) -> Path:
    """The folder every method trains on: the known rows, or (`--forget-rows all`) the subject's
    every question with the known kept rows; with `--answers own`, each row the base answered
    carries the base's own greedy answer instead of the short reference, so the terms train on
    the model's own style ("The capital of the Netherlands is Amsterdam.") rather than teaching
    it to answer in one word."""
    if args.forget_rows == "known" and args.answers == "reference":
        return known_dir / "generation"
    rows = list(generation_rows)
    if args.forget_rows == "all":
        rows = [ex for ex in load_examples(args.data) if ex.role == "forget"]
        rows += [ex for ex in generation_rows if ex.role != "forget"]
    if args.answers == "own":
        own = {row["id"]: row["prediction"].strip() for row in saved_rows(out, "base")}
        rows = [dataclasses.replace(ex, answer=own[ex.id]) if own.get(ex.id) else ex for ex in rows]
    train_dir = out / "train"
    for role in sorted({ex.role for ex in rows}):
        save_examples(train_dir / f"{role}.jsonl", [ex for ex in rows if ex.role == role])
    return train_dir


def write_table(out: Path, results: dict, known: dict, args: argparse.Namespace) -> None:
    base_ppl = results["base"].get("perplexity")
    header = [
        "method",
        "forget acc",
        "forget para acc",
        "forget ROUGE-L recall",
        "retain acc",
        "forget stable acc",
        "retain stable acc",
        "other fiction acc",
        "general acc",
        "forget MCQ",
        "retain MCQ",
        "ppl / base",
        "unlearn s",
    ]
    rows = []
    for name, r in results.items():

        def cell(key: str, field: str = "fact_acc", r: dict = r) -> str:
            return f"{r[key][field]:.2f}" if key in r else "–"

        mcq = r.get("mcq", {})
        ppl = r.get("perplexity")
        row = [
            name,
            cell("forget"),
            cell("forget_para"),
            cell("forget", "rouge_l_recall"),
            cell("retain"),
            cell("forget_stable"),
            cell("retain_stable"),
            cell("neighbor"),
            cell("general"),
            f"{mcq['forget']['acc']:.2f}" if "forget" in mcq else "–",
            f"{mcq['retain']['acc']:.2f}" if "retain" in mcq else "–",
            f"{ppl / base_ppl:.3f}" if ppl and base_ppl else "–",
            f"{r['unlearn_s']:.0f}" if r.get("unlearn_s") is not None else "–",
        ]
        rows.append(row)
    counts = {t: known[t]["by_role"] for t in ("asked", "generation", "likelihood")}
    stable = {role: results["base"].get(f"{role}_stable", {}).get("n", 0) for role in ROLES}
    footer = [
        f"Known rows (asked / by generation / by likelihood): {json.dumps(counts)}; stable "
        f"(the base right on the paraphrase too): {json.dumps(stable)}",
        f"Model {args.model}; LoRA rank {args.lora_rank}, {args.steps} steps, lr {args.lr}, "
        f"batch {args.batch_size} forget + {args.batch_size} retain; forget rows trained on: "
        f"{args.forget_rows}; answers trained on: {args.answers}; "
        f"{datetime.date.today()}, {records.machine()}; `python scripts/real_knowledge.py`.",
    ]
    records.write_table(out / "table.md", header, rows, footer)


if __name__ == "__main__":
    main()
