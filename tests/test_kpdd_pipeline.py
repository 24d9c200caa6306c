"""KPDD students: training sequences, chained inference, error analysis, and an end-to-end run on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpod.data.example import Example
from kpod.data.synth import SynthConfig, generate
from kpod.kpdd import pipeline
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.data import KpddRecord, build_teacher_data
from kpod.kpdd.formats import KeyPoints, key_prompt, solve_prompt
from kpod.kpdd.pipeline import (chained_predict, evaluate_students, key_sequences, kpdd_metrics, solve_sequences,
                                train_students, understanding_error)
from kpod.kpdd.sandbox import SandboxLimits
from kpod.models.loading import LoadedModel

QUESTION = "Tom has 12 apples. He is 9 years old. He buys 30 more. How many apples does Tom have?"
GOLD_KP = KeyPoints("How many apples does Tom have?", ["Tom has 12 apples.", "He buys 30 more."])


def _record(mode: str, k: int, target: str, kp: KeyPoints = GOLD_KP) -> KpddRecord:
    return KpddRecord(f"a#{mode}{k}", "a", QUESTION, "42", mode, kp.core_question, kp.facts, target, "testbed")


def test_training_sequences_for_both_students():
    records = [_record("cot", 0, "12 + 30 = 42. Therefore, the answer is 42."), _record("pot", 0, "answer = 12 + 30"),
               _record("pot", 1, "apples = 12\nanswer = apples + 30")]
    keys = key_sequences(records)
    assert len(keys) == 1  # the same key points once per question
    assert (keys[0].prompt, keys[0].target) == (key_prompt(QUESTION), GOLD_KP.render())
    pot = solve_sequences(records, "pot")
    assert [s.target for s in pot] == ["answer = 12 + 30", "apples = 12\nanswer = apples + 30"]
    assert pot[0].prompt == solve_prompt(QUESTION, GOLD_KP.render(), "pot")
    assert len({s.key for s in keys + pot + solve_sequences(records, "cot")}) == 4


@pytest.mark.parametrize("generated,reference,wrong", [
    (GOLD_KP, GOLD_KP, False),
    (KeyPoints("How many apples?", ["Tom has 12 apples.", "He buys 30 more."]), GOLD_KP, False),
    (KeyPoints("How many apples?", ["Tom has 12 apples.", "He is 9.", "He buys 30 more."]), GOLD_KP, True),
    (KeyPoints("How many apples?", ["Tom has 12 apples."]), GOLD_KP, True),
    (None, GOLD_KP, True),
    (KeyPoints("How many apples?", ["Tom has 12 apples.", "He is 9."]), None, False),
    (KeyPoints("How many apples?", ["Tom has 13 apples."]), None, True),
])
def test_understanding_error(generated, reference, wrong):
    assert understanding_error(generated, reference, QUESTION) is wrong


class FakeGenerator:
    """Stands in for kpod.eval.generate.generate: canned key points per question, and solutions
    chosen by the key points the solver's prompt holds (so the chaining itself is checked)."""

    def __init__(self, key_points: dict[str, str], solutions: dict[str, str]):
        self.key_points, self.solutions, self.solve_prompts = key_points, solutions, []

    def __call__(self, model, tokenizer, prompts, **kwargs):
        out = []
        for prompt in prompts:
            question = prompt.split("\n", 1)[0][3:]
            if prompt.endswith("Key points:"):
                out.append(self.key_points[question])
            else:
                self.solve_prompts.append(prompt)
                out.append(self.solutions[prompt.split("Key points:\n", 1)[1].split("\n", 1)[0]])
        return out


def test_chained_inference_and_error_analysis(monkeypatch):
    questions = {f"q{i}": f"{QUESTION} (case {i})" for i in range(4)}
    examples = [Example(f"q{i}", q, "42", kpdd={"core_question": GOLD_KP.core_question, "facts": GOLD_KP.facts})
                for i, q in enumerate(questions.values())]
    core = {f"q{i}": f"Core question: Case {chr(65 + i)}?" for i in range(4)}
    facts = "\nFacts:\n1. Tom has 12 apples.\n2. He buys 30 more."
    key_points = {questions["q0"]: core["q0"] + facts, questions["q1"]: core["q1"] + "\nFacts:\n1. Tom has 12 apples.",
                  questions["q2"]: core["q2"] + facts, questions["q3"]: core["q3"] + facts}
    pot = FakeGenerator(key_points, {core["q0"]: "answer = 12 + 30", core["q1"]: "answer = 12",
                                     core["q2"]: "answer = 12 / 0", core["q3"]: "answer = 12 + 31"})
    monkeypatch.setattr(pipeline, "generate", pot)
    model = LoadedModel(None, None, False)
    records = chained_predict(examples, model, model, "pot", limits=SandboxLimits(timeout=1.0), workers=1)
    assert all(key_points[ex.question] in prompt for ex, prompt in zip(examples, pot.solve_prompts))
    assert [r["pred"] for r in records] == ["42", "12", None, "43"]
    assert [r["error_type"] for r in records] == [None, "understanding", "program_failure", "other"]
    assert records[2]["program_error"].startswith("ZeroDivisionError")

    cot = FakeGenerator(key_points, {core["q0"]: "12 + 30 = 42. Therefore, the answer is 42.",
                                     core["q1"]: "Therefore, the answer is 12.",
                                     core["q2"]: "12 + 30 = 41. Therefore, the answer is 41.",
                                     core["q3"]: "12 + 31 = 43. Therefore, the answer is 43."})
    monkeypatch.setattr(pipeline, "generate", cot)
    records = chained_predict(examples, model, model, "cot")
    assert [r["error_type"] for r in records] == [None, "understanding", "calculation", "other"]
    metrics = kpdd_metrics(records)
    assert metrics["accuracy"] == 0.25 and metrics["n"] == 4 and metrics["key_points_ok"] == 0.75
    assert metrics["errors"] == {"understanding": 1, "program_failure": 0, "calculation": 1, "other": 1}


@pytest.mark.slow
@pytest.mark.parametrize("kind,shared,mode", [("causal", False, "cot"), ("seq2seq", True, "pot")])
def test_kpdd_end_to_end_on_tiny_models(kind, shared, mode, tiny_models, tmp_path):
    testbed = generate(SynthConfig(train_size=6, dev_size=0, test_size=2, ood_size=1, seed=1))
    cfg = KpddConfig(out=tmp_path, student=str(tiny_models[kind]), epochs=1, batch_size=4, shared_student=shared,
                     mode=mode, key_max_new_tokens=12, solve_max_new_tokens=12, sandbox_timeout=1.0,
                     sandbox_workers=1)
    records, _ = build_teacher_data(testbed["train"], cfg, tmp_path)
    students = train_students(records, cfg, tmp_path)
    assert set(students) == {"key", mode}
    assert (students["key"] == students[mode]) is shared
    assert json.loads((tmp_path / "students.json").read_text()) == students
    for path in set(students.values()):
        assert (Path(path) / "config.json").exists()
    metrics = evaluate_students(testbed["test"], students, cfg.modes, cfg, tmp_path / "eval")
    assert set(metrics) == {mode}
    for mode in cfg.modes:
        assert metrics[mode]["n"] == 2
        correct = round(metrics[mode]["accuracy"] * 2)
        assert sum(metrics[mode]["errors"].values()) == 2 - correct
        lines = (tmp_path / "eval" / mode / "predictions.jsonl").read_text().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [ex.id for ex in testbed["test"]]
