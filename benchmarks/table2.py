"""The paper's Table 2 on the testbed: plain CoT distillation, KPOD and every ablation, over seeds.

    python benchmarks/table2.py --seeds 0 1 2 [--out runs/table2] [--section.key value ...]

All methods share the run directory, so the data, base student, token weights and schedules are
built once; each (method, seed) trains its own student. Prints the table and writes
benchmarks/results/table2.json (accuracy on test and OOD test, mean and std over seeds, keypoint AUC,
wall time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kpod.config import load_config
from kpod.io import write_json
from kpod.pipeline.config import RunConfig
from kpod.pipeline.methods import TABLE2
from kpod.pipeline.results import format_table
from kpod.pipeline.run import run
from kpod.pipeline.stages import computing_environment

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=TABLE2)
    parser.add_argument("--out", default="runs/table2")
    parser.add_argument("--name", default="table2", help="results file name (benchmarks/results/NAME.json)")
    args, overrides = parser.parse_known_args()
    cfg = load_config(RunConfig, None, overrides)
    cfg.methods, cfg.seeds, cfg.name = args.methods, args.seeds, args.name
    start = time.time()
    metrics = run(cfg, Path(args.out))
    table = format_table(metrics)
    print(table)
    write_json(RESULTS / f"{args.name}.json", {"command": "python benchmarks/table2.py " + " ".join(
        [f"--seeds {' '.join(map(str, args.seeds))}", f"--methods {' '.join(args.methods)}", f"--name {args.name}",
         *overrides]), "wall_seconds": round(time.time() - start, 1), "environment": computing_environment(),
        "metrics": metrics, "table": table.splitlines()})
    print(json.dumps({k: v.get("accuracy") for k, v in metrics.items() if isinstance(v, dict) and "sets" in v}))


if __name__ == "__main__":
    main()
