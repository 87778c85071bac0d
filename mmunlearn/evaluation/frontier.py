"""The forget/retain frontier of a sweep: which points no other point beats, and its plot.

A point is a setting's scores (`forget`, `retain`, `neighbor`, ... ROUGE-L). Lower forget is
better (more forgotten), higher retain or neighbour is better (more kept).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from mmunlearn.io import atomic_write_bytes

Point = Mapping[str, Any]


def pareto_front(points: Sequence[Point], kept: str = "retain") -> list[int]:
    """Indices of the points no other point dominates (forget no higher and `kept` no lower,
    one of them strictly), in order of increasing forget."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            q["forget"] <= p["forget"]
            and q[kept] >= p[kept]
            and (q["forget"] < p["forget"] or q[kept] > p[kept])
            for q in points
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i]["forget"], -points[i][kept]))


def plot_frontier(
    points: Sequence[Point],
    references: Mapping[str, Point],
    best: Mapping[str, int],
    path: str | os.PathLike,
    kept: Sequence[str] = ("retain", "neighbor"),
    title: str = "",
) -> None:
    """One panel per score in `kept`: forget (y) against it (x), every point coloured by its
    `method`, the frontier over all points as a line, each method's `best[method]` (an index
    into `points`) ringed, and `references` (base, oracle) marked. Written atomically as PNG."""
    # A pyplot-free Figure, as in `report.plot_forget_retain`: no backend is switched, so a
    # notebook's inline plots keep working after a sweep.
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    methods = sorted({p["method"] for p in points})
    colours = {m: colormaps["tab10"](i % 10) for i, m in enumerate(methods)}
    markers = {"base": ("s", "black"), "oracle": ("*", "tab:green")}
    fig = Figure(figsize=(5.5 * len(kept), 5))
    axes = fig.subplots(1, len(kept), squeeze=False)
    for ax, score in zip(axes[0], kept, strict=True):
        usable = [p for p in points if score in p]
        for method in methods:
            mine = [p for p in usable if p["method"] == method]
            ax.scatter(
                [p[score] for p in mine],
                [p["forget"] for p in mine],
                color=colours[method],
                label=method,
                s=30,
                alpha=0.8,
                zorder=3,
            )
        for method, index in best.items():
            if score in points[index]:
                ax.scatter(
                    points[index][score],
                    points[index]["forget"],
                    s=160,
                    facecolors="none",
                    edgecolors=colours[method],
                    linewidths=2,
                    zorder=4,
                )
        front = [usable[i] for i in pareto_front(usable, score)]
        ax.plot(
            [p[score] for p in front],
            [p["forget"] for p in front],
            color="gray",
            linestyle="--",
            linewidth=1,
            label="frontier",
            zorder=2,
        )
        for name, ref in references.items():
            if score in ref:
                marker, colour = markers.get(name, ("D", "tab:red"))
                ax.scatter(
                    ref[score],
                    ref["forget"],
                    marker=marker,
                    color=colour,
                    s=140 if marker == "*" else 60,
                    zorder=5,
                    label=name,
                )
        low = min(
            [p[score] for p in usable] + [r[score] for r in references.values() if score in r]
        )
        ax.set(
            xlim=(max(-0.02, low - 0.05), 1.02),
            ylim=(-0.02, 1.05),
            xlabel=f"{score} ROUGE-L (higher: kept)",
            ylabel="forget ROUGE-L (lower: forgotten)",
        )
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title or "Sweep: forget against what is kept (ringed: each method's best)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
