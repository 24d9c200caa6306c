"""The paper's sensitivity study (its Figures 3 and 4) on the testbed: KPOD's accuracy against
alpha, beta, p, K and C0, one seed per point, each axis varied alone around the defaults.

    python benchmarks/sensitivity.py [--out runs/sensitivity] [--section.key value ...]

Each axis is one `kpod run --grid` in a shared run directory (so the base student, weights and
unchanged schedules are reused); the report of each holds the plot. Writes
benchmarks/results/sensitivity.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kpod.config import load_config
from kpod.io import write_json
from kpod.pipeline.config import RunConfig
from kpod.pipeline.run import run

RESULTS = Path(__file__).parent / "results"
AXES = {
    "weigh.alpha": "0.1,0.5,1.0,2.0",
    "schedule.beta": "0,4,12,24",
    "schedule.p": "0.25,0.5,1.0,2.0",
    "schedule.clusters": "1,3,5,10",
    "schedule.c0": "0.1,0.3,0.5,0.7",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/sensitivity")
    parser.add_argument("--axes", nargs="+", default=list(AXES), choices=list(AXES))
    args, overrides = parser.parse_known_args()
    cfg = load_config(RunConfig, None, overrides)
    cfg.methods, cfg.seeds = ["kpod"], [0]
    results, start = {}, time.time()
    for axis in args.axes:
        cfg.name = f"sensitivity-{axis}"
        metrics = run(cfg, Path(args.out) / axis, [f"{axis}={AXES[axis]}"])
        results[axis] = {label: {"accuracy": m.get("accuracy"), "accuracy_ood": m.get("accuracy_ood")}
                         for label, m in metrics.items() if isinstance(m, dict) and "sets" in m}
        print(axis, results[axis])
    write_json(RESULTS / "sensitivity.json", {"wall_seconds": round(time.time() - start, 1), "axes": results})


if __name__ == "__main__":
    main()
