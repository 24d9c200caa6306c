"""Scoring hand-made predictions: strict and flexible extraction differ where they should."""

from __future__ import annotations

import pytest

from kpod.data.example import Example
from kpod.eval.evaluate import compute_metrics, score_prediction

NUMERIC = Example(id="q1", question="How many?", answer="18")
CHOICE = Example(id="q2", question="Which?", answer="B", choices=["A. car", "B. apple", "C. rock"])


@pytest.mark.parametrize("example, generated, strict, flexible, ok_strict, ok_flexible", [
    # the KPOD answer sentence: both modes read it
    (NUMERIC, "9 + 9 = 18. Therefore, the answer is 18.", "18", "18", True, True),
    # "$" after the trigger: the harness's strict regex has no answer, flexible takes the last number
    (NUMERIC, "Therefore, the answer is $18.", None, "18", False, True),
    # strict reads the stated answer, flexible the last number written after it
    (NUMERIC, "Therefore, the answer is 18. Next, 7 more.", "18", "7", True, False),
    # no answer sentence: strict has nothing, flexible takes the last number
    (NUMERIC, "She pays 3 * 6 = 18", None, "18", False, True),
    (NUMERIC, "Therefore, the answer is 1,8.", "18", "18", True, True),
    (NUMERIC, "I do not know.", None, None, False, False),
    # multiple choice is scored on the letter
    (CHOICE, "Apples grow on trees. Therefore, the answer is B.", "B", "B", True, True),
    (CHOICE, "The answer is A, no wait (B)", "A", "B", False, True),
])
def test_score_prediction(example, generated, strict, flexible, ok_strict, ok_flexible):
    record = score_prediction(example, generated)
    assert (record["pred_strict"], record["pred_flexible"]) == (strict, flexible)
    assert (record["correct_strict"], record["correct_flexible"]) == (ok_strict, ok_flexible)
    assert record["correct"] == ok_flexible
    assert (record["id"], record["gold"], record["generated"]) == (example.id, example.answer, generated)


def test_compute_metrics_counts_and_accuracies():
    records = [score_prediction(NUMERIC, text) for text in (
        "Therefore, the answer is 18.",            # both right
        "Therefore, the answer is $18.",           # flexible only
        "Therefore, the answer is 18. Then 7.",    # strict only
        "Therefore, the answer is 5.",             # both wrong
        "nothing",                                 # no answer in either mode
    )]
    metrics = compute_metrics(records)
    assert metrics["n"] == 5
    assert (metrics["correct_strict"], metrics["correct_flexible"]) == (2, 2)
    assert metrics["accuracy_strict"] == pytest.approx(2 / 5)
    assert metrics["accuracy_flexible"] == pytest.approx(2 / 5)
    assert metrics["accuracy"] == metrics["accuracy_flexible"]
    assert metrics["accuracy_mode"] == "flexible"
    assert (metrics["no_answer_strict"], metrics["no_answer_flexible"]) == (2, 1)


def test_compute_metrics_strict_and_flexible_differ():
    records = [score_prediction(NUMERIC, "Therefore, the answer is $18."),
               score_prediction(NUMERIC, "3 * 6 = 18")]
    metrics = compute_metrics(records)
    assert (metrics["accuracy_strict"], metrics["accuracy_flexible"], metrics["accuracy"]) == (0.0, 1.0, 1.0)
