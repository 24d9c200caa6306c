"""KPDD text formats: key points, prompts, program parsing, calculator programs, equation checks."""

from __future__ import annotations

import pytest

from kpod.kpdd.formats import (KeyPoints, calculation_error, evaluate_arithmetic, find_equations, key_prompt,
                               parse_key_points, parse_program, program_from_calculations, program_result_kind,
                               solve_prompt, strip_answer_sentence)
from kpod.kpdd.prompts import DEMONSTRATIONS, parse_teacher_response, teacher_prompt
from kpod.kpdd.sandbox import run_program


def test_key_points_render_and_parse_round_trip():
    kp = KeyPoints("How many apples does Tom have?", ["Tom has 12 apples.", "He buys 30 more."])
    text = kp.render()
    assert text == ("Core question: How many apples does Tom have?\nFacts:\n1. Tom has 12 apples.\n"
                    "2. He buys 30 more.")
    assert parse_key_points(text) == kp


@pytest.mark.parametrize("text,expected", [
    ("core question: How many?\nfacts:\n1) A has 3.\n2) B has 4.", KeyPoints("How many?", ["A has 3.", "B has 4."])),
    ("Core question: How many?\n- A has 3.\n* B has 4.", KeyPoints("How many?", ["A has 3.", "B has 4."])),
    ("Core question: How many?\nFacts: A has 3.\n2. B has 4.\nProgram:\n1. x", KeyPoints("How many?",
                                                                                       ["A has 3.", "B has 4."])),
    ("Facts:\n1. A has 3.", None),
    ("", None),
])
def test_parse_key_points_tolerates_variations(text, expected):
    assert parse_key_points(text) == expected


def test_student_prompts():
    assert key_prompt(" Tom has 3. ") == "Q: Tom has 3.\nKey points:"
    kp = "Core question: How many?\nFacts:\n1. Tom has 3."
    assert solve_prompt("Tom has 3.", kp, "cot") == f"Q: Tom has 3.\nKey points:\n{kp}\nA: Let's think step by step."
    assert solve_prompt("Tom has 3.", kp, "pot").endswith(f"{kp}\nProgram:")
    with pytest.raises(ValueError):
        solve_prompt("q", kp, "sql")


@pytest.mark.parametrize("text,expected", [
    ("x = 3\nanswer = x + 4", "x = 3\nanswer = x + 4"),
    ("Here it is:\n```python\nx = 3\nanswer = x\n```\nThis prints 3.", "x = 3\nanswer = x"),
    ("x = 3\nanswer = x * 2\nThe answer is 6.", "x = 3\nanswer = x * 2"),
    ("```\nanswer = 1\n```", "answer = 1"),
])
def test_parse_program(text, expected):
    assert parse_program(text) == expected


@pytest.mark.parametrize("code,kind", [
    ("x = 1\nanswer = x", "answer"),
    ("answer: int = 4", "answer"),
    ("def solution():\n    return 4", "solution"),
    ("def f():\n    answer = 3\n    return answer\nprint(f())", "print"),
    ("x = 1", None),
    ("x = (", None),
])
def test_program_result_kind(code, kind):
    assert program_result_kind(code) == kind


def test_program_from_calculations_follows_the_data_flow():
    solution = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")
    program = program_from_calculations(solution)
    assert program == "step_1 = 48/2\nstep_2 = 48+step_1\nanswer = step_2"
    assert run_program(program).answer == "72"


def test_program_from_calculations_rejects_what_is_not_arithmetic():
    assert program_from_calculations("No annotations here. #### 5") is None
    assert program_from_calculations("It costs <<price*2=10>>10. #### 10") is None
    assert program_from_calculations("Half is <<.5*20=10>>10 and 10% is <<20*.1=2>>2.") == (
        "step_1 = .5*20\nstep_2 = 20*.1\nanswer = step_2")


@pytest.mark.parametrize("expression,value", [
    ("(3 + 4) * 2", 14.0), ("7 / 2", 3.5), ("2 ** 10", 1024.0), ("-5 + 2", -3.0), ("7 // 2 % 2", 1.0),
    ("1 / 0", None), ("x + 1", None), ("2 ** 100000", None), ("__import__('os')", None), ("1 +", None),
])
def test_evaluate_arithmetic(expression, value):
    assert evaluate_arithmetic(expression) == value


def test_find_equations_recomputes_each_one():
    text = "He has 12 + 30 = 42 apples. Then 7 x 6 = 43. He pays $1,200 / 4 = $300. And 12/7 = 1.71."
    found = [(e.text, e.stated, e.computed, e.holds) for e in find_equations(text)]
    assert found == [("12 + 30 = 42", 42.0, 42.0, True), ("7 x 6 = 43", 43.0, 42.0, False),
                     ("$1,200 / 4 = $300", 300.0, 300.0, True), ("12/7 = 1.71", 1.71, 12 / 7, True)]
    assert calculation_error(text).text == "7 x 6 = 43"
    assert calculation_error("So 2 + 2 = 4. Therefore, the answer is 4.") is None
    assert calculation_error("12/7 = 1.8") is not None  # off by more than the written rounding


def test_strip_answer_sentence():
    assert strip_answer_sentence("2 + 2 = 4. Therefore, the answer is 4.") == "2 + 2 = 4."
    assert strip_answer_sentence("2 + 2 = 4.\nThe answer is 4") == "2 + 2 = 4."
    assert strip_answer_sentence("2 + 2 = 4.") == "2 + 2 = 4."


@pytest.mark.parametrize("mode", ["cot", "pot"])
def test_teacher_prompt_holds_every_demonstration_and_ends_open(mode):
    prompt = teacher_prompt("Tom has 3 apples. How many?", mode)
    assert prompt.endswith("Q: Tom has 3 apples. How many?\nCore question:")
    for demo in DEMONSTRATIONS:
        assert demo.question in prompt
        assert (demo.program if mode == "pot" else demo.cot) in prompt


def test_demonstration_programs_and_rationales_are_right():
    for demo in DEMONSTRATIONS:
        assert run_program(demo.program).answer == demo.answer
        assert calculation_error(demo.cot) is None


def test_parse_teacher_response():
    response = (" How many apples does Tom have?\nFacts:\n1. Tom has 3 apples.\n2. He buys 4 more.\n"
                "Program:\napples = 3\nanswer = apples + 4\n\nQ: A next question")
    kp, program = parse_teacher_response(response, "pot")
    assert kp == KeyPoints("How many apples does Tom have?", ["Tom has 3 apples.", "He buys 4 more."])
    assert program == "apples = 3\nanswer = apples + 4"
    kp, cot = parse_teacher_response("Core question: How many?\nFacts:\n1. A has 3.\nSolution: 3 + 4 = 7. "
                                     "Therefore, the answer is 7.", "cot")
    assert kp.core_question == "How many?" and cot == "3 + 4 = 7. Therefore, the answer is 7."
    assert parse_teacher_response(" How many?\nFacts:\n1. A has 3.", "cot")[1] is None
