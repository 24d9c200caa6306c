"""Figures of the report, each returned as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def budget_plot(stages: Sequence[Mapping]) -> bytes:
    """D(t) (Eq. 10) against the difficulty the schedule actually assigned at each stage."""
    t = [s["t"] for s in stages]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(t, [s["budget"] for s in stages], "o-", label="budget D(t) (Eq. 10)")
    ax.plot(t, [s["scheduled"] for s in stages], "s--", label="scheduled difficulty ΣH")
    ax.set_xlabel("stage t (epoch)")
    ax.set_ylabel("total difficulty")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def input_steps_plot(input_steps: Mapping[str, Sequence[int]], num_steps: Mapping[str, int]) -> bytes:
    """How many steps each question gets as input at each stage: the fraction of its rationale
    moved into the prompt, c_i(t) / n_i, as a box per stage with the mean on top."""
    keys = list(input_steps)
    matrix = np.array([[c / max(num_steps[k], 1) for c in input_steps[k]] for k in keys], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.boxplot([matrix[:, t] for t in range(matrix.shape[1])], positions=range(matrix.shape[1]), widths=0.6,
               showfliers=False)
    ax.plot(range(matrix.shape[1]), matrix.mean(axis=0), "r.-", label="mean")
    ax.set_xlabel("stage t (epoch)")
    ax.set_ylabel("c_i(t) / n_i")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def curves_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], ylabel: str,
                xlabel: str = "optimizer step") -> bytes:
    """One line per run (e.g. training loss or dev accuracy against step)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, marker="." if len(x) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return _png(fig)


def class_weight_plot(mean_by_class: Mapping[str, float]) -> bytes:
    """Mean token weight per token class (digits, operators, words, ...)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    names = list(mean_by_class)
    ax.bar(names, [mean_by_class[n] for n in names], color="#c0392b")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean weight w_j")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def sensitivity_plot(param: str, points: Sequence[tuple[float, float, float]]) -> bytes:
    """Accuracy against one hyper-parameter: points are (value, test accuracy, OOD accuracy)."""
    points = sorted(points)
    fig, ax = plt.subplots(figsize=(4.2, 3))
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label="test")
    ax.plot([p[0] for p in points], [p[2] for p in points], "s--", label="OOD test")
    ax.set_xlabel(param)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
