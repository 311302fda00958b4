"""Sweep tables and plots: Markdown copies of the CSVs, metric-vs-parameter scatter plots, and the
pos_weight x threshold heatmap of a basket sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raydemand.io import atomic_path


def markdown_table(df: pd.DataFrame, digits: int = 4) -> str:
    def cell(v):
        if isinstance(v, float):
            if np.isnan(v):
                return ""
            return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v and abs(v) < 1e-3) else f"{v:.{digits}f}"
        return "" if v is None or v is pd.NA else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")


STYLES = {"finished": dict(marker="o", color="C0"), "stopped": dict(marker="x", color="C3")}


def plot_metric_vs_params(trials: pd.DataFrame, params: list[str], metric: str, path: Path, title: str) -> None:
    """One scatter per swept parameter: the objective of every trial against its value; finished
    trials as dots, trials the scheduler stopped as crosses (the value of their last epoch)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
    for ax, key in zip(axes[0], params):
        x = pd.to_numeric(trials[key], errors="coerce")
        numeric = x.notna().all()
        for status, style in STYLES.items():
            part = trials["status"] == status
            if part.any():
                ax.scatter(x[part] if numeric else trials.loc[part, key].astype(str), trials.loc[part, metric],
                           s=18, label=status, **style)
        if numeric and (x > 0).all() and x.max() / max(x.min(), 1e-12) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def heatmap(table: pd.DataFrame, value: str, path: Path, title: str) -> None:
    """pos_weight (rows) x threshold (columns) of `value`, annotated."""
    plt = _pyplot()
    grid = table.pivot_table(index="pos_weight", columns="threshold", values=value)
    fig, ax = plt.subplots(figsize=(1.1 * len(grid.columns) + 2, 0.45 * len(grid.index) + 1.6))
    im = ax.imshow(grid.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [f"{t:g}" for t in grid.columns])
    ax.set_yticks(range(len(grid.index)), [f"{p:g}" for p in grid.index])
    ax.set_xlabel("threshold")
    ax.set_ylabel("pos_weight")
    values = grid.to_numpy()
    low, high = np.nanmin(values), np.nanmax(values)
    for (i, j), v in np.ndenumerate(values):
        light = high > low and (v - low) / (high - low) > 0.6  # viridis turns yellow at the top
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7, color="black" if light else "white",
                fontweight="bold" if v == high else "normal")
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
