"""`kpod demo --out DIR`: the embedded default, from nothing.

Synthesizes the testbed, pre-trains the base student on domain text, learns token weights, builds
the progressive schedule, trains plain CoT distillation and KPOD side by side, evaluates both on the
test and out-of-distribution test splits, prints the comparison table and writes DIR/report.html and
DIR/metrics.json. Any setting of `kpod run` can be overridden (`--train.epochs 6`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kpod.config import load_config
from kpod.pipeline.config import RunConfig
from kpod.pipeline.results import format_table
from kpod.pipeline.run import run
from kpod.pipeline.stages import computing_environment

ACCEPTS_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")


def main(args: argparse.Namespace) -> int:
    start = time.time()
    cfg = load_config(RunConfig, None, list(args.overrides))
    metrics = run(cfg, Path(args.out))
    minutes = (time.time() - start) / 60
    print()
    print(format_table(metrics))
    environment = computing_environment()
    print(f"\ndemo finished in {minutes:.1f} min; report: {Path(args.out) / 'report.html'}, "
          f"metrics: {Path(args.out) / 'metrics.json'}")
    # the figures are exact on one machine, not across machines (README: "Results on the testbed")
    print(f"computed on {environment['cpu']} with {environment['torch_threads']} torch threads, "
          f"torch {environment['torch']}, transformers {environment['transformers']}")
    return 0
