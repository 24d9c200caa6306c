"""The teacher's record store: one JSON line per (example id, sample index), append-only.

Every finished record is written and flushed at once, so a process killed at any moment keeps every
record it finished (a torn last line is skipped on reading and terminated before the next append);
the file is also fsynced at least once a second and on close. For a key the last record wins. A
rerun skips keys whose last record is "ok" and retries the others, so no key ever gets a second "ok"
record; an exclusive lock keeps two runs from writing the same file at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from kpod.data.answers import answers_match
from kpod.data.example import Example
from kpod.errors import KpodError
from kpod.io import AppendOnlyJsonl
from kpod.teacher.prompts import answer_prompt, clean_rationale, parse_answer

Key = tuple[str, int]

OK, FAILED = "ok", "failed"


def record_key(record: dict) -> Key:
    return str(record["id"]), int(record.get("sample", 0))


def latest_records(records: Iterable[dict]) -> dict[Key, dict]:
    """The last record of every (id, sample) key, in first-seen key order."""
    latest: dict[Key, dict] = {}
    for record in records:
        if "id" in record:
            latest[record_key(record)] = record
    return latest


def read_records(path: str | os.PathLike) -> dict[Key, dict]:
    """The last record of every key in a records file (empty when the file does not exist)."""
    return latest_records(AppendOnlyJsonl(path).records())


class RecordStore:
    """Appends records to `path` under an exclusive lock; use as a context manager."""

    def __init__(self, path: str | os.PathLike, *, fsync_interval: float = 1.0):
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self._handle = None
        self._lock = None
        self._last_sync = 0.0

    def __enter__(self) -> RecordStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path.with_name(self.path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise KpodError(f"{self.path} is being written by another process") from None
        self._handle = open(self.path, "a+b")
        if self._handle.tell() > 0:
            self._handle.seek(-1, os.SEEK_END)
            if self._handle.read(1) != b"\n":  # torn line of a killed writer
                self._handle.write(b"\n")
                self._handle.flush()
        self._last_sync = time.monotonic()
        return self

    def latest(self) -> dict[Key, dict]:
        return read_records(self.path)

    def append(self, record: dict) -> None:
        self._handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self._handle.flush()
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            os.fsync(self._handle.fileno())
            self._last_sync = time.monotonic()

    def __exit__(self, *exc) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def finished_record(example: Example, sample: int, prompt: str, responses: list[str], usage: dict, latency: float, *,
                    status: str = OK, reason: str | None = None, error: str | None = None, attempts: int = 1) -> dict:
    """The record of one (example, sample). For an "ok" one the rationale and answer are parsed from
    the two stage responses; a response with no extractable answer stays "ok" with reason "no_answer"."""
    rationale = answer = None
    correct = False
    if status == OK:
        rationale = clean_rationale(responses[0])
        answer = parse_answer(responses[1], choices=bool(example.choices))
        correct = answers_match(answer, example.answer)
        reason = None if answer is not None else "no_answer"
    return {
        "id": example.id, "sample": sample, "status": status, "reason": reason,
        "rationale": rationale, "answer": answer, "correct": correct, "gold": example.answer,
        "question": example.question, "choices": example.choices,
        "prompt": prompt, "answer_prompt": answer_prompt(prompt, rationale) if rationale else None,
        "response": responses, "usage": usage, "latency_s": round(latency, 4), "attempts": attempts, "error": error,
    }


def summarize(records: Iterable[dict]) -> dict:
    """Counts over the latest records: ok, correct rate among ok, failures by reason, total tokens."""
    records = list(records)
    ok = [r for r in records if r.get("status") == OK]
    failures = Counter(r.get("reason") or "unknown" for r in records if r.get("status") != OK)
    tokens = Counter()
    for r in records:
        tokens.update({k: int(v) for k, v in (r.get("usage") or {}).items() if isinstance(v, (int, float))})
    correct = sum(bool(r.get("correct")) for r in ok)
    return {
        "records": len(records), "ok": len(ok), "failed": len(records) - len(ok),
        "correct": correct, "correct_rate": correct / len(ok) if ok else 0.0,
        "no_answer": sum(r.get("reason") == "no_answer" for r in ok),
        "failures_by_reason": dict(sorted(failures.items())),
        "prompt_tokens": tokens["prompt_tokens"], "completion_tokens": tokens["completion_tokens"],
        "total_tokens": tokens["total_tokens"],
    }
