"""Gather a run's metrics (mean and spread over seeds) and format the comparison table."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from kpod.io import read_json, write_json


def _accuracy(eval_dir: str) -> float | None:
    path = Path(eval_dir) / "metrics.json"
    return read_json(path)["accuracy"] if path.exists() else None


def keypoint_auc(weights_dir: str | Path, data_file: str | Path) -> float | None:
    """ROC-AUC of learned token weights against the testbed's keypoint labels over every weighed
    rationale's body (`kpod.weighting.scoring`). `kpod weigh` trains on a subset (`max_train`), so
    most of them were not seen in training; benchmarks/weighting.py scores a strictly held-out split."""
    from kpod.data.loaders import load_examples
    from kpod.weighting.scoring import keypoint_scores
    from kpod.weighting.store import read_weights

    weights = read_weights(weights_dir)
    labeled = [(ex.rationales[0], ex.keypoints, weights[ex.id]) for ex in load_examples(str(data_file))
               if ex.keypoints and ex.id in weights]  # keypoint spans index the first rationale
    return keypoint_scores(labeled)["roc_auc"]


def sample_std(values: list[float]) -> float:
    """Standard deviation over seeds with Bessel's correction (0 for a single seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def seed_summary(values: list[float]) -> dict:
    """Mean, sample std and the values themselves, over seeds."""
    return {"mean": float(np.mean(values)), "std": sample_std(values), "per_seed": values}


def collect_results(run_dir: str | Path) -> dict:
    """Write RUN/metrics.json: per label, accuracy on every evaluation set (mean, std, per seed);
    `accuracy` is the first set (the test split) and `accuracy_ood` the second, when there is one."""
    run_dir = Path(run_dir)
    index = read_json(run_dir / "index.json")
    per_label: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[str, list[int]] = defaultdict(list)
    sets: list[str] = []
    for run in index["runs"]:
        seeds[run["label"]].append(run["seed"])
        for name, eval_dir in run["eval"].items():
            sets += [name] if name not in sets else []
            value = _accuracy(eval_dir)
            if value is not None:
                per_label[run["label"]][name].append(value)
    metrics: dict = {"eval_sets": sets}
    for label, by_set in per_label.items():
        entry: dict = {"seeds": seeds[label], "sets": {}}
        for name, values in by_set.items():
            entry["sets"][name] = seed_summary(values)
        for field, name in zip(("accuracy", "accuracy_ood"), sets):
            if name in entry["sets"]:
                entry[field] = entry["sets"][name]["mean"]
                entry[f"{field}_std"] = entry["sets"][name]["std"]
        metrics[label] = entry
    weighed = [r for r in index["runs"] if r.get("weights")]
    if weighed:
        auc = keypoint_auc(weighed[0]["weights"], Path(weighed[0]["data"]) / "train.jsonl")
        if auc is not None:
            metrics["keypoint_auc"] = auc
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def format_table(metrics: dict) -> str:
    """A plain-text table: one row per method, one column per evaluation set (mean ± std)."""
    sets = metrics.get("eval_sets", [])
    labels = [k for k, v in metrics.items() if isinstance(v, dict) and "sets" in v]
    width = max([len(label) for label in labels] + [6])
    lines = ["method".ljust(width) + "  seeds  " + "  ".join(s.rjust(15) for s in sets)]
    for label in labels:
        cells = []
        for name in sets:
            cell = metrics[label]["sets"].get(name)
            cells.append((f"{100 * cell['mean']:.1f} ± {100 * cell['std']:.1f}" if cell else "-").rjust(15))
        lines.append(label.ljust(width) + f"  {len(metrics[label]['seeds']):5d}  " + "  ".join(cells))
    if "keypoint_auc" in metrics:
        lines.append(f"keypoint ROC-AUC of the learned token weights: {metrics['keypoint_auc']:.3f}")
    return "\n".join(lines)


def merge_metrics(run_dirs: list[str | Path]) -> dict:
    """The metrics of several run directories in one table, labels prefixed by the run's name."""
    merged: dict = {"eval_sets": []}
    for run_dir in run_dirs:
        metrics = read_json(Path(run_dir) / "metrics.json")
        for name in metrics.get("eval_sets", []):
            merged["eval_sets"] += [name] if name not in merged["eval_sets"] else []
        for label, entry in metrics.items():
            if isinstance(entry, dict) and "sets" in entry:
                merged[f"{Path(run_dir).name}/{label}"] = entry
    return merged
