"""The paper's sensitivity study (its Figures 3 and 4) on the testbed: KPOD's accuracy against
alpha, beta, p, K and C0, one seed per point, each axis varied alone around the defaults.

    python benchmarks/sensitivity.py [--out runs/sensitivity] [--from-run runs/demo] [--section.key value ...]

Each axis is one `kpod run --grid` in OUT/<axis>; all axes share one stage store (OUT/stages), so the
data, base student, weights and the default point are built once. `--from-run` first copies the
finished stages of another run (e.g. the demo's), which stage keys allow because they do not depend on
where a run lives. The report of each axis (OUT/<axis>/report.html) holds its plot. Writes
benchmarks/results/sensitivity.json and sensitivity.png (every axis measured so far).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from kpod.config import load_config
from kpod.io import write_json
from kpod.pipeline.config import RunConfig
from kpod.pipeline.run import run
from kpod.report.build import grid_value

RESULTS = Path(__file__).parent / "results"
AXES = {  # the paper's value and one on each side
    "weigh.alpha": "0.1,0.5,2.0",
    "schedule.beta": "0,12,24",
    "schedule.p": "0.25,0.5,2.0",
    "schedule.clusters": "1,5,10",
    "schedule.c0": "0.1,0.3,0.7",
}


def share_stages(out: Path, axes: list[str], from_run: Path | None) -> None:
    """OUT/<axis>/stages all point at OUT/stages; finished stages of `from_run` are copied in."""
    store = out / "stages"
    store.mkdir(parents=True, exist_ok=True)
    if from_run is not None:
        for stage in sorted((from_run / "stages").iterdir()):
            if (stage / ".done").exists() and not (store / stage.name).exists():
                shutil.copytree(stage, store / stage.name)
    for axis in axes:
        link = out / axis / "stages"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(store.resolve(), target_is_directory=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/sensitivity")
    parser.add_argument("--axes", nargs="+", default=list(AXES), choices=list(AXES))
    parser.add_argument("--from-run", type=Path, help="reuse the finished stages of this run directory")
    args, overrides = parser.parse_known_args()
    cfg = load_config(RunConfig, None, overrides)
    cfg.methods, cfg.seeds = ["kpod"], [0]
    share_stages(Path(args.out), args.axes, args.from_run)
    for axis in args.axes:
        cfg.name, start = f"sensitivity-{axis}", time.time()
        metrics = run(cfg, Path(args.out) / axis, [f"{axis}={AXES[axis]}"])
        points = {label: {"accuracy": m.get("accuracy"), "accuracy_ood": m.get("accuracy_ood")}
                  for label, m in metrics.items() if isinstance(m, dict) and "sets" in m}
        print(axis, points)
        write_results(axis, points, round(time.time() - start, 1))


def write_results(axis: str, points: dict, wall_seconds: float) -> None:
    """Add one axis to benchmarks/results/sensitivity.json, keeping the axes measured before (axes may
    run in separate processes)."""
    path = RESULTS / "sensitivity.json"
    report = json.loads(path.read_text()) if path.exists() else {"axes": {}, "wall_seconds": {}}
    report["axes"][axis] = points
    report["wall_seconds"][axis] = wall_seconds
    write_json(path, report)
    plot_results(report["axes"], RESULTS / "sensitivity.png")


def plot_results(axes: dict, out: Path) -> None:
    """One panel per axis: test and OOD accuracy against the axis value (Figures 3 and 4 of the paper)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, len(axes), figsize=(3.2 * len(axes), 2.8), squeeze=False)
    for panel, (axis, points) in zip(panels[0], axes.items()):
        rows = sorted((grid_value(label, axis), m["accuracy"], m["accuracy_ood"]) for label, m in points.items())
        panel.plot([r[0] for r in rows], [100 * r[1] for r in rows], "o-", label="test")
        panel.plot([r[0] for r in rows], [100 * r[2] for r in rows], "s--", label="OOD test")
        panel.set_xlabel(axis)
        panel.grid(alpha=0.3)
    panels[0][0].set_ylabel("accuracy (%)")
    panels[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
