"""KPDD's text formats: key points, the two students' prompts and targets, PoT programs, and the
checks the error analysis needs.

Key points (assumption: the paper's body is unreachable, so the layout is ours; see docs/kpdd.md):

    Core question: How many apples does Tom have now?
    Facts:
    1. Tom has 12 apples.
    2. Tom buys 30 more apples.

KPDD-Key reads `key_prompt(q)` and writes the key points; KPDD-Solve reads `solve_prompt(q, kp, mode)`
and writes a CoT rationale ending in "Therefore, the answer is N." (mode "cot") or a Python program
that assigns `answer` (mode "pot"; `solution()` or a last printed line are accepted too).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field

from kpod.data.prompts import COT_TRIGGER

CORE_LABEL = "Core question:"
FACTS_LABEL = "Facts:"
PROGRAM_LABEL = "Program:"
MODES = ("cot", "pot")

_FACT_LINE = re.compile(r"^\s*(?:\d+\s*[.)]|[-*\u2022])\s*(.+?)\s*$")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.S)


@dataclass
class KeyPoints:
    """The core question of a problem and the facts needed to answer it."""

    core_question: str
    facts: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"{CORE_LABEL} {self.core_question.strip()}", FACTS_LABEL]
        lines += [f"{i}. {fact.strip()}" for i, fact in enumerate(self.facts, start=1)]
        return "\n".join(lines)

    @classmethod
    def from_json(cls, record: dict) -> KeyPoints:
        return cls(str(record.get("core_question", "")).strip(), [str(f).strip() for f in record.get("facts", [])])


def parse_key_points(text: str) -> KeyPoints | None:
    """Read key points written in the layout above (tolerant of a model's or teacher's variations:
    any case of the labels, facts numbered "1." / "1)" or bulleted, a missing "Facts:" line).
    None when there is no core question."""
    core, facts, in_facts = None, [], False
    for line in text.strip().splitlines():
        stripped = line.strip()
        lower = stripped.lower()
        if lower.startswith(CORE_LABEL.lower()):
            core = stripped[len(CORE_LABEL):].strip()
        elif lower.startswith(FACTS_LABEL.lower()):
            in_facts = True
            rest = stripped[len(FACTS_LABEL):].strip()
            if rest:
                facts.append(rest)
        elif (match := _FACT_LINE.match(stripped)) and (in_facts or core is not None):
            facts.append(match.group(1))
        elif lower.startswith((PROGRAM_LABEL.lower(), "a:", "solution:")):
            break
    if not core:
        return None
    return KeyPoints(core, facts)


def key_prompt(question: str) -> str:
    """KPDD-Key's input."""
    return f"Q: {question.strip()}\nKey points:"


def solve_prompt(question: str, key_points: str, mode: str) -> str:
    """KPDD-Solve's input: the question with the (generated or teacher) key points as a hint."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    head = f"Q: {question.strip()}\nKey points:\n{key_points.strip()}\n"
    return head + (f"A: {COT_TRIGGER}" if mode == "cot" else PROGRAM_LABEL)


_TRAILING_ANSWER = re.compile(r"\s*(?:(?:Therefore|So|Thus),?\s*)?the answer is[^\n]*$", re.I)


def strip_answer_sentence(rationale: str) -> str:
    """A CoT rationale without its closing "(Therefore,) the answer is N." sentence."""
    return _TRAILING_ANSWER.sub("", rationale.strip()).strip()


# ---------------------------------------------------------------------------------------------------
# Programs


def parse_program(text: str) -> str:
    """The Python program in a model's or teacher's output: the first fenced block if there is one,
    else the text; trailing lines that do not parse (prose after the code) are dropped."""
    match = _FENCE.search(text)
    code = (match.group(1) if match else text).strip("\n")
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]).rstrip()
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    return code.strip()


def program_result_kind(code: str) -> str | None:
    """How a program states its result, as the sandbox reads it: "answer" (a top-level assignment
    to `answer`), "solution" (a `solution()` function), "print" (a print call), or None."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
             for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    if "answer" in names:
        return "answer"
    if any(isinstance(node, ast.FunctionDef) and node.name == "solution" for node in tree.body):
        return "solution"
    if any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
           for node in ast.walk(tree)):
        return "print"
    return None


_CALCULATION = re.compile(r"<<([^<>=]+)=([^<>]*)>>")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def program_from_calculations(solution: str) -> str | None:
    """A PoT program from a GSM8K solution's calculator annotations ("48/2 = <<48/2=24>>24 ...").

    Each annotation becomes `step_k = <expression>`; a literal equal to an earlier step's result is
    replaced by that step's variable, so the program carries the data flow, not copied numbers.
    The last step is the answer. None when the solution has no annotation or one is not arithmetic."""
    program, results = [], {}
    for k, (expression, result) in enumerate(_CALCULATION.findall(solution), start=1):
        expression = expression.replace("^", "**").replace("x", "*").replace(",", "").strip()
        if evaluate_arithmetic(expression) is None:
            return None

        def substitute(match: re.Match) -> str:
            return results.get(_number_key(match.group(0)), match.group(0))

        program.append(f"step_{k} = {_NUMBER.sub(substitute, expression)}")
        key = _number_key(result.replace(",", "").strip())
        if key is not None:
            results.setdefault(key, f"step_{k}")
    if not program:
        return None
    return "\n".join(program + [f"answer = step_{len(program)}"])


def _number_key(text: str) -> str | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return repr(round(value, 6))


# ---------------------------------------------------------------------------------------------------
# Equations of a CoT rationale (the error analysis' "calculation" check)

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_EQUATION = re.compile(r"((?:[\d$(][\d.,$()\s]*?)(?:\s*[-+*/x\u00d7\u00f7]\s*[\d$(][\d.,$()]*)+)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)")


def evaluate_arithmetic(expression: str) -> float | None:
    """The value of an expression of numbers, + - * / // % ** and parentheses; None for anything else
    (names, calls, huge powers, division by zero)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("power too large")
            return _BINARY[type(node.op)](left, right)
        raise ValueError(f"not arithmetic: {type(node).__name__}")

    try:
        result = float(value(tree.body))
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    return result if math.isfinite(result) else None


@dataclass
class Equation:
    text: str
    stated: float
    computed: float

    @property
    def holds(self) -> bool:
        return equation_holds(self.computed, self.stated, self.text.split("=")[-1])


def equation_holds(computed: float, stated: float, stated_text: str) -> bool:
    """Whether a stated result matches the recomputed one, allowing the rounding the text shows:
    half a unit of its last written decimal place ("12/7 = 1.71" holds), else a relative 1e-6."""
    decimals = len(stated_text.strip().split(".")[1]) if "." in stated_text else 0
    tolerance = max(0.5 * 10 ** -decimals if decimals else 0.0, 1e-6 * max(1.0, abs(computed)))
    return abs(computed - stated) <= tolerance


def find_equations(rationale: str) -> list[Equation]:
    """The arithmetic equations written in a CoT rationale ("12 + 30 = 42", "7 x 6 = 42"), each with
    its stated and recomputed value. Expressions that are not plain arithmetic are skipped."""
    out = []
    for match in _EQUATION.finditer(rationale):
        left = match.group(1).replace("$", "").replace(",", "").replace("\u00d7", "*").replace("\u00f7", "/")
        left = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", left)
        computed = evaluate_arithmetic(left)
        stated = match.group(2).replace(",", "")
        if computed is not None:
            out.append(Equation(match.group(0).strip(), float(stated), computed))
    return out


def calculation_error(rationale: str) -> Equation | None:
    """The first equation of a rationale that does not hold when recomputed, or None."""
    return next((eq for eq in find_equations(rationale) if not eq.holds), None)
