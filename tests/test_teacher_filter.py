"""`kpod teach filter`: correct rationales kept (up to N per question), drops counted per reason, output
readable as a kpod data set."""

from __future__ import annotations

import json

from kpod.cli import main as kpod
from kpod.data.loaders import load_examples
from kpod.teacher.filter import filter_records
from kpod.teacher.records import latest_records


def record(example_id, sample, *, status="ok", answer="5", correct=True, rationale="2 + 3 = 5.", gold="5"):
    return {"id": example_id, "sample": sample, "status": status, "answer": answer if status == "ok" else None,
            "correct": correct and status == "ok", "rationale": rationale if status == "ok" else None,
            "question": f"question {example_id}", "gold": gold, "choices": None,
            "reason": None if status == "ok" else "timeout"}


RECORDS = [
    record("a", 0), record("a", 1, rationale="3 + 2 = 5."), record("a", 2, rationale="5."),
    record("a", 3),  # same text as sample 0
    record("b", 0, correct=False, answer="6"), record("b", 1, answer=None, correct=False),
    record("b", 2, status="failed"),
    record("c", 1, rationale="Count them: 5."), record("c", 0, status="failed"),
]


def test_filter_keeps_up_to_n_correct_distinct_rationales():
    examples, report = filter_records(latest_records(RECORDS), samples=2)
    assert [(ex.id, ex.rationales) for ex in examples] == [
        ("a", ["2 + 3 = 5. Therefore, the answer is 5.", "3 + 2 = 5. Therefore, the answer is 5."]),
        ("c", ["Count them: 5. Therefore, the answer is 5."]),
    ]
    assert report == {"records": 9, "questions": 3, "questions_kept": 2, "rationales_kept": 3,
                      "dropped": {"failed": 2, "no_answer": 1, "wrong_answer": 1, "duplicate": 1, "over_limit": 1}}
    examples, report = filter_records(latest_records(RECORDS), samples=1)
    assert [len(ex.rationales) for ex in examples] == [1, 1]
    assert report["dropped"]["over_limit"] == 2 and report["dropped"]["duplicate"] == 1


def test_filter_command_writes_a_dataset_train_can_read(tmp_path, capsys):
    records = tmp_path / "rationales.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in RECORDS + [record("b", 2)]))  # b#2 retried: ok
    out, report = tmp_path / "train.jsonl", tmp_path / "report.json"
    assert kpod(["teach", "filter", "--records", str(records), "--out", str(out), "--samples", "3",
                 "--report", str(report)]) == 0
    examples = load_examples(str(out))
    assert [(ex.id, ex.answer, len(ex.rationales)) for ex in examples] == [("a", "5", 3), ("b", "5", 1), ("c", "5", 1)]
    assert examples[1].question == "question b"
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report.read_text())
    assert printed["dropped"] == {"failed": 1, "no_answer": 1, "wrong_answer": 1, "duplicate": 1, "over_limit": 0}


def test_filter_rejects_a_file_that_is_not_teacher_records(tmp_path, capsys):
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"id": "a", "sample": 0}) + "\n")
    assert kpod(["teach", "filter", "--records", str(path), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "lacks" in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()
