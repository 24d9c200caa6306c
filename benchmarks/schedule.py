"""Scheduling time and certificate ratios of KPOD's progressive schedule (Eq. 9-13).

    OMP_NUM_THREADS=1 python benchmarks/schedule.py [--sizes 10000 100000 1000000] [--quick]

1. Time of a whole schedule (20 selection stages: 40 epochs, T = 20, start = selected, K = 5) for
   n questions with step counts drawn from the real GSM8K rationales' distribution (or 2-8 uniform
   when the file is missing) and gamma(2, 0.5) step difficulties (about 1 nat per step). numpy
   sorting is single-threaded, so this is one core.
2. Certificate ratios g(S) / upper bound per stage on GSM8K-sized instances: the 7442 LLaMA-3-70B
   GSM8K rationales (real step counts from split_steps, real questions clustered by TF-IDF K-means),
   with synthetic step difficulties (no pre-trained student is reachable here), paper settings
   (20 epochs, T = 10, p = 0.5, C0 = 0.3 B, beta = 12 and beta = 0).

Writes benchmarks/results/schedule.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from kpod.curriculum.budget import StepTable
from kpod.curriculum.clustering import cluster_questions, tfidf_embeddings
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.progressive import progressive_schedule
from kpod.data.steps import split_steps
from kpod.io import write_json

REPO = Path(__file__).resolve().parents[1]
RATIONALES = Path(os.environ.get("KPOD_SHARED_DATA", REPO.parent / "shared" / "data")) / "rationales" / "gsm8k_llama3-70b.json"
SOLVERS = ("greedy", "greedy_max", "ftgp")


def gsm8k_rationales() -> tuple[list[str], np.ndarray] | None:
    if not RATIONALES.exists():
        return None
    rows = json.loads(RATIONALES.read_text(encoding="utf-8"))
    return [r["instruction"] for r in rows], np.array([len(split_steps(r["output"]).steps) for r in rows])


def synthetic_table(n: int, step_counts: np.ndarray | None, rng: np.random.Generator) -> StepTable:
    steps = rng.choice(step_counts, n) if step_counts is not None else rng.integers(2, 9, n)
    return StepTable.from_flat([str(i) for i in range(n)], steps, rng.gamma(2.0, 0.5, int(steps.sum())))


def time_schedule(n: int, solver: str, step_counts, repeats: int) -> dict:
    rng = np.random.default_rng(n)
    table = synthetic_table(n, step_counts, rng)
    labels = rng.integers(0, 5, n)
    cfg = ScheduleConfig(epochs=40, T=20, start="selected", selection=solver)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        _, stages = progressive_schedule(table, labels, cfg)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ratios = [s["certificate_ratio"] for s in stages if s["certificate_ratio"] is not None]
    return {"n": n, "solver": solver, "seconds": min(wall), "cpu_seconds": min(cpu),
            "selection_stages": len(ratios), "min_certificate_ratio": min(ratios)}


def certificates(questions, step_counts, selection: str, beta: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    table = StepTable.from_flat([str(i) for i in range(len(step_counts))], step_counts,
                                rng.gamma(2.0, 0.5, int(step_counts.sum())))
    labels = cluster_questions(tfidf_embeddings(questions), 5, seed)
    cfg = ScheduleConfig(epochs=20, selection=selection, beta=beta)
    steps, stages = progressive_schedule(table, labels, cfg)
    ratios = [s["certificate_ratio"] for s in stages if s["certificate_ratio"] is not None]
    before_T = stages[cfg.stages_T - 1]["scheduled"]
    return {"selection": selection, "beta": beta, "seed": seed, "ratios": [round(r, 6) for r in ratios],
            "min_ratio": min(ratios), "mean_ratio": float(np.mean(ratios)),
            "selected_per_stage": [s["selected"] for s in stages[: cfg.stages_T]],
            "scheduled_fraction_before_T": before_T / table.total,
            "budget_fraction_before_T": stages[cfg.stages_T - 1]["budget"] / table.total,
            "mean_input_steps_per_stage": steps.mean(axis=0)[: cfg.stages_T + 1].round(3).tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="one repeat, greedy_max only for timing")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "schedule.json"))
    args = parser.parse_args()
    real = gsm8k_rationales()
    questions, step_counts = real if real else (None, None)
    result = {"command": " ".join([Path(sys.executable).name] + sys.argv), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "step_counts": "GSM8K LLaMA-3-70B rationales (split_steps)" if real else "synthetic uniform 2-8",
              "timing": [], "certificates": []}
    for solver in (("greedy_max",) if args.quick else SOLVERS):
        for n in args.sizes:
            row = time_schedule(n, solver, step_counts, 1 if args.quick or n >= 1_000_000 else 3)
            result["timing"].append(row)
            print(f"time  {solver:10s} n={n:>8d}: {row['seconds']:7.2f} s wall, {row['cpu_seconds']:7.2f} s CPU "
                  f"for {row['selection_stages']} stages "
                  f"(min certificate {row['min_certificate_ratio']:.6f})", flush=True)
    if real:
        result["gsm8k"] = {"rationales": len(step_counts), "mean_steps": float(step_counts.mean()),
                           "step_count_histogram": np.bincount(step_counts).tolist()}
        for selection in SOLVERS:
            for beta in (12.0, 0.0):
                for seed in (0, 1, 2):
                    row = certificates(questions, step_counts, selection, beta, seed)
                    result["certificates"].append(row)
                    print(f"cert  {selection:10s} beta={beta:4.1f} seed={seed}: min {row['min_ratio']:.6f} "
                          f"mean {row['mean_ratio']:.6f}; scheduled before T {row['scheduled_fraction_before_T']:.3f} "
                          f"of B (budget {row['budget_fraction_before_T']:.3f})", flush=True)
    by_solver = {}
    for row in result["timing"]:
        by_solver.setdefault(row["solver"], []).append(row)
    # growth exponent between consecutive sizes: 1 is linear, n log n gives about 1.1 here
    result["growth_exponent"] = {solver: [round(float(np.log(b["cpu_seconds"] / a["cpu_seconds"]) / np.log(b["n"] / a["n"])), 3)
                                          for a, b in zip(rows, rows[1:])] for solver, rows in by_solver.items()}
    print("growth exponents (CPU time):", result["growth_exponent"])
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
