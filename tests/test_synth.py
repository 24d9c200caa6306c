"""The synthetic testbed: determinism, label correctness, error injection, OOD length, the CLI."""

from __future__ import annotations

import json
import re

import pytest

from kpod.cli import main as kpod_main
from kpod.data.loaders import load_examples
from kpod.data.steps import split_steps
from kpod.data.synth import ITEMS, OPERATORS, SynthConfig, generate, write_testbed
from kpod.errors import ConfigError

SMALL = dict(train_size=300, dev_size=20, test_size=40, ood_size=40)
STEP_RE = re.compile(r"(-?\d+) ([-+*/]) (\d+) = (-?\d+)")


@pytest.fixture(scope="module")
def testbed():
    return generate(SynthConfig(seed=3, error_rate=0.3, **SMALL))


def all_examples(testbed):
    return [ex for split in testbed.values() for ex in split]


def test_same_seed_writes_identical_files(tmp_path):
    cfg = SynthConfig(seed=7, train_size=50, dev_size=5, test_size=5, ood_size=5)
    a, b = write_testbed(tmp_path / "a", cfg), write_testbed(tmp_path / "b", cfg)
    for split in a:
        assert a[split].read_bytes() == b[split].read_bytes()
    other = write_testbed(tmp_path / "c", SynthConfig(seed=8, train_size=50, dev_size=5, test_size=5, ood_size=5))
    assert other["train"].read_bytes() != a["train"].read_bytes()


def test_keypoints_are_numbers_operators_results_or_entities(testbed):
    for ex in all_examples(testbed):
        text = ex.rationales[0]
        kinds = set()
        for start, end in ex.keypoints:
            piece = text[start:end]
            assert piece == piece.strip() and piece, (ex.id, piece)
            if piece.isdigit():
                kinds.add("number")
            elif piece in OPERATORS:
                kinds.add("operator")
            else:
                assert piece in ITEMS and piece in ex.question, (ex.id, piece)
                kinds.add("entity")
        assert kinds == {"number", "operator", "entity"}
        # Every number of every step is labelled, and so is each equation's operator.
        covered = {i for s, e in ex.keypoints for i in range(s, e)}
        for step_start, step_end in ex.meta["steps"]:
            for m in re.finditer(r"\d+", text[step_start:step_end]):
                assert all(step_start + i in covered for i in range(*m.span())), (ex.id, m.group())
            eq = STEP_RE.search(text, step_start, step_end)
            assert eq.start(2) in covered


def test_filler_is_never_a_keypoint(testbed):
    for ex in all_examples(testbed)[:100]:
        text = ex.rationales[0]
        for start, end in ex.keypoints:
            assert text[start:end] not in ("just", "simply", "so", "Now", "Therefore")
        answer_start = split_steps(text).answer[0]
        assert all(end <= answer_start for _, end in ex.keypoints)


def test_answer_is_what_the_program_computes(testbed):
    for ex in all_examples(testbed):
        scope: dict = {}
        exec(ex.kpdd["program"], {}, scope)  # noqa: S102 - our own generated programs
        assert str(scope["answer"]) == ex.answer
        assert ex.kpdd["core_question"] in ex.question and ex.kpdd["core_question"].endswith("?")
        assert all(fact in ex.question for fact in ex.kpdd["facts"])


def test_rationale_arithmetic_holds_except_the_injected_error(testbed):
    for ex in all_examples(testbed):
        text = ex.rationales[0]
        wrong = []
        for k, (start, end) in enumerate(ex.meta["steps"]):
            a, op, b, r = STEP_RE.search(text, start, end).groups()
            a, b, r = int(a), int(b), int(r)
            exact = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
            if exact != r:
                wrong.append(k)
        said = int(re.search(r"Therefore, the answer is (-?\d+)\.$", text).group(1))
        if ex.meta["teacher_correct"]:
            assert wrong == [] and said == int(ex.answer) and ex.meta["error_step"] is None
        else:
            assert wrong == [ex.meta["error_step"]] and said != int(ex.answer)


def test_steps_are_what_split_steps_finds(testbed):
    for ex in all_examples(testbed):
        found = split_steps(ex.rationales[0])
        assert [list(s) for s in found.steps] == ex.meta["steps"]
        assert len(found.steps) == ex.meta["num_steps"]
        assert ex.rationales[0][slice(*found.answer)].startswith("Therefore, the answer is")


@pytest.mark.parametrize("rate", [0.0, 0.25])
def test_error_injection_rate(rate):
    examples = generate(SynthConfig(seed=1, error_rate=rate, train_size=1200, dev_size=0, test_size=0,
                                    ood_size=0))["train"]
    observed = sum(not ex.meta["teacher_correct"] for ex in examples) / len(examples)
    assert abs(observed - rate) < 0.04


def test_ood_problems_are_longer_than_any_training_problem(testbed):
    train_steps = [ex.meta["num_steps"] for ex in testbed["train"]]
    ood_steps = [ex.meta["num_steps"] for ex in testbed["test_ood"]]
    assert min(ood_steps) > max(train_steps)
    assert set(train_steps) == {2, 3} and set(ood_steps) == {4, 5}


def test_no_question_repeats_across_splits(testbed):
    questions = [ex.question for ex in all_examples(testbed)]
    assert len(set(questions)) == len(questions)


def test_operators_and_steps_are_configurable():
    cfg = SynthConfig(seed=0, operators="+-", min_steps=3, max_steps=3, ood_min_steps=8, ood_max_steps=8,
                      train_size=30, dev_size=0, test_size=0, ood_size=10, max_distractors=0)
    data = generate(cfg)
    assert all(set(ex.meta["operators"]) <= {"+", "-"} for ex in data["train"] + data["test_ood"])
    assert {ex.meta["num_steps"] for ex in data["train"]} == {3}
    assert {ex.meta["num_steps"] for ex in data["test_ood"]} == {8}


def test_filler_rate_zero_gives_bare_steps():
    bare = generate(SynthConfig(seed=0, filler_rate=0.0, train_size=50, dev_size=0, test_size=0, ood_size=0))
    full = generate(SynthConfig(seed=0, filler_rate=1.0, train_size=50, dev_size=0, test_size=0, ood_size=0))
    for phrase in ("just ", "simply ", "It is clear that", "as expected"):
        assert not any(phrase in ex.rationales[0] for ex in bare["train"])
    assert sum(len(e.rationales[0]) for e in full["train"]) > 1.3 * sum(len(e.rationales[0]) for e in bare["train"])


@pytest.mark.parametrize("bad", [dict(ood_min_steps=3), dict(min_steps=5, max_steps=3), dict(operators="*/"),
                                 dict(error_rate=1.5)])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ConfigError):
        SynthConfig(**bad)


def test_cli_writes_loadable_splits(tmp_path):
    out = tmp_path / "tb"
    rc = kpod_main(["data", "synth", "--out", str(out), "--seed", "5", "--train-size", "12", "--dev-size", "3",
                    "--test-size", "4", "--ood-size", "2", "--max-steps", "3", "--ood-min-steps", "4"])
    assert rc == 0
    sizes = {split: len(load_examples(out, split)) for split in ("train", "dev", "test", "test_ood")}
    assert sizes == {"train": 12, "dev": 3, "test": 4, "test_ood": 2}
    record = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert {"id", "question", "answer", "rationale", "keypoints", "kpdd", "meta"} <= set(record)
    assert json.loads((out / "synth_config.json").read_text())["seed"] == 5
    assert kpod_main(["data", "synth", "--out", str(out), "--max-steps", "9"]) == 2
