"""The attacks of `mmunlearn eval` on base, oracle and every method of a compare run: the README's
robustness table (which attack recovers what, against the oracle).

Usage: python scripts/attacks.py [--run runs/compare_all] [--methods vgid,npo,...]
                                 [--output-dir runs/attacks]

Reads the models of a `mmunlearn compare` run (its report.json names them; `scripts/compare_all.py`
makes one with every method) and evaluates each with the generation metric, every attack of
`attack_metrics.ROBUSTNESS_ATTACKS` and the `robustness` summary, the run's oracle the reference. Writes OUTPUT_DIR/attacks.md: per model and attack, the forget score recovered ABOVE
the oracle's recovery under the same attack (the oracle's row: its own recovery), the date and
the machine. Results are cached per metric in OUTPUT_DIR/metrics, so a rerun is quick.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from records import machine, write_table

from mmunlearn.demo import WORLD_ANSWER_TOKENS
from mmunlearn.evaluation.attack_metrics import ROBUSTNESS_ATTACKS
from mmunlearn.evaluation.evaluate import evaluate_models


def cell(row: dict | None, oracle: bool) -> str:
    if row is None or "missing" in row:
        return "–"
    value = row["recovered"] if oracle else row["above_oracle"]
    text = f"{value:+.3f}".replace("-", "−")
    return f"**{text}**" if not oracle and row["recovers"] else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/compare_all", help="a compare run's output folder")
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--output-dir", default="runs/attacks")
    args = parser.parse_args()
    run = Path(args.run)
    models = json.loads((run / "report.json").read_text())["meta"]["models"]
    if args.methods:
        wanted = {"base", "oracle", *args.methods.split(",")}
        unknown = wanted - set(models)
        if unknown:
            raise SystemExit(f"--methods {sorted(unknown)}: not in {run} ({sorted(models)})")
        models = {k: v for k, v in models.items() if k in wanted}
    begin = time.perf_counter()
    report = evaluate_models(
        models,
        run / "world",
        args.output_dir,
        metrics=["generation", *ROBUSTNESS_ATTACKS, "robustness"],
        settings={"max_new_tokens": WORLD_ANSWER_TOKENS},
        progress=False,
    )
    minutes = (time.perf_counter() - begin) / 60
    metrics = report["metrics"]
    # an attack no model could take is left out of the table; the footer says why
    shown = [
        a
        for a in ROBUSTNESS_ATTACKS
        if any("missing" not in r["robustness"]["probes"][a] for r in metrics.values())
    ]
    header = ["model", "forget ROUGE-L", *(ROBUSTNESS_ATTACKS[a] for a in shown)]
    rows = []
    for name, results in metrics.items():
        probes = results["robustness"]["probes"]
        forget = results["generation"]["summary"]["forget"]["rouge_l"]
        rows.append(
            [name, f"{forget:.3f}", *(cell(probes.get(a), name == "oracle") for a in shown)]
        )
    missing = {
        ROBUSTNESS_ATTACKS[a]: p["missing"]
        for r in metrics.values()
        for a, p in r["robustness"]["probes"].items()
        if "missing" in p
    }
    threshold = next(iter(metrics.values()))["robustness"]["threshold"]
    footer = [
        "Forget score recovered by each attack ABOVE the oracle's recovery under the same attack "
        "(attacked − plain, minus the oracle's attacked − plain): ROUGE-L of greedy answers, "
        "fact accuracy for the linear probe. The oracle's row is its own recovery (what comes "
        f"back with no knowledge of the forget people). Bold: above the oracle by more than "
        f"+{threshold:.2f}. –: not measured ("
        + "; ".join(f"{k}: {v}" for k, v in missing.items())
        + ").",
        f"{run}, {len(metrics)} models; {len(report['meta']['computed'])} results computed "
        f"(the rest read from {args.output_dir}/metrics) in {minutes:.1f} min ({datetime.date.today()}, "
        f"{machine()}; `python scripts/attacks.py --run {run}`).",
    ]
    write_table(Path(args.output_dir) / "attacks.md", header, rows, footer)


if __name__ == "__main__":
    main()
