"""The evaluation report: one summary per method, written as JSON, markdown and a plot."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mmunlearn.data.example import MODALITIES
from mmunlearn.evaluation.mia import ATTACKS
from mmunlearn.io import atomic_write_json, atomic_write_text, json_line

# The splits every report shows, in this order (also what `evaluate` scores by default).
SPLITS = ("forget", "test", "retain", "neighbor", "general", "holdout")
MINUS = "\u2212"
MISSING = "\u2013"  # en dash
# The attacks the by-modality table shows (of mia.ATTACKS), to keep it narrow.
MODALITY_ATTACKS = ("loss", "min_k_plus_plus")


def build_report(
    methods: dict[str, dict], meta: dict, metrics: dict[str, dict] | None = None
) -> dict[str, Any]:
    """`methods[name]` is a `summarise()` output (split -> metrics); `meta` is free-form;
    `metrics[name][metric]` (optional) the evaluation suite's results without per-question rows.
    """
    report: dict[str, Any] = {"methods": methods, "meta": meta}
    if metrics:
        report["metrics"] = metrics
    return report


def merge_reports(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One report from several (`reports[source] = report`). A method name that two sources
    share becomes `source/name` in both; meta keeps each source's under its name."""
    counts: dict[str, int] = {}
    for report in reports.values():
        for name in report["methods"]:
            counts[name] = counts.get(name, 0) + 1
    methods: dict[str, dict] = {}
    metrics: dict[str, dict] = {}
    for source, report in reports.items():
        for name, summary in report["methods"].items():
            key = name if counts[name] == 1 else f"{source}/{name}"
            methods[key] = summary
            if name in report.get("metrics", {}):
                metrics[key] = report["metrics"][name]
    meta = {"sources": {source: report.get("meta", {}) for source, report in reports.items()}}
    return build_report(methods, meta, metrics)


def _fmt(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _signed(value: float) -> str:
    return f"{MINUS}{-value:.3f}" if value < 0 else f"+{value:.3f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _cell(summary: dict, split: str, key: str, modality: str | None = None) -> str:
    stats = summary.get(split, {})
    if modality is not None:
        stats = stats.get("by_modality", {}).get(modality, {})
    return _fmt(stats.get(key))


def render_markdown(report: dict[str, Any], splits: Sequence[str] = SPLITS) -> str:
    """Markdown tables of ROUGE-L and fact accuracy per method and split, then by modality.

    Methods other than "base" also get their change in forget and retain ROUGE-L from base.
    """
    methods = report["methods"]
    present = [s for s in splits if any(s in summary for summary in methods.values())]
    header = ["method"] + [f"{s} {m}" for s in present for m in ("ROUGE-L", "acc")]
    rows = [
        [name] + [_cell(summary, s, k) for s in present for k in ("rouge_l", "fact_acc")]
        for name, summary in methods.items()
    ]
    lines = ["# Unlearning report", "", *_table(header, rows), ""]

    cells = [(s, m) for s in ("forget", "retain") if s in present for m in MODALITIES]
    if cells:
        header = ["method"] + [f"{s} {m} ROUGE-L" for s, m in cells]
        rows = [
            [name] + [_cell(summary, s, "rouge_l", m) for s, m in cells]
            for name, summary in methods.items()
        ]
        lines += [
            "## By modality (image+text vs text-only)",
            "",
            *_table(header, rows),
            "",
        ]

    held = [s for s in present if any("heldout" in m.get(s, {}) for m in methods.values())]
    if held:
        header = ["method"] + [f"{s} held-out ROUGE-L (n)" for s in held]
        rows = [
            [name]
            + [
                f"{_cell(summary.get(s, {}), 'heldout', 'rouge_l')} "
                f"({summary.get(s, {}).get('heldout', {}).get('n', 0)})"
                for s in held
            ]
            for name, summary in methods.items()
        ]
        lines += [
            "## Held out (rows no sampler trains on: `data/splits.py`)",
            "",
            *_table(header, rows),
            "",
        ]

    base = methods.get("base")
    if base is not None:
        changes = []
        for name, summary in methods.items():
            if name == "base":
                continue
            parts = [
                f"{s} ROUGE-L {_signed(summary[s]['rouge_l'] - base[s]['rouge_l'])}"
                for s in ("forget", "retain")
                if s in summary and s in base
            ]
            if parts:
                changes.append(f"- {name}: " + ", ".join(parts))
        if changes:
            lines += ["## Change from base", "", *changes, ""]
    if report.get("metrics"):
        lines += render_metrics(report["metrics"])
    return "\n".join(lines)


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _metric_cell(results: dict, metric: str, *keys: str) -> str:
    if "missing" in results.get(metric, {}):
        return "missing"
    value = _get(results.get(metric), *keys)
    return _fmt(value) if isinstance(value, (int, float)) else MISSING


def _robustness_cell(probe: dict | None) -> str:
    if probe is None:
        return MISSING
    if "missing" in probe:
        return "missing"
    cell = f"{probe['baseline']:.3f} → {probe['attacked']:.3f} ({_signed(probe['recovered'])}"
    if "above_oracle" in probe:
        cell += f"; oracle {_signed(probe['oracle_recovered'])}"
    return cell + ")"


def render_metrics(metrics: dict[str, dict]) -> list[str]:
    """Markdown sections for the evaluation suite's results (`metrics[method][metric]`)."""
    lines: list[str] = []
    split_cells = [
        ("MCQ", "mcq", "mcq_acc"),
        ("P(a)", "probability", "answer_prob"),
        ("ln R", "truth_ratio", "log_truth_ratio"),
        ("truth score", "truth_ratio", "truth_score"),
        ("cloze", "cloze", "cloze_acc"),
    ]
    header = ["method"] + [
        f"{s} {label}" for label, _, _ in split_cells for s in ("forget", "retain")
    ]
    rows = [
        [name]
        + [
            _metric_cell(results, metric, "summary", split, key)
            for _, metric, key in split_cells
            for split in ("forget", "retain")
        ]
        for name, results in metrics.items()
    ]
    lines += [
        "## Likelihood and cloze metrics",
        "",
        "MCQ: multiple-choice accuracy by mean token log-likelihood; P(a): answer probability "
        "exp(mean token log-prob); ln R: mean log truth ratio (0 = cannot tell the answer from "
        "wrong options; the answer itself stands in for a paraphrased answer); truth score: "
        "mean max(0, 1 − R); cloze: accuracy on the fact as a sentence with the answer blanked.",
        "",
        *_table(header, rows),
        "",
    ]
    cells = [(s, m) for s in ("forget", "retain") for m in MODALITIES]
    header = ["method"] + [f"{s} {m} {k}" for s, m in cells for k in ("MCQ", "P(a)")]
    rows = [
        [name]
        + [
            _metric_cell(results, metric, "summary", s, "by_modality", m, key)
            for s, m in cells
            for metric, key in (("mcq", "mcq_acc"), ("probability", "answer_prob"))
        ]
        for name, results in metrics.items()
    ]
    lines += ["## Likelihood by modality (image+text vs text-only)", "", *_table(header, rows), ""]

    groups = list(
        dict.fromkeys(g for r in metrics.values() for g in _get(r, "utility", "groups") or {})
    )
    if groups:
        header = ["method"] + [f"{g} {k}" for g in groups for k in ("ROUGE-L", "MCQ")]
        rows = [
            [name]
            + [
                _metric_cell(results, "utility", "groups", g, key)
                for g in groups
                for key in ("rouge_l", "mcq_acc")
            ]
            for name, results in metrics.items()
        ]
        lines += [
            "## Utility: retain, general knowledge, neighbours",
            "",
            *_table(header, rows),
            "",
        ]

    header = ["method"] + [f"AUC {a}" for a in ATTACKS] + [f"PrivLeak {a}" for a in ATTACKS]
    header += ["forget quality (KS p)"]
    rows = [
        [name]
        + [_metric_cell(results, "mia", "auc", a) for a in ATTACKS]
        + [_metric_cell(results, "privleak", "privleak", a) for a in ATTACKS]
        + [_metric_cell(results, "forget_quality", "p_value")]
        for name, results in metrics.items()
    ]
    lines += [
        "## Membership inference (forget vs holdout) and forget quality",
        "",
        "AUC 1 = forget told apart from never-seen holdout; the oracle's AUC is the target. "
        "PrivLeak = (AUC − AUC_oracle) / AUC_oracle, 0 is best. Forget quality: KS-test "
        "p-value of forget truth ratios vs the oracle's, higher is better.",
        "",
        *_table(header, rows),
        "",
    ]

    header = ["method"]
    header += [f"{m} AUC {a}" for m in MODALITIES for a in MODALITY_ATTACKS]
    header += [f"{m} forget quality" for m in MODALITIES]
    rows = [
        [name]
        + [
            _metric_cell(results, "mia", "by_modality", m, a)
            for m in MODALITIES
            for a in MODALITY_ATTACKS
        ]
        + [_metric_cell(results, "forget_quality", "by_modality", m, "p_value") for m in MODALITIES]
        for name, results in metrics.items()
    ]
    lines += [
        "## Membership and forget quality by modality (image+text vs text-only)",
        "",
        *_table(header, rows),
        "",
    ]

    labels = {}
    for results in metrics.values():
        for probe, node in (_get(results, "robustness", "probes") or {}).items():
            labels.setdefault(probe, node.get("probe", probe))
    if labels:
        header = ["method"] + [f"{labels[p]}" for p in labels]
        rows = [
            [name] + [_robustness_cell(_get(results, "robustness", "probes", p)) for p in labels]
            for name, results in metrics.items()
        ]
        lines += [
            "## Robustness: forget ROUGE-L without → with each attack (recovered)",
            "",
            "The linear probe's score is fact accuracy. With an oracle, an attack recovers when "
            "its recovery exceeds the oracle's under the same attack by the threshold.",
            "",
            *_table(header, rows),
            "",
        ]
        for name, results in metrics.items():
            probes = _get(results, "robustness", "probes") or {}
            measured = {p: n for p, n in probes.items() if "missing" not in n}
            if not measured:
                continue
            threshold = results["robustness"]["threshold"]
            found = [n for n in measured.values() if n["recovers"]]
            said = ", ".join(
                f"{n['probe']} ({_signed(n['recovered'])}"
                + (
                    f", {_signed(n['above_oracle'])} above the oracle's"
                    if "above_oracle" in n
                    else ""
                )
                + f": {n['baseline']:.3f} → {n['attacked']:.3f})"
                for n in sorted(found, key=lambda n: -n.get("above_oracle", n["recovered"]))
            )
            relearned = _get(measured, "probe_relearn", "relearned_half")
            lines.append(
                f"- {name}: "
                + (f"recovered by {said}" if found else "no attack recovers")
                + f" (threshold +{threshold:.2f} ROUGE-L)"
                + (
                    f"; the relearned half itself reaches {relearned:.3f}"
                    if relearned is not None
                    else ""
                )
            )
        lines.append("")

    lines += _render_fluency(metrics)

    notes = [
        f"- {name} {metric}: missing: {result['missing']}"
        for name, results in metrics.items()
        for metric, result in results.items()
        if "missing" in result
    ]
    if notes:
        lines += ["## Missing references", "", *notes, ""]
    return lines


FLUENCY_LIMIT = 1.1  # perplexity above this multiple of the base's: fluency lost


def _render_fluency(metrics: dict[str, dict]) -> list[str]:
    """Perplexity on the held-out text per method, and its ratio to the method named "base"."""
    scores = {
        name: _get(results, "fluency", "summary", "fluency") for name, results in metrics.items()
    }
    if not any(scores.values()):
        return []  # not asked for, or missing everywhere (the notes say why)
    base = (scores.get("base") or {}).get("perplexity")
    rows = []
    for name, score in scores.items():
        if not score:
            rows.append([name, _metric_cell(metrics[name], "fluency"), MISSING, MISSING])
            continue
        ratio = MISSING if base is None else f"{score['perplexity'] / base:.3f}"
        rows.append([name, f"{score['perplexity']:.3f}", f"{score['nll']:.4f}", ratio])
    return [
        "## Fluency",
        "",
        "Perplexity on held-out general text (exp of the mean token NLL, plain text, lower is "
        f"better); × base above {FLUENCY_LIMIT} = fluency lost.",
        "",
        *_table(["method", "perplexity", "NLL", "× base"], rows),
        "",
    ]


def plot_forget_retain(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Scatter of forget ROUGE-L (x) against retain ROUGE-L (y), one point per method.

    Good unlearning moves left (forgets) without moving down (keeps the rest); arrows start at
    "base", and "oracle" (retrained without the forget set) marks the target.
    """
    # A pyplot-free Figure: no backend is switched, so a notebook's inline plots keep working.
    from matplotlib.figure import Figure

    points = {
        name: (summary["forget"]["rouge_l"], summary["retain"]["rouge_l"])
        for name, summary in report["methods"].items()
        if "forget" in summary and "retain" in summary
    }
    markers = {"base": ("s", "black"), "oracle": ("*", "tab:green")}
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, (x, y) in points.items():
        marker, color = markers.get(name, ("o", "tab:blue"))
        ax.scatter(
            x,
            y,
            marker=marker,
            color=color,
            s=120 if marker == "*" else 50,
            zorder=3,
        )
        ax.annotate(name, (x, y), xytext=(5, 5), textcoords="offset points")
        if "base" in points and name not in markers:
            ax.annotate(
                "",
                xy=(x, y),
                xytext=points["base"],
                arrowprops={"arrowstyle": "->", "color": "gray", "alpha": 0.7},
            )
    ax.set(
        xlim=(0, 1.05),
        ylim=(0, 1.05),
        xlabel="forget ROUGE-L",
        ylabel="retain ROUGE-L",
    )
    ax.set_title("Forget vs retain ROUGE-L (lower x, higher y is better)")
    ax.grid(alpha=0.3)

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: dict[str, Any], directory: str | os.PathLike) -> dict[str, Path]:
    """Write report.json, report.md and forget_retain.png into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "report.json",
        "markdown": directory / "report.md",
        "plot": directory / "forget_retain.png",
    }
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["markdown"], render_markdown(report))
    plot_forget_retain(report, paths["plot"])
    return paths


def write_predictions(rows: Iterable[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write per-question rows (from `score_predictions`) as JSON lines."""
    atomic_write_text(path, "".join(json_line(row) for row in rows))


def plot_trajectories(
    trajectories: dict[str, list[dict[str, Any]]], path: str | os.PathLike
) -> None:
    """Forget (solid) and retain (dashed) ROUGE-L against training step, one colour per method."""
    from matplotlib.figure import Figure  # pyplot-free, as in plot_forget_retain

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for i, (name, points) in enumerate(sorted(trajectories.items())):
        if not points:
            continue
        steps = [p["step"] for p in points]
        colour = f"C{i % 10}"
        for split, style in (("forget", "-o"), ("retain", "--")):
            values = [p.get(split, float("nan")) for p in points]
            ax.plot(steps, values, style, color=colour, label=f"{name} {split}")
    ax.set_xlabel("training step")
    ax.set_ylabel("ROUGE-L")
    ax.set_ylim(0, 1.05)
    ax.set_title("Forget (solid) and retain (dashed) ROUGE-L during unlearning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
