"""`kpod teach` as a real process: killed with SIGKILL mid-run and resumed, failed records retried on the
next run, and the record store's guarantees (last record wins, torn lines, one writer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from kpod.errors import KpodError
from kpod.teacher.records import RecordStore, latest_records, read_records, summarize
from test_teacher_faults import FaultServer

ENV = {**os.environ, "KPOD_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


def write_dataset(path, questions: list[str]) -> None:
    with open(path, "w") as handle:
        for i, text in enumerate(questions):
            handle.write(json.dumps({"id": f"q{i}", "question": text, "answer": str(i + 2)}) + "\n")


def teach_command(url: str, data, out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kpod.cli", "teach", "--dataset", str(data), "--split", "train",
            "--endpoint", url, "--model", "fake", "--out", str(out), "--concurrency", "4",
            "--request-timeout", "5", "--backoff", "0.01", *extra]


def ok_lines(path) -> Counter:
    counts: Counter = Counter()
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        counts[(record["id"], record["sample"])] += record["status"] == "ok"
    return counts


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_keeps_every_id_once(tmp_path):
    n = 120
    data, out = tmp_path / "data.jsonl", tmp_path / "rationales.jsonl"
    write_dataset(data, [f"What is {i} + 2?" for i in range(n)])
    with FaultServer(delay=0.02) as server:
        proc = subprocess.Popen(teach_command(server.url, data, out), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written = out.read_text().count("\n")
        assert 20 <= written < n, "the run must be killed mid-way"
        finished = subprocess.run(teach_command(server.url, data, out), env=ENV, capture_output=True, text=True,
                                  timeout=120)
        assert finished.returncode == 0, finished.stderr
        stage_one_requests = sum(len(times) for (_, stage), times in server.seen.items() if stage == 1)
    counts = ok_lines(out)
    assert set(counts) == {(f"q{i}", 0) for i in range(n)}
    assert set(counts.values()) == {1}  # every id exactly once "ok"
    # only what was in flight at the kill (at most --concurrency) is asked for twice
    assert n <= stage_one_requests <= n + 4
    records = read_records(out)
    assert all(r["status"] == "ok" and r["correct"] for r in records.values())
    assert "120 of 120 records" in finished.stdout and "correct: 120/120" in finished.stdout
    summary = json.loads((tmp_path / "rationales.summary.json").read_text())
    assert (summary["ok"], summary["already_done"], summary["generated_now"]) == (n, written, n - written)


def test_failed_records_are_kept_and_retried_on_the_next_run(tmp_path):
    data, out = tmp_path / "data.jsonl", tmp_path / "r.jsonl"
    # q1 fails its first 3 stage-1 requests; one at a time with one retry, q1#0 fails (requests 1-2),
    # q1#1 succeeds (3 fails, 4 answers) and the rerun retries q1#0 (request 5 answers)
    write_dataset(data, ["What is 0 + 2?", "What is 1 + 2? [500:3]", "What is 2 + 2?"])
    with FaultServer() as server:
        first = subprocess.run(teach_command(server.url, data, out, "--max-retries", "1", "--samples", "2",
                                             "--temperature", "0.7", "--concurrency", "1"),
                               env=ENV, capture_output=True, text=True, timeout=120)
        assert first.returncode == 1 and "rerun" in first.stderr
        assert "failures by reason: server_error 1" in first.stdout
        after_first = read_records(out)
        assert [key for key, r in after_first.items() if r["status"] == "failed"] == [("q1", 0)]
        second = subprocess.run(teach_command(server.url, data, out, "--max-retries", "1", "--samples", "2",
                                              "--temperature", "0.7", "--concurrency", "1"),
                                env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7  # 6 keys, and q1#0 twice: failed, then ok
    assert [r["status"] for r in lines if (r["id"], r["sample"]) == ("q1", 0)] == ["failed", "ok"]
    assert set(ok_lines(out).values()) == {1}
    assert all(r["status"] == "ok" for r in read_records(out).values())


def test_last_record_wins_and_summary_counts():
    records = [{"id": "a", "sample": 0, "status": "failed", "reason": "timeout", "usage": {"total_tokens": 0}},
               {"id": "b", "sample": 0, "status": "ok", "reason": None, "correct": True,
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
               {"id": "a", "sample": 0, "status": "ok", "reason": "no_answer", "correct": False,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
               {"id": "a", "sample": 1, "status": "failed", "reason": "rate_limited"}]
    latest = latest_records(records)
    assert list(latest) == [("a", 0), ("b", 0), ("a", 1)]
    assert latest[("a", 0)]["status"] == "ok"
    summary = summarize(latest.values())
    assert summary == {"records": 3, "ok": 2, "failed": 1, "correct": 1, "correct_rate": 0.5, "no_answer": 1,
                       "failures_by_reason": {"rate_limited": 1}, "prompt_tokens": 4, "completion_tokens": 5,
                       "total_tokens": 9}


def test_torn_last_line_is_skipped_and_terminated(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "a", "sample": 0, "status": "ok"}) + "\n" + '{"id": "b", "sam')
    with RecordStore(path) as store:
        assert list(store.latest()) == [("a", 0)]
        store.append({"id": "b", "sample": 0, "status": "ok"})
    assert list(read_records(path)) == [("a", 0), ("b", 0)]
    assert path.read_text().splitlines()[-1] == '{"id": "b", "sample": 0, "status": "ok"}'


def test_a_second_writer_is_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    with RecordStore(path):
        with pytest.raises(KpodError, match="another process"):
            RecordStore(path).__enter__()
    with RecordStore(path) as store:  # released on exit
        store.append({"id": "a", "sample": 0, "status": "ok"})
