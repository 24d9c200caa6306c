"""Split and rationale-matching counts of a data set, as one JSON object.

    kpod data stats --dataset gsm8k --data-dir ../shared/data --json

prints {"dataset", "train", "dev", "test", ...}: the number of examples in each split and, where
rationale files exist (DATA_DIR/rationales/<dataset>_*.json), "rationales_matched",
"rationales_unmatched", "rationales_correct", "rationales_incorrect" summed over the files and
"rationale_files" with each file's report. A generic JSONL file or a directory of <split>.jsonl
files is accepted too; its counts of examples with rationales and of correct rationales come from
the rationales inside the file. Without --json the same numbers are printed as aligned lines.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from kpod.config import add_config_arguments, config_from_args, field_help
from kpod.data.example import Example
from kpod.data.loaders import BUILTIN_SPLITS, load_examples, read_generic, split_counts
from kpod.data.rationales import load_with_rationales, rationale_files, rationale_is_correct
from kpod.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass
class StatsConfig:
    dataset: str = field_help("built-in name (gsm8k, svamp, asdiv, csqa, multiarith), a JSONL file or a directory")
    data_dir: str | None = field_help("directory of the raw benchmark files (default: the Hugging Face hub)", None)
    json: bool = field_help("print one JSON object", False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, StatsConfig)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "dataset", None) is None:
        raise DataError("--dataset is required", field="dataset")
    cfg = config_from_args(StatsConfig, args)
    stats = dataset_stats(cfg.dataset, cfg.data_dir)
    if cfg.json:
        print(json.dumps(stats, ensure_ascii=False))
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key.ljust(width)}  {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")
    return 0


def dataset_stats(dataset: str, data_dir: str | Path | None = None) -> dict:
    """The counts `kpod data stats` prints."""
    name = dataset.lower()
    if name in BUILTIN_SPLITS:
        stats: dict = {"dataset": name}
        counts = split_counts(name, data_dir)
        stats.update({split: counts.get(split, 0) for split in SPLITS})
        files = rationale_files(name, data_dir) if data_dir is not None else []
        if files:
            _, reports = load_with_rationales(name, data_dir, files=files)
            for key in ("matched", "unmatched", "correct", "incorrect"):
                stats[f"rationales_{key}"] = sum(getattr(r, key) for r in reports)
            stats["rationale_files"] = [r.summary() for r in reports]
        return stats
    path = Path(dataset)
    if path.is_dir():
        counts = split_counts(path)
        stats = {"dataset": str(path), **{split: counts.get(split, 0) for split in SPLITS}}
        stats.update({split: n for split, n in counts.items() if split not in SPLITS})
        examples = [ex for split in counts for ex in load_examples(path, split)]
    else:
        examples = read_generic(path) if path.is_file() else load_examples(dataset)
        stats = {"dataset": str(path), "train": len(examples), "dev": 0, "test": 0}
    stats.update(_inline_rationale_counts(examples))
    return stats


def _inline_rationale_counts(examples: list[Example]) -> dict:
    total = sum(len(ex.rationales) for ex in examples)
    correct = sum(rationale_is_correct(text, ex.answer, choices=ex.choices is not None)
                  for ex in examples for text in ex.rationales)
    return {"examples_with_rationales": sum(1 for ex in examples if ex.rationales), "rationales": total,
            "rationales_correct": correct, "rationales_incorrect": total - correct}
