"""Key-point-driven distillation (KPDD-CoT, KPDD-PoT): `kpod kpdd ACTION [options]`.

    kpod kpdd data  --data testbed/ --out runs/kpdd              # teacher data: OUT/kpdd_data.jsonl (+ stats)
    kpod kpdd train --out runs/kpdd --student base/seq2seq       # OUT/key, OUT/solve-cot, OUT/solve-pot
    kpod kpdd eval  --out runs/kpdd --eval-data testbed/         # OUT/eval/<name>/<mode>/metrics.json
    kpod kpdd run   --data testbed/ --student base/seq2seq --eval-data testbed/   # all three

Several evaluation sets are comma-separated (`--eval-data gsm8k,svamp,asdiv,multiarith --data-dir DIR`).
Teacher data comes from the testbed's key points, GSM8K's calculator annotations, or a teacher model
(`--source teacher --teacher-model NAME [--teacher-endpoint URL | --teacher-backend hf]`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kpod.config import add_config_arguments, config_from_args
from kpod.data.loaders import load_examples
from kpod.errors import ConfigError
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.data import DATA_FILE, build_teacher_data, read_records

ACTIONS = ("data", "train", "eval", "run")


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="data: teacher data; train: the students; eval: chained "
                                                        "inference and error analysis; run: all three")
    add_config_arguments(parser, KpddConfig)


def _limited(examples, limit):
    return examples if limit is None else examples[:limit]


def make_data(cfg: KpddConfig) -> dict:
    if not cfg.data:
        raise ConfigError("kpdd data: --data is required")
    examples = _limited(load_examples(cfg.data, cfg.split, cfg.data_dir), cfg.limit)
    _, stats = build_teacher_data(examples, cfg, cfg.out)
    return stats


def train(cfg: KpddConfig) -> dict[str, str]:
    records = read_records(cfg.out / DATA_FILE)
    from kpod.kpdd.pipeline import train_students  # torch is imported only by the actions that need it

    return train_students(records, cfg, cfg.out)


def _eval_name(dataset: str) -> str:
    return re.sub(r"[^\w.-]+", "_", Path(dataset).name or dataset)


def evaluate(cfg: KpddConfig) -> dict:
    from kpod.kpdd.pipeline import evaluate_students, read_students

    if not cfg.eval_data:
        raise ConfigError("kpdd eval: --eval-data is required")
    students = read_students(cfg.out)
    modes = [m for m in cfg.modes if m in students]
    results = {}
    for dataset in cfg.eval_data:
        examples = _limited(load_examples(dataset, cfg.eval_split, cfg.data_dir), cfg.eval_limit)
        name = f"{_eval_name(dataset)}-{cfg.eval_split}"
        results[name] = evaluate_students(examples, students, modes, cfg, cfg.out / "eval" / name)
    return results


def main(args) -> int:
    cfg = config_from_args(KpddConfig, args)
    if args.action in ("data", "run"):
        print(json.dumps({"data": make_data(cfg)}, indent=2))
    if args.action in ("train", "run"):
        print(json.dumps({"students": train(cfg)}, indent=2))
    if args.action in ("eval", "run") and (cfg.eval_data or args.action == "eval"):
        print(json.dumps({"eval": evaluate(cfg)}, indent=2))
    return 0
