"""Keep the correct teacher rationales of a `kpod teach` records file, as a data set `kpod train` reads.

    kpod teach filter --records runs/gsm8k/rationales.jsonl --out runs/gsm8k/train.jsonl --samples 3

For every question the "ok" records whose answer matches the gold one are kept in sample order, up to
--samples of them; identical rationales of one question count once. Every other record is counted
under its reason: failed, no_answer, wrong_answer, duplicate, over_limit. The output is kpod's generic
JSONL: the question, its gold answer and the kept rationales, each ending with the KPOD answer
sentence "Therefore, the answer is <gold>."; questions with no rationale left are not written.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kpod.config import add_config_arguments, config_from_args, field_help
from kpod.data.example import Example
from kpod.data.loaders import write_examples
from kpod.data.prompts import answer_sentence
from kpod.errors import ConfigError, DataError
from kpod.io import write_json
from kpod.teacher.records import OK, read_records

REASONS = ("failed", "no_answer", "wrong_answer", "duplicate", "over_limit")


@dataclass
class FilterConfig:
    records: Path = field_help("records file written by `kpod teach`", Path("rationales.jsonl"))
    out: Path = field_help("output data set (generic JSONL)", Path("train.jsonl"))
    samples: int = field_help("most rationales kept per question", 1)
    report: Path | None = field_help("write the kept/dropped counts here as JSON", None)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError("teach filter: --samples must be at least 1")


def drop_reason(record: dict, kept: list[str], samples: int) -> str | None:
    """Why a record's rationale is not kept (None: keep it), given the rationales kept so far."""
    if record.get("status") != OK:
        return "failed"
    if record.get("answer") is None:
        return "no_answer"
    if not record.get("correct"):
        return "wrong_answer"
    if record["rationale"] in kept:
        return "duplicate"
    if len(kept) >= samples:
        return "over_limit"
    return None


def filter_records(latest: dict[tuple[str, int], dict], samples: int) -> tuple[list[Example], dict]:
    """Examples holding the kept rationales, and the counts of kept and dropped records per reason."""
    by_id: dict[str, list[dict]] = {}
    for (example_id, _), record in latest.items():
        by_id.setdefault(example_id, []).append(record)
    dropped: Counter = Counter({reason: 0 for reason in REASONS})
    examples = []
    for example_id, records in by_id.items():
        kept: list[str] = []
        for record in sorted(records, key=lambda r: int(r.get("sample", 0))):
            reason = drop_reason(record, kept, samples)
            if reason:
                dropped[reason] += 1
            else:
                kept.append(record["rationale"])
        if kept:
            first = records[0]
            examples.append(Example(
                id=example_id, question=first["question"], answer=str(first["gold"]), choices=first.get("choices"),
                rationales=[f"{text.rstrip()} {answer_sentence(str(first['gold']))}" for text in kept]))
    report = {"records": len(latest), "questions": len(by_id), "questions_kept": len(examples),
              "rationales_kept": sum(len(ex.rationales) for ex in examples), "dropped": dict(dropped)}
    return examples, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, FilterConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(FilterConfig, args)
    if not cfg.records.exists():
        raise DataError("records file not found", path=cfg.records)
    latest = read_records(cfg.records)
    for record in latest.values():
        for field in ("question", "gold", "status"):
            if field not in record:
                raise DataError(f"record of id '{record['id']}' lacks '{field}'; is this a `kpod teach` file?",
                                path=cfg.records, field=field)
    examples, report = filter_records(latest, cfg.samples)
    write_examples(cfg.out, examples)
    if cfg.report is not None:
        write_json(cfg.report, report)
    print(json.dumps(report, indent=2))
    return 0
