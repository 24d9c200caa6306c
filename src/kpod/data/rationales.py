"""Teacher rationale files: read them, attach them to a data set's train split, count what matched.

Two formats (../shared/data/README.md):

- "instruction": a list of {instruction: question, output: rationale ending "The answer is N"}
  (gsm8k_*.json, csqa_llama3-70b.json; CSQA instructions read "Q: stem Answer choices: A: x, ...");
- "chain": a list of {input: question, chain: rationale, answer, initial_correct}
  (svamp_*.json, asdiv_*.json). The chain states no answer sentence, so kpod appends the teacher's
  answer as "Therefore, the answer is N." (`kpod.data.prompts.answer_sentence`): every rationale
  then ends on its answer sentence, which `split_steps` keeps apart from the steps.

Each row is matched to a train example by normalized question text (CSQA: by the question stem;
stems are unique in CommonsenseQA). A row whose question is not in the train split is `unmatched`;
the report says how many of those are questions of the dev or test split (never attached: that
would leak evaluation data) and how many are in no split ("absent"). A matched rationale is `correct` when its answer
(strict extraction, else flexible) equals the gold answer. Several rationales per question are
kept in file order; an exact repeat of a rationale already attached to the question is counted as
a `duplicate` and not attached twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kpod.data.answers import answers_match, extract_answer, normalize_number
from kpod.data.example import Example
from kpod.data.loaders import BUILTIN_SPLITS, load_examples, normalize_question
from kpod.data.prompts import answer_sentence
from kpod.errors import DataError
from kpod.io import read_json

_CSQA_INSTRUCTION = re.compile(r"^\s*Q:\s*(.*?)\s*Answer choices:", re.DOTALL)


@dataclass
class RationaleRow:
    """One rationale of a file: the question as the file writes it, and the rationale text."""

    question: str
    rationale: str
    item: int


@dataclass
class RationaleReport:
    """What happened to the rows of one rationale file."""

    file: str
    dataset: str
    rows: int = 0
    matched: int = 0
    unmatched: int = 0
    correct: int = 0
    incorrect: int = 0
    duplicates: int = 0
    questions: int = 0
    unmatched_in_split: dict[str, int] = field(default_factory=dict)
    unmatched_questions: list[str] = field(default_factory=list)

    def summary(self, examples: int = 3) -> dict:
        """The report as JSON, with only the first few unmatched questions."""
        out = asdict(self)
        out["unmatched_questions"] = self.unmatched_questions[:examples]
        return out


def rationale_files(dataset: str, data_dir: str | Path) -> list[Path]:
    """The rationale files of a built-in data set: DATA_DIR/rationales/<dataset>_*.json, sorted."""
    return sorted((Path(data_dir) / "rationales").glob(f"{dataset}_*.json"))


def read_rationale_file(path: str | Path) -> list[RationaleRow]:
    """The rows of a rationale file in either format (see the module docstring)."""
    path = Path(path)
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError("expected a JSON list of rationale records", path=path)
    rows = []
    for number, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise DataError(f"item {number}: expected an object", path=path)
        chain_format = "instruction" not in rec
        question = _required(rec, "input" if chain_format else "instruction", path, number)
        text = _required(rec, "chain" if chain_format else "output", path, number)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"item {number}: empty rationale", path=path, field="chain" if chain_format else "output")
        if chain_format:
            answer = str(_required(rec, "answer", path, number)).strip()
            text = f"{text.strip()}\n{answer_sentence(normalize_number(answer) or answer)}"
        rows.append(RationaleRow(question=str(question), rationale=text.strip(), item=number))
    return rows


def _required(rec: dict, key: str, path: Path, number: int):
    if key not in rec:
        raise DataError(f"item {number}: missing required field", path=path, field=key)
    return rec[key]


def match_key(dataset: str, question: str) -> str:
    """The text a question is matched on: normalized; for CSQA the stem before the choices."""
    if dataset == "csqa":
        match = _CSQA_INSTRUCTION.match(question)
        stem = match.group(1) if match else question.split(" Answer Choices:")[0]
        return normalize_question(stem.removeprefix("Q:"))
    return normalize_question(question)


def attach_rationales(examples: list[Example], path: str | Path, dataset: str, *, only_correct: bool = False,
                      other_splits: dict[str, list[Example]] | None = None) -> RationaleReport:
    """Append the rationales of one file to the matching `examples` (in place) and report counts.

    `other_splits` ({"dev": [...], "test": [...]}) only sharpens the report: it says which
    unmatched questions belong to those splits.
    """
    by_key = {match_key(dataset, ex.question): ex for ex in examples}
    elsewhere = {match_key(dataset, ex.question): split for split, exs in (other_splits or {}).items() for ex in exs}
    report = RationaleReport(file=Path(path).name, dataset=dataset)
    where: Counter = Counter()
    touched = set()
    for row in read_rationale_file(path):
        report.rows += 1
        key = match_key(dataset, row.question)
        ex = by_key.get(key)
        if ex is None:
            report.unmatched += 1
            report.unmatched_questions.append(row.question)
            where[elsewhere.get(key, "absent")] += 1
            continue
        report.matched += 1
        correct = rationale_is_correct(row.rationale, ex.answer, choices=ex.choices is not None)
        report.correct += correct
        report.incorrect += not correct
        if row.rationale in ex.rationales:
            report.duplicates += 1
        elif correct or not only_correct:
            ex.rationales.append(row.rationale)
            touched.add(ex.id)
    report.questions = len(touched)
    report.unmatched_in_split = dict(where)
    return report


def rationale_is_correct(rationale: str, gold: str, *, choices: bool = False) -> bool:
    """Whether a rationale's final answer (strict extraction, else flexible) equals `gold`."""
    answer = extract_answer(rationale, choices=choices, mode="strict")
    if answer is None:
        answer = extract_answer(rationale, choices=choices, mode="flexible")
    return answers_match(answer, gold)


def load_with_rationales(dataset: str, data_dir: str | Path, *, only_correct: bool = False,
                         files: list[str | Path] | None = None) -> tuple[list[Example], list[RationaleReport]]:
    """The train split of a built-in data set with the rationales of its files attached (all of
    DATA_DIR/rationales/<dataset>_*.json unless `files` is given), and one report per file."""
    dataset = dataset.lower()
    if dataset not in BUILTIN_SPLITS or "train" not in BUILTIN_SPLITS[dataset]:
        raise DataError(f"'{dataset}' has no train split to attach rationales to", field="dataset")
    train = load_examples(dataset, "train", data_dir)
    others = {split: load_examples(dataset, split, data_dir) for split in BUILTIN_SPLITS[dataset] if split != "train"}
    paths = [Path(p) for p in files] if files is not None else rationale_files(dataset, data_dir)
    reports = [attach_rationales(train, path, dataset, only_correct=only_correct, other_splits=others)
               for path in paths]
    return train, reports
