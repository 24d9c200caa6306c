"""Answer extraction, normalization and comparison.

Two extraction modes, as lm-evaluation-harness defines them for gsm8k (and its CoT variants):

- "strict": the number right after an answer trigger, "#### N" or "The answer is N" (any case of
  "the", so kpod's own "Therefore, the answer is N." counts). As in the harness, "$" may not sit
  between the trigger and the number ("The answer is $18" has no strict answer). kpod takes the last
  such statement where the harness takes the first: the harness reads generations cut at its stop
  sequences, kpod also reads whole teacher rationales, which sometimes state an intermediate "so the
  answer is 18 - 6 = 12" before their final "The answer is 6".
- "flexible": the last number anywhere in the text, found with the harness's regex
  `(-?[$0-9.,]{2,})|(-?[0-9]+)`. One deviation: a match that holds no digit ("..." at the end of a
  sentence) is skipped instead of being returned as the answer.

Both add fractions ("3/4"), which the harness regexes cannot read. Extracted text goes through
`normalize_number`, which drops what the harness's `regexes_to_ignore` drop ("," "$" and a trailing
"."), units and "%", and writes the value canonically ("1,000.50" -> "1000.5", "18.00" -> "18").

Multiple-choice answers (`choices=True`) are letters A-E: strict reads "the answer is B" / "(B)";
flexible takes the last letter standing alone as an option ("(C)", "C.", "C:", "C)" or a final "C").
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_MINUS = str.maketrans({"\u2212": "-"})
_FRACTION = r"-?[0-9]+/[0-9]+"
_STRICT_NUMBER = re.compile(r"(?:####|[Tt]he answer is:?)\s*(" + _FRACTION + r"|-?[0-9.,]+)")
_FLEXIBLE_NUMBER = re.compile(r"(" + _FRACTION + r")|(-?[$0-9.,]{2,})|(-?[0-9]+)")
_NUMBER_IN_TEXT = re.compile(r"-?\$?\s*(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)(?:\s*/\s*[0-9]+)?")
_STRICT_CHOICE = re.compile(r"[Tt]he answer is:?\s*\(?([A-E])\b")
_FLEXIBLE_CHOICE = re.compile(r"\(([A-E])\)|\b([A-E])(?:[.:)]|\s*$)")
_DECIMALS = 6


def normalize_number(text: str | None) -> str | None:
    """The canonical string of the first number in `text`, or None if it holds none.

    Thousands separators, "$", a trailing period, "%" and units are dropped; integers lose a zero
    fraction ("51.0" -> "51"), decimals lose trailing zeros ("0.50" -> "0.5"), fractions become
    decimals rounded to 6 places ("3/4" -> "0.75").
    """
    if text is None:
        return None
    match = _NUMBER_IN_TEXT.search(str(text).translate(_MINUS))
    if not match:
        return None
    raw = match.group(0).replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in raw:
            num, den = raw.split("/")
            if Decimal(den) == 0:
                return None
            value = round(Decimal(num) / Decimal(den), _DECIMALS)
        else:
            value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return _canonical(value)


def _canonical(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_answer(text: str | None, *, choices: bool = False, mode: str = "flexible") -> str | None:
    """The answer stated in `text` (a rationale or a model's output), normalized, or None.

    `mode` is "strict" or "flexible" (module docstring); `choices=True` reads a letter A-E.
    """
    if mode not in ("strict", "flexible"):
        raise ValueError(f"mode must be 'strict' or 'flexible', got {mode!r}")
    if not text:
        return None
    text = text.translate(_MINUS)
    if choices:
        return _extract_choice(text, mode)
    if mode == "strict":
        matches = _STRICT_NUMBER.findall(text)
        return normalize_number(matches[-1]) if matches else None
    for match in reversed(list(_FLEXIBLE_NUMBER.finditer(text))):
        number = normalize_number(match.group(0))
        if number is not None and any(c.isdigit() for c in match.group(0)):
            return number
    return None


def _extract_choice(text: str, mode: str) -> str | None:
    if mode == "strict":
        matches = _STRICT_CHOICE.findall(text)
        return matches[-1] if matches else None
    matches = list(_FLEXIBLE_CHOICE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.group(1) or last.group(2)


def answers_match(pred: str | None, gold: str | None, *, tol: float = 1e-4) -> bool:
    """Whether a predicted answer equals the gold one: numbers within `tol` (relative to the gold
    value, and absolute for values near 0), anything else (choice letters) case-insensitively."""
    if pred is None or gold is None:
        return False
    pred_num, gold_num = _as_float(pred), _as_float(gold)
    if pred_num is not None and gold_num is not None:
        return math.isclose(pred_num, gold_num, rel_tol=tol, abs_tol=tol)
    return str(pred).strip().lower() == str(gold).strip().lower()


def _as_float(text: str) -> float | None:
    stripped = str(text).strip()
    if not re.fullmatch(r"[-$0-9.,/%\s\u2212]+", stripped):
        return None
    number = normalize_number(stripped)
    return float(number) if number is not None else None
