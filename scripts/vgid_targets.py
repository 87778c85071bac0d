"""How far each point of a sweep is from issue 17's bar for VGID (or its improved default).

The bar, on the default world and on an unseen seed: forget-image MCQ ≤ oracle + 0.10, MIA AUC
(loss attack) ≤ oracle + 0.05, held-out neighbour ROUGE-L ≥ 0.95, forget ROUGE-L Δ ≤ −0.371 and
retain ROUGE-L Δ ≥ −0.055 from the base. Every model of each `mmunlearn sweep` folder (base,
oracle and every point's saved model) goes through `mmunlearn eval`'s suite (generation, mcq,
mia; cached per metric) on the whole world — not a validation half: this is the final report.

    python scripts/vgid_targets.py runs/sweep_seed0 runs/sweep_seed1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from records import machine, write_table  # noqa: E402

from mmunlearn.evaluation.evaluate import evaluate_models  # noqa: E402

SETTINGS = {"max_new_tokens": 8}  # the world's answers are 1-3 words (as the demo evaluates)


def row_of(report: dict, name: str) -> dict[str, float]:
    summary, metrics = report["methods"][name], report["metrics"][name]
    return {
        "forget": summary["forget"]["rouge_l"],
        "retain": summary["retain"]["rouge_l"],
        "neighbor_heldout": summary["neighbor"]["heldout"]["rouge_l"],
        "image_mcq": metrics["mcq"]["summary"]["forget"]["by_modality"]["image"]["mcq_acc"],
        "mia_auc": metrics["mia"]["auc"]["loss"],
    }


def verdicts(row: dict[str, float], base: dict[str, float], oracle: dict[str, float]) -> str:
    checks = [
        ("MCQ", row["image_mcq"] <= oracle["image_mcq"] + 0.10),
        ("MIA", row["mia_auc"] <= oracle["mia_auc"] + 0.05),
        ("neighbour", row["neighbor_heldout"] >= 0.95),
        ("forget", row["forget"] - base["forget"] <= -0.371),
        ("retain", row["retain"] - base["retain"] >= -0.055),
    ]
    missed = [name for name, ok in checks if not ok]
    return "all met" if not missed else "misses " + ", ".join(missed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", nargs="+", help="`mmunlearn sweep` output folders")
    parser.add_argument("--output", default="runs/vgid_targets.md")
    args = parser.parse_args()
    rows = []
    for folder in map(Path, args.sweeps):
        sweep = json.loads((folder / "sweep.json").read_text())
        models = dict(sweep["meta"]["models"])
        models |= {pid: str(folder / "runs" / pid / "model") for pid in sweep["points"]}
        oracle = models.pop("oracle")
        report = evaluate_models(
            models,
            folder / "world",
            folder / "eval",
            ("generation", "mcq", "mia"),
            oracle=oracle,
            settings=SETTINGS,
            progress=False,
        )
        scored = {name: row_of(report, name) for name in report["methods"]}
        base, ref = scored["base"], scored["oracle"]
        for name, row in scored.items():
            cells = [f"{row[k]:.3f}" for k in row]
            verdict = "" if name in ("base", "oracle") else verdicts(row, base, ref)
            rows.append([str(sweep["meta"]["seed"]), name, *cells, verdict])
    write_table(
        Path(args.output),
        ["seed", "model", "forget", "retain", "held-out neighbour", "image MCQ", "MIA AUC", "bar"],
        rows,
        [
            f"{machine()}. ROUGE-L on every row of each split; neighbour: held-out rows only. Bar: "
            "image MCQ ≤ oracle + 0.10, MIA AUC (loss) ≤ oracle + 0.05, held-out neighbour ≥ "
            "0.95, forget Δ ≤ −0.371, retain Δ ≥ −0.055.",
        ],
    )


if __name__ == "__main__":
    main()
