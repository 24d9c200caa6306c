"""The teacher's zero-shot CoT prompts (KPOD Sec. 3.1, after Kojima et al. 2022).

Two-stage prompting, one request per stage:

1. rationale: "Q: <question>\\nA: Let's think step by step." -> the teacher writes the rationale r;
2. answer: "Q: <question>\\nA: Let's think step by step. <r>\\nTherefore, the answer is" -> the
   teacher writes the answer y.

The stored rationale is r alone; training data puts the KPOD sentence "Therefore, the answer is <y>."
after it (`kpod.data.prompts.answer_sentence`).
"""

from __future__ import annotations

from kpod.data.answers import extract_answer
from kpod.data.example import Example
from kpod.data.prompts import ANSWER_TRIGGER, question_prompt

# A base model that has finished the rationale goes on to write the next question; cut it there.
RATIONALE_STOP = ["\nQ:", "\n\nQ:"]
ANSWER_STOP = ["\n"]


def question_text(example: Example) -> str:
    """The question as the teacher sees it: choices appended, as CSQA writes them, when the text lacks them."""
    if example.choices and not all(choice in example.question for choice in example.choices):
        return example.question.rstrip() + " Answer Choices:\n" + "\n".join(example.choices)
    return example.question


def rationale_prompt(example: Example) -> str:
    """Stage 1: "Q: <question>\\nA: Let's think step by step." """
    return question_prompt(question_text(example))


def clean_rationale(text: str) -> str:
    """The rationale r from a stage-1 response: cut at a following question and before any answer
    sentence the teacher already wrote (stage 2 elicits the answer), whitespace trimmed."""
    for stop in RATIONALE_STOP:
        text = text.split(stop, 1)[0]
    return text.split(ANSWER_TRIGGER, 1)[0].strip()


def answer_prompt(first_prompt: str, rationale: str) -> str:
    """Stage 2: the stage-1 prompt, the rationale, then "Therefore, the answer is"."""
    return f"{first_prompt} {rationale}\n{ANSWER_TRIGGER}"


def chat_messages(first_prompt: str, rationale: str | None = None) -> list[dict]:
    """The same two stages for chat-only endpoints: the stage-1 prompt as the user turn; for stage 2
    the rationale as the assistant turn and "Therefore, the answer is" as the next user turn."""
    messages = [{"role": "user", "content": first_prompt}]
    if rationale is not None:
        messages += [{"role": "assistant", "content": rationale}, {"role": "user", "content": ANSWER_TRIGGER}]
    return messages


def parse_answer(response: str, *, choices: bool = False) -> str | None:
    """The answer in a stage-2 response, read as the continuation of "Therefore, the answer is":
    the strict pattern first, then lm-evaluation-harness's flexible rule; None when there is none."""
    text = f"{ANSWER_TRIGGER} {response.strip()}"
    return (extract_answer(text, choices=choices, mode="strict")
            or extract_answer(text, choices=choices, mode="flexible"))
