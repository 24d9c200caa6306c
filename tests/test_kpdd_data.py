"""KPDD teacher data: sources, filtering with kept/dropped counts, the record file."""

from __future__ import annotations

import json

import pytest

from kpod.data.example import Example
from kpod.data.synth import SynthConfig, generate
from kpod.errors import DataError
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.data import (Candidate, build_teacher_data, calculator_candidates, filter_candidates,
                            heuristic_key_points, read_records, teacher_candidates)
from kpod.kpdd.formats import KeyPoints
from kpod.kpdd.sandbox import SandboxLimits

LIMITS = SandboxLimits(timeout=1.0)
KP = KeyPoints("How many?", ["A has 3."])


@pytest.fixture(scope="module")
def testbed():
    return generate(SynthConfig(train_size=40, dev_size=0, test_size=4, ood_size=4, error_rate=0.25, seed=3))


def test_testbed_source_keeps_right_paths_and_counts_wrong_ones(testbed, tmp_path):
    train = testbed["train"]
    records, stats = build_teacher_data(train, KpddConfig(sandbox_timeout=1.0), tmp_path)
    wrong = sum(not ex.meta["teacher_correct"] for ex in train)
    assert stats["source"] == "testbed" and stats["questions"] == len(train)
    assert stats["modes"]["cot"]["dropped"]["wrong_answer"] == wrong > 0
    assert stats["modes"]["cot"]["kept"] == len(train) - wrong
    assert stats["modes"]["pot"]["kept"] == len(train)  # every testbed program is right
    assert read_records(tmp_path / "kpdd_data.jsonl") == records
    assert json.loads((tmp_path / "kpdd_data_stats.json").read_text()) == stats
    cot = next(r for r in records if r.mode == "cot")
    example = next(ex for ex in train if ex.id == cot.example_id)
    assert cot.core_question == example.kpdd["core_question"] and cot.facts == example.kpdd["facts"]
    assert cot.target.endswith(f"Therefore, the answer is {example.answer}.")


def test_calculator_source_turns_annotations_into_programs():
    examples = [
        Example("g1", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
                      "May. How many clips did Natalia sell altogether in April and May?", "72",
                meta={"solution": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = "
                                  "<<48+24=72>>72 clips altogether in April and May.\n#### 72"}),
        Example("g2", "Tom has 5 pens. He buys 3 more. How many pens?", "9",  # the solution's answer is wrong
                rationales=["He has 5+3 = <<5+3=8>>8 pens.\n#### 8"]),
        Example("g3", "No solution here. How many?", "1"),
    ]
    records, stats = filter_candidates(calculator_candidates(examples, ["cot", "pot"]), LIMITS, workers=1)
    assert {(r.example_id, r.mode) for r in records} == {("g1", "cot"), ("g1", "pot")}
    for mode in ("cot", "pot"):
        assert stats[mode]["dropped"]["wrong_answer"] == 1 and stats[mode]["dropped"]["no_solution"] == 1
    by_mode = {r.mode: r for r in records}
    assert by_mode["pot"].target == "step_1 = 48/2\nstep_2 = 48+step_1\nanswer = step_2"
    assert by_mode["cot"].target == ("Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether "
                                     "in April and May. Therefore, the answer is 72.")
    assert by_mode["cot"].core_question.startswith("How many clips did Natalia sell")


def test_heuristic_key_points_split_question_and_facts():
    kp = heuristic_key_points("A pen costs $1.50. Tom buys 4 pens. How much does he pay? He pays cash.")
    assert kp.core_question == "How much does he pay?"
    assert kp.facts == ["A pen costs $1.50.", "Tom buys 4 pens.", "He pays cash."]


def test_filter_counts_every_drop_reason():
    ex = Example("e", "A has 3. How many?", "3")
    candidates = [
        Candidate(ex, "cot", "t", 0, KP, "3 = 3. Therefore, the answer is 3."),
        Candidate(ex, "cot", "t", 1, KP, "3 = 3. Therefore, the answer is 3."),  # duplicate
        Candidate(ex, "cot", "t", 2, KP, "So 3 + 1 = 4. Therefore, the answer is 4."),
        Candidate(ex, "cot", "t", 3, KP, "No number at all."),
        Candidate(ex, "cot", "t", 4, None, "Therefore, the answer is 3."),
        Candidate(ex, "cot", "t", 5, KP, None),
        Candidate(ex, "cot", "t", 6, None, None, failed=True),
        Candidate(ex, "pot", "t", 0, KP, "answer = 1 + 2"),
        Candidate(ex, "pot", "t", 1, KP, "answer = 1 + 1"),
        Candidate(ex, "pot", "t", 2, KP, "answer = 1 / 0"),
        Candidate(ex, "pot", "t", 3, KP, "while True:\n    pass"),
        Candidate(ex, "pot", "t", 4, KP, "import os\nanswer = 3"),
    ]
    records, stats = filter_candidates(candidates, LIMITS, workers=2)
    assert [(r.key, r.mode) for r in records] == [("e#cot0", "cot"), ("e#pot0", "pot")]
    assert stats["cot"]["candidates"] == 7 and stats["cot"]["kept"] == 1
    assert {k: v for k, v in stats["cot"]["dropped"].items() if v} == {
        "duplicate": 1, "wrong_answer": 1, "no_answer": 1, "no_key_points": 1, "no_solution": 1, "request_failed": 1}
    assert {k: v for k, v in stats["pot"]["dropped"].items() if v} == {
        "wrong_answer": 1, "program_error": 2, "program_timeout": 1}
    assert records[0].target == "3 = 3. Therefore, the answer is 3."


def test_teacher_source_uses_the_teacher_client(monkeypatch):
    from kpod.teacher.client import Completion, RequestFailed, TeacherClient

    seen = []

    async def fake_request(self, prompt, *, rationale=None, max_tokens, stop, temperature, seed):
        seen.append((prompt, temperature, seed))
        if len(seen) == 3:
            raise RequestFailed("timeout", "no answer", 1)
        body = ("Program:\nanswer = 2 + 3" if "a Python program" in prompt else
                "Solution: 2 + 3 = 5. Therefore, the answer is 5.")
        return Completion(f" How many marbles?\nFacts:\n1. Ann has 2 marbles.\n2. She gets 3.\n{body}", "stop", 1, 1)

    monkeypatch.setattr(TeacherClient, "request", fake_request)
    ex = Example("m", "Ann has 2 marbles and gets 3 more. How many marbles?", "5")
    cfg = KpddConfig(data="x", source="teacher", teacher_model="fake", paths=2, concurrency=2)
    candidates = teacher_candidates([ex], cfg.modes, cfg)
    assert len(seen) == 4 and {t for _, t, _ in seen} == {0.7} and {s for _, _, s in seen} == {0, 1}
    records, stats = filter_candidates(candidates, LIMITS, workers=1)
    assert sum(s["dropped"]["request_failed"] for s in stats.values()) == 1
    assert all(r.facts == ["Ann has 2 marbles.", "She gets 3."] for r in records)
    assert {r.mode for r in records} == {"cot", "pot"}


def test_read_records_names_the_bad_line_and_field(tmp_path):
    path = tmp_path / "kpdd_data.jsonl"
    good = {"key": "a#cot0", "example_id": "a", "question": "q", "answer": "1", "mode": "cot",
            "core_question": "c", "facts": ["f"], "target": "t", "source": "testbed"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "mode": "sql"}) + "\n")
    with pytest.raises(DataError, match="line 2.*field 'mode'"):
        read_records(path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "target"}) + "\n")
    with pytest.raises(DataError, match="line 1.*field 'target'"):
        read_records(path)


def test_teacher_source_with_a_local_model_samples_one_seed_per_path(monkeypatch):
    import kpod.teacher.hf_backend as hf_backend
    from kpod.teacher.client import Completion

    calls = []

    class FakeGenerator:
        def __init__(self, name, *, batch_size):
            self.name = name

        def complete(self, prompts, *, max_tokens, temperature, top_p, stop, seed):
            calls.append((len(prompts), temperature, seed, tuple(stop)))
            return [Completion(" How many?\nFacts:\n1. Ann has 2.\nProgram:\nanswer = 5", "stop", 1, 1)
                    for _ in prompts]

    monkeypatch.setattr(hf_backend, "LocalGenerator", FakeGenerator)
    examples = [Example(f"m{i}", "Ann has 2 and gets 3. How many?", "5") for i in range(3)]
    cfg = KpddConfig(data="x", source="teacher", teacher_backend="hf", teacher_model="local", paths=4, mode="pot",
                     seed=10)
    records, stats = filter_candidates(teacher_candidates(examples, cfg.modes, cfg), LIMITS, workers=1)
    assert sorted(c[2] for c in calls) == [10, 11, 12, 13] and all(c[0] == 3 and c[1] == 0.7 for c in calls)
    assert stats["pot"]["kept"] == 3 and stats["pot"]["dropped"]["duplicate"] == 9
