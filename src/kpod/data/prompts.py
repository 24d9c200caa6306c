"""The text formats a student reads and writes, shared by training, evaluation and the teacher.

Sec. 3.1 of the KPOD paper: "Q: <x> A: <p> <r> Therefore, the answer is <y>", with the zero-shot
CoT prompt p = "Let's think step by step."
"""

from __future__ import annotations

COT_TRIGGER = "Let's think step by step."
ANSWER_TRIGGER = "Therefore, the answer is"


def question_prompt(question: str) -> str:
    """The prompt for a question, before any rationale: "Q: <x>\\nA: Let's think step by step." """
    return f"Q: {question.strip()}\nA: {COT_TRIGGER}"


def answer_sentence(answer: str) -> str:
    """The closing sentence that states the answer: "Therefore, the answer is <y>." """
    return f"{ANSWER_TRIGGER} {answer}."
