"""Generate teacher rationales by zero-shot CoT (KPOD Sec. 3.1) from an OpenAI-compatible endpoint or a
local Hugging Face model.

    kpod teach --dataset gsm8k --split train --endpoint http://127.0.0.1:8000/v1 --model NAME \\
        --out runs/gsm8k/rationales.jsonl --samples 1 --concurrency 32

Each (example, sample) takes two requests, "Q: <question>\\nA: Let's think step by step." for the
rationale, then the rationale followed by "Therefore, the answer is" for the answer. Records are
appended to --out as they finish; rerunning the same command skips the (id, sample) keys already
"ok" and retries the failed ones. The exit status is 1 while failed records remain.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

from kpod.config import add_config_arguments, config_from_args
from kpod.data.example import Example
from kpod.data.loaders import load_examples
from kpod.errors import ConfigError, DataError
from kpod.io import write_json
from kpod.progress import progress
from kpod.teacher.config import TeachConfig
from kpod.teacher.records import OK, Key, RecordStore, record_key, summarize


def pending_jobs(examples: list[Example], samples: int, done: set[Key]) -> list[tuple[Example, int]]:
    """Every (example, sample index) whose key has no "ok" record yet, in data set order."""
    return [(ex, s) for ex in examples for s in range(samples) if (ex.id, s) not in done]


class LiveStats:
    """Request and token rates shown beside the progress bar."""

    def __init__(self, bar):
        self.bar, self.start = bar, time.perf_counter()
        self.requests = self.tokens = self.failed = 0
        self.last_shown = 0.0

    def add(self, record: dict) -> None:
        self.requests += int(record.get("attempts") or 0)
        self.tokens += int((record.get("usage") or {}).get("total_tokens") or 0)
        self.failed += record["status"] != OK
        self.bar.update(1)
        if time.perf_counter() - self.last_shown >= 0.5:
            self.show()

    def show(self) -> None:
        self.last_shown = time.perf_counter()
        elapsed = max(self.last_shown - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.requests / elapsed:.1f} req/s, {self.tokens / elapsed:.0f} tok/s, "
                                 f"{self.failed} failed", refresh=False)


def load_teach_examples(cfg: TeachConfig) -> list[Example]:
    examples = load_examples(cfg.dataset, cfg.split, cfg.data_dir)
    if cfg.limit is not None:
        examples = examples[: cfg.limit]
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise DataError(f"example id '{ex.id}' appears twice; records are keyed by id", path=cfg.dataset,
                            field="id")
        seen.add(ex.id)
    return examples


def backend(name: str) -> Callable[[TeachConfig, list, Callable[[dict], None]], None]:
    """The function that runs jobs on backend `name` (imported here, before the progress bar starts)."""
    if name == "hf":
        from kpod.teacher.hf_backend import teach_local

        return teach_local
    from kpod.teacher.client import teach_endpoint

    return lambda cfg, jobs, on_record: asyncio.run(teach_endpoint(cfg, jobs, on_record))


def run_teach(cfg: TeachConfig) -> dict:
    """Generate the missing records of `cfg` and return the summary of all of them."""
    examples = load_teach_examples(cfg)
    if cfg.samples > 1 and cfg.temperature == 0:
        print("kpod teach: warning: several samples at temperature 0 are near copies; set --temperature",
              file=sys.stderr)
    run_backend = backend(cfg.backend)
    with RecordStore(cfg.out) as store:
        latest = store.latest()
        done = {key for key, record in latest.items() if record.get("status") == OK}
        jobs = pending_jobs(examples, cfg.samples, done)
        bar = progress(total=len(jobs), desc="teach", unit="rec")
        stats = LiveStats(bar)

        def on_record(record: dict) -> None:
            store.append(record)
            latest[record_key(record)] = record
            stats.add(record)

        try:
            if jobs:
                run_backend(cfg, jobs, on_record)
        finally:
            stats.show()
            bar.close()
    wanted = [(ex.id, s) for ex in examples for s in range(cfg.samples)]
    summary = summarize(latest[key] for key in wanted if key in latest)
    summary.update(requested=len(wanted), generated_now=len(jobs), already_done=len(wanted) - len(jobs),
                   seconds=round(time.perf_counter() - stats.start, 3), requests_now=stats.requests)
    write_json(cfg.out.with_name(cfg.out.stem + ".summary.json"), summary)
    return summary


def format_summary(summary: dict) -> str:
    failures = ", ".join(f"{k} {v}" for k, v in summary["failures_by_reason"].items()) or "none"
    return (f"{summary['records']} of {summary['requested']} records ({summary['generated_now']} now, "
            f"{summary['already_done']} from earlier runs): {summary['ok']} ok, {summary['failed']} failed\n"
            f"correct: {summary['correct']}/{summary['ok']} ({summary['correct_rate']:.1%}), "
            f"no answer found: {summary['no_answer']}\n"
            f"failures by reason: {failures}\n"
            f"tokens: {summary['total_tokens']} ({summary['prompt_tokens']} prompt, "
            f"{summary['completion_tokens']} completion)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, TeachConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(TeachConfig, args)
    if not cfg.dataset:
        raise ConfigError("teach: --dataset is required")
    summary = run_teach(cfg)
    print(format_summary(summary))
    if summary["failed"]:
        print(f"kpod teach: {summary['failed']} records failed; rerun the same command to retry them", file=sys.stderr)
    return 1 if summary["failed"] or summary["records"] < summary["requested"] else 0
