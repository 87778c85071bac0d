"""The evaluation report: one summary per method, written as JSON, markdown and a plot."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mmunlearn.data.example import MODALITIES
from mmunlearn.io import atomic_write_json, atomic_write_text

# The splits every report shows, in this order (also what `evaluate` scores by default).
SPLITS = ("forget", "test", "retain", "neighbor", "general", "holdout")
MINUS = "\u2212"
MISSING = "\u2013"  # en dash


def build_report(methods: dict[str, dict], meta: dict) -> dict[str, Any]:
    """`methods[name]` is a `summarise()` output (split -> metrics); `meta` is free-form."""
    return {"methods": methods, "meta": meta}


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
    return "\n".join(lines)


def plot_forget_retain(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Scatter of forget ROUGE-L (x) against retain ROUGE-L (y), one point per method.

    Good unlearning moves left (forgets) without moving down (keeps the rest); arrows start at
    "base", and "oracle" (retrained without the forget set) marks the target.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {
        name: (summary["forget"]["rouge_l"], summary["retain"]["rouge_l"])
        for name, summary in report["methods"].items()
        if "forget" in summary and "retain" in summary
    }
    markers = {"base": ("s", "black"), "oracle": ("*", "tab:green")}
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
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
    finally:
        plt.close(fig)


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
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def plot_trajectories(
    trajectories: dict[str, list[dict[str, Any]]], path: str | os.PathLike
) -> None:
    """Forget (solid) and retain (dashed) ROUGE-L against training step, one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
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
    plt.close(fig)
    os.replace(tmp, path)
