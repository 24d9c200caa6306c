"""Splitting a rationale into reasoning steps, and mapping steps to token positions.

The KPOD paper (Sec. 4.2.1) "utilize[s] the symbol '.' to separate steps in a rationale". kpod
splits at a "." that ends a sentence and at line breaks:

- a "." ends a sentence when whitespace or the end of the text follows it (closing quotes and
  brackets stay with the sentence) or when a sentence runs on without a space ("miles.The",
  "dancers.35"); a "." inside a number ("$1.50", "3.5", "1,000.25") never splits;
- a "." after a title (Mr., Mrs., Dr., St., ...) never splits; after another common abbreviation
  (e.g., i.e., etc., vs., a.m., p.m.) it splits only before a capital letter ("at 8 a.m. The
  answer is 9"); the "." of a list marker at the start of a line ("1. Add ...", "A. apple") never
  splits;
- the last sentence is the answer part (`StepSplit.answer`), not a step, when it states the answer
  ("The answer is N", "Therefore, the answer is N.", "#### N").

Spans are [start, end) character offsets into the rationale, trimmed of surrounding whitespace.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np

# Titles never end a sentence; the other abbreviations end one when a capital letter follows.
TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "mt", "sr", "jr"})
ABBREVIATIONS = TITLES | frozenset({"vs", "etc", "e.g", "i.e", "a.m", "p.m", "approx", "u.s", "u.k"})
# A sentence-ending "." is followed by whitespace or the end (closing quotes and brackets stay with
# the sentence), or, run on without a space, by a capital after a word or a number ("miles.The",
# "35.The") or by a digit after a word ("dancers.35"); "3.5" and "$1.50" never match.
_BOUNDARY = re.compile(r"\.[\"')\]]*(?=\s|$)|(?<=[a-z]{2})\.(?=[A-Z0-9])|(?<=[0-9])\.(?=[A-Z])|\n")
_WORD_BEFORE = re.compile(r"([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)$")
_LIST_MARKER = re.compile(r"[ \t]*(?:\d+|[A-Za-z])")
_ANSWER = re.compile(r"^(?:####|answer\s*:|.*\banswer is\b)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class StepSplit:
    """The steps of a rationale and its final answer sentence, as character spans [start, end)."""

    steps: list[tuple[int, int]]
    answer: tuple[int, int] | None


def _ends_sentence(text: str, period: int) -> bool:
    line = text[text.rfind("\n", 0, period) + 1:period]
    if _LIST_MARKER.fullmatch(line):
        return False
    word = _WORD_BEFORE.search(line[-16:])
    if not word or word.group(1).lower() not in ABBREVIATIONS:
        return True
    after = text[period + 1:period + 8].lstrip(" \t\"')]")
    return word.group(1).lower() not in TITLES and after[:1].isupper()


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(0) != "\n" and not _ends_sentence(text, match.start()):
            continue
        spans.append((start, match.end() if match.group(0) != "\n" else match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [span for span in map(lambda s: _trim(text, *s), spans) if span[1] > span[0]]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_steps(rationale: str) -> StepSplit:
    """Split a rationale into step spans and the span of its final answer sentence (if any)."""
    sentences = _sentences(rationale)
    if sentences and _ANSWER.match(rationale[slice(*sentences[-1])]):
        return StepSplit(sentences[:-1], sentences[-1])
    return StepSplit(sentences, None)


def char_spans_to_token_spans(offsets, spans) -> list[tuple[int, int]]:
    """Token index ranges [start, end) covering consecutive character spans, from a fast
    tokenizer's `offset_mapping` (one (char_start, char_end) pair per token; special tokens have
    empty spans and belong to no span).

    A token belongs to the first span it reaches into; tokens lying wholly between two spans (the
    whitespace between steps) join the later span, so the spans of a split rationale map to
    contiguous, non-overlapping token ranges. A span holding no token gets an empty range.
    """
    pairs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2).tolist()
    tokens = [(i, s, e) for i, (s, e) in enumerate(pairs) if e > s]
    ends = [e for _, _, e in tokens]
    starts = [s for _, s, _ in tokens]
    last = tokens[-1][0] + 1 if tokens else 0
    out: list[tuple[int, int]] = []
    for span_start, span_end in spans:
        first = bisect.bisect_right(ends, span_start)
        stop = bisect.bisect_left(starts, span_end, lo=first)
        begin = tokens[first][0] if first < len(tokens) else last
        finish = tokens[stop][0] if stop < len(tokens) else last
        if out:
            begin = out[-1][1]
        out.append((begin, max(finish, begin)))
    return out
