"""Few-shot teacher prompts for KPDD: key points, then a CoT solution (KPDD-CoT) or a program (KPDD-PoT).

The paper prompts its teacher with hand-written demonstrations of (question, core question,
problem-solving information, solution); its demonstrations are not published, so the four below are
kpod's own (written for this project, not taken from any benchmark). A response continues the
prompt after "Core question:" and is read back by `parse_teacher_response`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpod.data.prompts import ANSWER_TRIGGER, answer_sentence
from kpod.kpdd.formats import CORE_LABEL, PROGRAM_LABEL, KeyPoints, parse_key_points, parse_program

SOLUTION_LABEL = "Solution:"
# A completion model that has finished goes on to write the next demonstration; cut it there.
STOP = ["\nQ:", "\n\nQ:", "\n\n\n"]

INSTRUCTION = {
    "cot": ("Read each math word problem. First state its core question as one complete sentence, then list "
            "the facts needed to answer it, one per line. Then solve it step by step and end with "
            f"\"{ANSWER_TRIGGER} N.\""),
    "pot": ("Read each math word problem. First state its core question as one complete sentence, then list "
            "the facts needed to answer it, one per line. Then write a Python program that computes the "
            "answer and stores it in a variable named `answer`."),
}


@dataclass(frozen=True)
class Demonstration:
    question: str
    key_points: KeyPoints
    cot: str
    program: str
    answer: str


DEMONSTRATIONS = (
    Demonstration(
        question="A baker makes 36 muffins in the morning and twice as many in the afternoon. He sells 80 "
                 "muffins. How many muffins does he have left?",
        key_points=KeyPoints("How many muffins does the baker have left after selling 80?", [
            "The baker makes 36 muffins in the morning.",
            "In the afternoon he makes twice as many as in the morning.",
            "He sells 80 muffins."]),
        cot="In the afternoon he makes 2 * 36 = 72 muffins. In total he makes 36 + 72 = 108 muffins. "
            "After selling 80, he has 108 - 80 = 28 muffins left.",
        program="morning = 36\nafternoon = 2 * morning\nsold = 80\nanswer = morning + afternoon - sold",
        answer="28"),
    Demonstration(
        question="Maya reads 15 pages of a 120-page book every day. Her brother is 9 years old. How many days "
                 "does she need to finish the book?",
        key_points=KeyPoints("How many days does Maya need to read the whole 120-page book?", [
            "The book has 120 pages.",
            "Maya reads 15 pages every day."]),
        cot="Maya reads 15 pages a day, so she needs 120 / 15 = 8 days.",
        program="pages = 120\npages_per_day = 15\nanswer = pages / pages_per_day",
        answer="8"),
    Demonstration(
        question="A shirt costs $25 and a pair of jeans costs $40. Leo buys 3 shirts and 2 pairs of jeans and "
                 "pays with a $200 bill. How much change does he get?",
        key_points=KeyPoints("How much change does Leo get from $200 after buying 3 shirts and 2 pairs of jeans?", [
            "A shirt costs $25.",
            "A pair of jeans costs $40.",
            "Leo buys 3 shirts and 2 pairs of jeans.",
            "He pays with $200."]),
        cot="The shirts cost 3 * 25 = 75 dollars. The jeans cost 2 * 40 = 80 dollars. Together they cost "
            "75 + 80 = 155 dollars. His change is 200 - 155 = 45 dollars.",
        program="shirts = 3 * 25\njeans = 2 * 40\npaid = 200\nanswer = paid - (shirts + jeans)",
        answer="45"),
    Demonstration(
        question="A tank holds 500 liters of water. A pump removes 12.5 liters per minute for 16 minutes. What "
                 "percent of the water is left in the tank?",
        key_points=KeyPoints("What percent of the tank's 500 liters is left after pumping for 16 minutes?", [
            "The tank holds 500 liters.",
            "The pump removes 12.5 liters per minute.",
            "The pump runs for 16 minutes."]),
        cot="The pump removes 12.5 * 16 = 200 liters. So 500 - 200 = 300 liters are left. That is "
            "300 / 500 * 100 = 60 percent.",
        program="capacity = 500\nremoved = 12.5 * 16\nleft = capacity - removed\nanswer = left / capacity * 100",
        answer="60"),
)


def _solution_text(demo: Demonstration, mode: str) -> str:
    if mode == "cot":
        return f"{SOLUTION_LABEL} {demo.cot} {answer_sentence(demo.answer)}"
    return f"{PROGRAM_LABEL}\n{demo.program}"


def teacher_prompt(question: str, mode: str, demonstrations: tuple[Demonstration, ...] = DEMONSTRATIONS) -> str:
    """The few-shot prompt for one question; the teacher continues after "Core question:"."""
    blocks = [INSTRUCTION[mode]]
    for demo in demonstrations:
        blocks.append(f"Q: {demo.question}\n{demo.key_points.render()}\n{_solution_text(demo, mode)}")
    blocks.append(f"Q: {question.strip()}\n{CORE_LABEL}")
    return "\n\n".join(blocks)


def parse_teacher_response(response: str, mode: str) -> tuple[KeyPoints | None, str | None]:
    """The key points and the solution in a response to `teacher_prompt` (which ends with "Core
    question:"). The CoT solution comes with the teacher's answer sentence; the program as written."""
    for stop in STOP:
        response = response.split(stop, 1)[0]
    text = response.strip()
    if not text.lower().startswith(CORE_LABEL.lower()):
        text = f"{CORE_LABEL} {text}"
    label = SOLUTION_LABEL if mode == "cot" else PROGRAM_LABEL
    head, found, tail = text.partition(label)
    key_points = parse_key_points(head)
    if not found or not tail.strip():
        return key_points, None
    if mode == "pot":
        return key_points, parse_program(tail) or None
    return key_points, tail.strip() or None
