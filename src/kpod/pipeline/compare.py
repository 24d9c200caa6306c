"""`kpod compare RUN_DIR...`: one accuracy table over several run directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from kpod.errors import KpodError
from kpod.io import write_json
from kpod.pipeline.results import format_table, merge_metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories written by `kpod run` or `kpod demo`")
    parser.add_argument("--json", dest="json_out", help="also write the merged table as JSON here")


def main(args: argparse.Namespace) -> int:
    missing = [r for r in args.runs if not (Path(r) / "metrics.json").exists()]
    if missing:
        raise KpodError(f"no metrics.json in {', '.join(missing)} (is the run finished?)")
    merged = merge_metrics(args.runs)
    print(format_table(merged))
    if args.json_out:
        write_json(args.json_out, merged)
    return 0
