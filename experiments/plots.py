"""Figures of an experiment: metric@k curves and coverage bars, drawn off-screen (Agg) into PNG files.

Figures are built with the object-oriented API (no pyplot): nothing global changes, and the PNGs carry
no software/date metadata, so the same numbers give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CURVE_METRICS = ("ndcg", "recall", "precision", "map", "coverage")


def plot_curves(curves: pd.DataFrame, setting: str, path: Path) -> Path:
    """One panel per metric of ``curves`` (columns setting, model, k, metric, value), one line per model."""
    rows = curves[curves["setting"] == setting]
    metrics = [metric for metric in CURVE_METRICS if metric in set(rows["metric"])]
    figure = Figure(figsize=(4.0 * len(metrics), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    models = list(dict.fromkeys(rows["model"]))
    for axis, metric in zip(axes, metrics, strict=True):
        for model in models:
            line = rows[(rows["model"] == model) & (rows["metric"] == metric)].sort_values("k")
            axis.plot(line["k"], line["value"], marker="o", markersize=2.5, linewidth=1.2, label=model)
        axis.set_title(f"{metric}@k (setting {setting}, test)")
        axis.set_xlabel("k")
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(figure, path)


def plot_coverage(table: pd.DataFrame, metric: str, path: Path) -> Path:
    """Grouped bars of ``metric`` (a column of the comparison table) per model, one group per setting."""
    settings = list(dict.fromkeys(table["setting"]))
    models = list(dict.fromkeys(table["model"]))
    figure = Figure(figsize=(max(5.0, 0.9 * len(models) * len(settings) + 2), 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    width = 0.8 / len(settings)
    for offset, setting in enumerate(settings):
        rows = table[table["setting"] == setting].set_index("model")
        values = [float(rows.loc[model, metric]) if model in rows.index else 0.0 for model in models]
        positions = [i + (offset - (len(settings) - 1) / 2) * width for i in range(len(models))]
        axis.bar(positions, values, width=width, label=f"setting {setting}")
    axis.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel(metric)
    axis.set_title(f"Catalogue {metric} on test")
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
