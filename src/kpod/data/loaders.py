"""Loading data sets as lists of `Example`: the five built-in benchmarks and generic JSONL.

`load_examples(dataset, split, data_dir)` accepts

- a built-in name (gsm8k, svamp, asdiv, csqa, multiarith): read from the raw files under
  `data_dir` (the layout of ../shared/data, formats in its README), or from the Hugging Face hub
  (`kpod.data.hub`) when `data_dir` is None;
- a generic JSONL file (one `Example.to_json()` per line; `split` is ignored);
- a directory holding `<split>.jsonl` files (the testbed: train, dev, test, test_ood).

Splits are the KPOD paper's Table 4, rebuilt item for item from the reference split files:
GSM8K 7473/660/659, ASDiv 1462/313/314, SVAMP 700/150/150, CSQA 8520/1221/1221; MultiArith's 600
problems are a test set only. Example ids are "<dataset>-<source id>" where the source has ids
(SVAMP "chal-1", ASDiv "nluds-0001", CSQA's hash, MultiArith's iIndex) and "<dataset>-<12 hex of
the SHA-1 of the normalized question>" for GSM8K, which has none.
"""

from __future__ import annotations

import functools
import hashlib
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from kpod.data.answers import answers_match, normalize_number
from kpod.data.example import Example
from kpod.errors import DataError
from kpod.io import read_json, read_jsonl, write_jsonl

BUILTIN_SPLITS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("train", "dev", "test"),
    "svamp": ("train", "dev", "test"),
    "asdiv": ("train", "dev", "test"),
    "csqa": ("train", "dev", "test"),
    "multiarith": ("test",),
}
GENERIC_OPTIONAL = ("rationale", "rationales", "choices", "keypoints", "kpdd", "meta")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def normalize_question(text: str) -> str:
    """Question text for matching across sources: whitespace runs collapsed, ends stripped."""
    return " ".join(str(text).split())


def content_id(dataset: str, question: str) -> str:
    """A stable id from the question text alone (for sources without ids)."""
    digest = hashlib.sha1(normalize_question(question).encode("utf-8")).hexdigest()[:12]
    return f"{dataset}-{digest}"


def csqa_question(stem: str, labels: Iterable[str], texts: Iterable[str]) -> tuple[str, list[str]]:
    """CSQA question text as the reference split writes it, "stem Answer Choices:\\nA. x\\n...",
    and the choices as "A. x" strings."""
    choices = [f"{label}. {text}" for label, text in zip(labels, texts)]
    return f"{stem.strip()} Answer Choices:\n" + "\n".join(choices), choices


def numeric_answer(value, *, path, line=None, field="answer") -> str:
    answer = normalize_number(str(value))
    if answer is None:
        raise DataError(f"answer {value!r} is not a number", path=path, line=line, field=field)
    return answer


def load_examples(dataset: str | Path, split: str = "train", data_dir: str | Path | None = None) -> list[Example]:
    """The examples of `split` of `dataset` (a built-in name, a JSONL file or a directory)."""
    name = str(dataset)
    if name.lower() in BUILTIN_SPLITS:
        name = name.lower()
        check_split(name, split)
        if data_dir is None:
            from kpod.data.hub import load_hub_examples

            return load_hub_examples(name, split)
        splits = _builtin_cached(name, str(Path(data_dir).resolve()), _stamp(Path(data_dir) / name))
        return [_copy(ex) for ex in splits[split]]
    path = Path(name)
    if path.is_dir():
        return read_generic(path / f"{split}.jsonl")
    if path.is_file():
        return read_generic(path)
    if path.suffix == ".jsonl":
        raise DataError("file not found", path=path, field="dataset")
    raise DataError(f"unknown data set '{name}': expected one of {', '.join(BUILTIN_SPLITS)}, "
                    "a JSONL file or a directory of <split>.jsonl files", field="dataset")


def check_split(name: str, split: str) -> None:
    if split not in BUILTIN_SPLITS[name]:
        raise DataError(f"{name} has no '{split}' split (it has: {', '.join(BUILTIN_SPLITS[name])})", field="split")


def write_examples(path: str | Path, examples: Iterable[Example]) -> None:
    """Write examples as generic JSONL, atomically."""
    write_jsonl(path, (ex.to_json() for ex in examples))


def _copy(ex: Example) -> Example:
    return Example(ex.id, ex.question, ex.answer, list(ex.rationales), None if ex.choices is None else list(ex.choices),
                   ex.keypoints, ex.kpdd, dict(ex.meta))


def _stamp(folder: Path) -> tuple:
    """Modification times of a data set's raw files, so the parse cache notices edits."""
    if not folder.is_dir():
        raise DataError("data directory not found", path=folder)
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


@functools.lru_cache(maxsize=16)
def _builtin_cached(name: str, data_dir: str, stamp: tuple) -> dict[str, list[Example]]:
    return _READERS[name](Path(data_dir))


# --- generic JSONL ------------------------------------------------------------------------------

def read_generic(path: str | Path) -> list[Example]:
    """Read a generic JSONL file; every problem is a DataError naming file, line and field."""
    path = Path(path)
    examples, seen = [], {}
    for line, record in read_jsonl(path, required=("id", "question", "answer")):
        ex = example_from_record(record, path=path, line=line)
        if ex.id in seen:
            raise DataError(f"duplicate id '{ex.id}' (first on line {seen[ex.id]})", path=path, line=line, field="id")
        seen[ex.id] = line
        examples.append(ex)
    return examples


def example_from_record(record: dict, *, path=None, line: int | None = None) -> Example:
    """One generic-format record as an Example (keys beyond the format go into `meta`)."""
    def fail(message: str, field: str) -> DataError:
        return DataError(message, path=path, line=line, field=field)

    for key in ("id", "question"):
        if not isinstance(record[key], (str, int)) or not str(record[key]).strip():
            raise fail("must be a non-empty string", key)
    answer = record["answer"]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
        raise fail("must be a non-empty string or a number", "answer")
    if "rationale" in record and "rationales" in record:
        raise fail("give either 'rationale' or 'rationales', not both", "rationales")
    rationales = [record["rationale"]] if "rationale" in record else record.get("rationales", [])
    field = "rationale" if "rationale" in record else "rationales"
    if not isinstance(rationales, list):
        raise fail("must be a list of strings", field)
    for k, text in enumerate(rationales):
        where = field if field == "rationale" else f"rationales[{k}]"
        if not isinstance(text, str):
            raise fail("must be a string", where)
        if not text.strip():
            raise fail("empty rationale", where)
    choices = record.get("choices")
    if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)):
        raise fail("must be a list of strings", "choices")
    keypoints = record.get("keypoints")
    if keypoints is not None and not (isinstance(keypoints, list) and all(
            isinstance(k, list) and len(k) == 2 and all(isinstance(v, int) for v in k) for k in keypoints)):
        raise fail("must be a list of [start, end] integer pairs", "keypoints")
    kpdd = record.get("kpdd")
    if kpdd is not None and not isinstance(kpdd, dict):
        raise fail("must be an object", "kpdd")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise fail("must be an object", "meta")
    extra = {k: v for k, v in record.items() if k not in ("id", "question", "answer", *GENERIC_OPTIONAL)}
    return Example(id=str(record["id"]), question=str(record["question"]), answer=_generic_answer(answer),
                   rationales=list(rationales), choices=choices, keypoints=keypoints, kpdd=kpdd,
                   meta={**meta, **extra})


def _generic_answer(answer) -> str:
    """Numbers are normalized ("1,000" -> "1000", 18.0 -> "18"); anything else is kept, stripped."""
    text = str(answer).strip()
    if re.fullmatch(r"-?\$?[\d,]*\.?\d+", text):
        return normalize_number(text) or text
    return text


# --- the built-in benchmarks ---------------------------------------------------------------------

def assemble_split(name: str, split_path: Path, items: list, pool: list[Example], *,
                   key: Callable[[str], str] = normalize_question) -> list[Example]:
    """Pick from `pool` the examples listed, in order, by a reference split file
    (a list of {"input", "answer"}); each is matched by normalized question text and its answer
    must agree with the split file's. Matched examples are removed from `pool`."""
    index: dict[str, list[Example]] = defaultdict(list)
    for ex in pool:
        index[key(ex.question)].append(ex)
    picked = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "input" not in item:
            raise DataError(f"item {number}: expected an object with 'input'", path=split_path, field="input")
        candidates = index.get(key(item["input"]))
        if not candidates:
            raise DataError(f"item {number}: question not found in the {name} source files", path=split_path,
                            field="input")
        ex = candidates.pop(0)
        if "answer" in item and not answers_match(_split_answer(item["answer"]), ex.answer):
            raise DataError(f"item {number}: answer {item['answer']!r} disagrees with the source's {ex.answer!r}",
                            path=split_path, field="answer")
        picked.append(ex)
    chosen = {id(ex) for ex in picked}
    pool[:] = [ex for ex in pool if id(ex) not in chosen]
    return picked


def _split_answer(value) -> str:
    """A split file's answer: a number, or a CSQA "A. text" choice (its letter)."""
    text = str(value).strip()
    match = re.fullmatch(r"([A-E])\.\s.*", text, re.DOTALL)
    return match.group(1) if match else (normalize_number(text) or text)


def _read_split_file(path: Path) -> list:
    items = read_json(path)
    if not isinstance(items, list):
        raise DataError("expected a JSON list of {input, answer}", path=path)
    return items


def read_gsm8k(data_dir: Path) -> dict[str, list[Example]]:
    """GSM8K: train.jsonl (7473); test.jsonl split into test (split_test.json, 659) and dev (660)."""
    root = data_dir / "gsm8k"

    def read(path: Path) -> list[Example]:
        out = []
        for line, rec in read_jsonl(path, required=("question", "answer")):
            if "####" not in rec["answer"]:
                raise DataError("no '#### N' final answer", path=path, line=line, field="answer")
            answer = numeric_answer(rec["answer"].rsplit("####", 1)[1], path=path, line=line)
            out.append(Example(id=content_id("gsm8k", rec["question"]), question=rec["question"].strip(),
                               answer=answer, meta={"solution": rec["answer"]}))
        return out

    train, pool = read(root / "train.jsonl"), read(root / "test.jsonl")
    test = assemble_split("gsm8k", root / "split_test.json", _read_split_file(root / "split_test.json"), pool)
    return {"train": train, "dev": pool, "test": test}


def read_svamp(data_dir: Path) -> dict[str, list[Example]]:
    """SVAMP: SVAMP.json (1000) split by split_train.json (700), split_test.json (150), dev the rest."""
    root = data_dir / "svamp"
    path = root / "SVAMP.json"
    records = read_json(path)
    pool = []
    for number, rec in enumerate(records, start=1):
        for field in ("ID", "Body", "Question", "Answer"):
            if field not in rec:
                raise DataError(f"item {number}: missing required field", path=path, field=field)
        pool.append(Example(id=f"svamp-{rec['ID']}", question=f"{rec['Body'].strip()} {rec['Question'].strip()}",
                            answer=numeric_answer(rec["Answer"], path=path),
                            meta={"equation": rec.get("Equation"), "type": rec.get("Type")}))
    train = assemble_split("svamp", root / "split_train.json", _read_split_file(root / "split_train.json"), pool)
    test = assemble_split("svamp", root / "split_test.json", _read_split_file(root / "split_test.json"), pool)
    return {"train": train, "dev": pool, "test": test}


def asdiv_answer(raw: str) -> str | None:
    """The numeric answer of an ASDiv problem, or None when the problem is not in the KPOD splits:
    the answer must have no ";" and its text before "(" must hold exactly one number and no ":"
    or "/" ("9 (apples)" -> "9", "February 3rd" -> "3"; "3:4", "1/2", "5;6", "Yes" -> None)."""
    if ";" in raw:
        return None
    head = raw.split("(")[0]
    numbers = _NUMBER.findall(head)
    if ":" in head or "/" in head or len(numbers) != 1:
        return None
    return normalize_number(numbers[0])


def read_asdiv(data_dir: Path) -> dict[str, list[Example]]:
    """ASDiv: ASDiv.xml problems with one numeric answer (2089), split by split_train.json (1462)
    and split_test.json (314); dev (313) is the rest."""
    root = data_dir / "asdiv"
    path = root / "ASDiv.xml"
    if not path.exists():
        raise DataError("file not found", path=path)
    try:
        problems = ET.parse(path).getroot().iter("Problem")
    except ET.ParseError as err:
        raise DataError(f"invalid XML ({err})", path=path, line=err.position[0]) from None
    pool = []
    for problem in problems:
        fields = {tag: problem.findtext(tag) for tag in ("Body", "Question", "Answer")}
        for tag, value in fields.items():
            if value is None:
                raise DataError(f"problem {problem.get('ID')}: missing <{tag}>", path=path, field=tag)
        answer = asdiv_answer(fields["Answer"])
        if answer is not None:
            pool.append(Example(id=f"asdiv-{problem.get('ID')}",
                                question=f"{fields['Body'].strip()} {fields['Question'].strip()}", answer=answer,
                                meta={"formula": problem.findtext("Formula"),
                                      "solution_type": problem.findtext("Solution-Type")}))
    train = assemble_split("asdiv", root / "split_train.json", _read_split_file(root / "split_train.json"), pool)
    test = assemble_split("asdiv", root / "split_test.json", _read_split_file(root / "split_test.json"), pool)
    return {"train": train, "dev": pool, "test": test}


def csqa_example(rec: dict, *, path=None, line=None) -> Example:
    """One official CommonsenseQA record ({id, answerKey, question: {stem, choices}}) as an Example."""
    question = rec.get("question")
    if not isinstance(question, dict) or "stem" not in question or "choices" not in question:
        raise DataError("expected {stem, choices}", path=path, line=line, field="question")
    labels = [c.get("label") for c in question["choices"]]
    text, choices = csqa_question(question["stem"], labels, [c.get("text") for c in question["choices"]])
    if rec.get("answerKey") not in labels:
        raise DataError(f"answer key {rec.get('answerKey')!r} is not a choice label", path=path, line=line,
                        field="answerKey")
    return Example(id=f"csqa-{rec['id']}", question=text, answer=rec["answerKey"], choices=choices,
                   meta={"concept": question.get("question_concept")})


def read_csqa(data_dir: Path) -> dict[str, list[Example]]:
    """CommonsenseQA: official train (9741) split by split_train.json (8520) and dev (the other
    1221); test is the official dev set (1221)."""
    root = data_dir / "csqa"

    def read(path: Path) -> list[Example]:
        return [csqa_example(rec, path=path, line=line)
                for line, rec in read_jsonl(path, required=("id", "answerKey", "question"))]

    pool = read(root / "train_rand_split.jsonl")
    train = assemble_split("csqa", root / "split_train.json", _read_split_file(root / "split_train.json"), pool)
    return {"train": train, "dev": pool, "test": read(root / "dev_rand_split.jsonl")}


def read_multiarith(data_dir: Path) -> dict[str, list[Example]]:
    """MultiArith: all 600 problems form the test split."""
    path = data_dir / "multiarith" / "MultiArith.json"
    test = []
    for number, rec in enumerate(read_json(path), start=1):
        for field in ("iIndex", "sQuestion", "lSolutions"):
            if field not in rec:
                raise DataError(f"item {number}: missing required field", path=path, field=field)
        test.append(Example(id=f"multiarith-{rec['iIndex']}", question=rec["sQuestion"].strip(),
                            answer=numeric_answer(rec["lSolutions"][0], path=path, field="lSolutions"),
                            meta={"equations": rec.get("lEquations")}))
    return {"test": test}


_READERS: dict[str, Callable[[Path], dict[str, list[Example]]]] = {
    "gsm8k": read_gsm8k, "svamp": read_svamp, "asdiv": read_asdiv, "csqa": read_csqa, "multiarith": read_multiarith,
}


def split_counts(dataset: str | Path, data_dir: str | Path | None = None) -> dict[str, int]:
    """Number of examples in each split of a built-in data set or a directory data set."""
    name = str(dataset).lower()
    if name in BUILTIN_SPLITS:
        return {split: len(load_examples(name, split, data_dir)) for split in BUILTIN_SPLITS[name]}
    path = Path(dataset)
    return {p.stem: len(read_generic(p)) for p in sorted(path.glob("*.jsonl"))}

