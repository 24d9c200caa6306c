"""The built-in benchmarks from the Hugging Face hub (`load_examples(name, split)` with no data_dir).

| name | hub data set | hub splits used |
|---|---|---|
| gsm8k | openai/gsm8k, config "main" | train (7473), test (1319) |
| svamp | ChilleD/SVAMP | train + test (all 1000, with SVAMP's "ID") |
| asdiv | EleutherAI/asdiv | validation (all 2305, in ASDiv.xml's order) |
| csqa | tau/commonsense_qa | train (9741), validation (1221) |
| multiarith | ChilleD/MultiArith | train + test (all 600) |

The hub copies are split (and for SVAMP shuffled) the hub's own way, so the KPOD splits (Table 4) are rebuilt from
`splits.json` beside this module: for each data set the ordered question keys (8 hex of the SHA-1
of the normalized question) of every split a reference file defines, written from the raw files by
`write_split_manifest` and checked against them by the tests. Dev splits are the remainder, as
with the raw files. Example ids equal the raw-file path's: SVAMP and CSQA rows carry their source
ids, ASDiv ids come from the row position ("nluds-0001" is row 0), MultiArith's iIndex comes from
the manifest (in source order for the 20 questions MultiArith repeats), GSM8K's are content ids
either way.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from kpod.data.example import Example
from kpod.data.loaders import (asdiv_answer, check_split, content_id, csqa_example,
                               load_examples, normalize_question, numeric_answer)
from kpod.errors import DataError
from kpod.io import write_text

MANIFEST = Path(__file__).with_name("splits.json")
HUB_SOURCES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "gsm8k": ("openai/gsm8k", "main", ("train", "test")),
    "svamp": ("ChilleD/SVAMP", None, ("train", "test")),
    "asdiv": ("EleutherAI/asdiv", None, ("validation",)),
    "csqa": ("tau/commonsense_qa", None, ("train", "validation")),
    "multiarith": ("ChilleD/MultiArith", None, ("train", "test")),
}
# The splits each reference file defines (dev is the remainder of the pool they come from).
_LISTED = {"gsm8k": ("test",), "svamp": ("train", "test"), "asdiv": ("train", "test"), "csqa": ("train",)}


def question_key(question: str) -> str:
    return hashlib.sha1(normalize_question(question).encode("utf-8")).hexdigest()[:8]


def load_hub_examples(name: str, split: str) -> list[Example]:
    """One KPOD split of a built-in data set, downloaded with `datasets.load_dataset`."""
    from datasets import load_dataset

    check_split(name, split)
    repo, config, hub_splits = HUB_SOURCES[name]
    rows = {s: list(load_dataset(repo, config, split=s)) for s in hub_splits}
    return hub_splits_to_examples(name, rows, read_manifest())[split]


def read_manifest(path: Path = MANIFEST) -> dict:
    if not path.exists():
        raise DataError("split manifest missing from the kpod package", path=path)
    return json.loads(path.read_text(encoding="utf-8"))


def hub_splits_to_examples(name: str, rows: dict[str, list[dict]], manifest: dict) -> dict[str, list[Example]]:
    """Map hub rows ({hub split: [row, ...]}) to the KPOD splits of data set `name`."""
    where = f"{HUB_SOURCES[name][0]} rows"
    try:
        if name == "gsm8k":
            train = [_gsm8k_row(r) for r in rows["train"]]
            return {"train": train, **_split_pool(name, [_gsm8k_row(r) for r in rows["test"]], manifest)}
        if name == "svamp":
            pool = [Example(id=f"svamp-{r['ID']}", question=f"{r['Body'].strip()} {r['Question'].strip()}",
                            answer=numeric_answer(r["Answer"], path=where),
                            meta={"equation": r.get("Equation"), "type": r.get("Type")})
                    for r in sorted(rows["train"] + rows["test"], key=_svamp_number)]
            return _split_pool(name, pool, manifest)
        if name == "asdiv":
            pool = []
            for i, r in enumerate(rows["validation"]):
                answer = asdiv_answer(r["answer"])
                if answer is not None:
                    pool.append(Example(id=f"asdiv-nluds-{i + 1:04d}",
                                        question=f"{r['body'].strip()} {r['question'].strip()}", answer=answer,
                                        meta={"formula": r.get("formula"), "solution_type": r.get("solution_type")}))
            return _split_pool(name, pool, manifest)
        if name == "csqa":
            pool = [csqa_example(_csqa_official(r), path=where) for r in rows["train"]]
            return {**_split_pool(name, pool, manifest),
                    "test": [csqa_example(_csqa_official(r), path=where) for r in rows["validation"]]}
        ids = {key: list(values) for key, values in manifest["multiarith"]["ids"].items()}
        test = []
        for r in rows["train"] + rows["test"]:
            source_ids = ids.get(question_key(r["question"]))
            test.append(Example(id=f"multiarith-{source_ids.pop(0)}" if source_ids else content_id("multiarith", r["question"]),
                                question=r["question"].strip(), answer=numeric_answer(r["final_ans"], path=where)))
        return {"test": test}
    except KeyError as err:
        raise DataError("hub row lacks a required column", path=where, field=str(err.args[0])) from None


def _svamp_number(row: dict) -> tuple:
    """SVAMP.json lists problems by the number in their ID ("chal-12"); the hub copy is shuffled."""
    tail = str(row["ID"]).rsplit("-", 1)[-1]
    return (0, int(tail), "") if tail.isdigit() else (1, 0, str(row["ID"]))


def _gsm8k_row(row: dict) -> Example:
    answer = numeric_answer(row["answer"].rsplit("####", 1)[-1], path="openai/gsm8k rows")
    return Example(id=content_id("gsm8k", row["question"]), question=row["question"].strip(), answer=answer,
                   meta={"solution": row["answer"]})


def _csqa_official(row: dict) -> dict:
    """A tau/commonsense_qa row in the official jsonl layout."""
    choices = [{"label": label, "text": text} for label, text in zip(row["choices"]["label"], row["choices"]["text"])]
    return {"id": row["id"], "answerKey": row["answerKey"],
            "question": {"stem": row["question"], "choices": choices, "question_concept": row.get("question_concept")}}


def _split_pool(name: str, pool: list[Example], manifest: dict) -> dict[str, list[Example]]:
    """Take the listed splits out of `pool` in manifest order; the rest is dev."""
    index: dict[str, list[Example]] = defaultdict(list)
    for ex in pool:
        index[question_key(ex.question)].append(ex)
    out = {}
    for split in _LISTED[name]:
        picked = []
        for key in manifest[name][split]:
            if not index.get(key):
                raise DataError(f"the hub copy lacks a question of the KPOD {split} split (key {key})",
                                path=HUB_SOURCES[name][0], field=split)
            picked.append(index[key].pop(0))
        out[split] = picked
    chosen = {id(ex) for split in out.values() for ex in split}
    out["dev"] = [ex for ex in pool if id(ex) not in chosen]
    return out


def split_manifest(data_dir: str | Path) -> dict:
    """The manifest `splits.json` holds, computed from the raw files under `data_dir`."""
    manifest: dict = {}
    for name, splits in _LISTED.items():
        manifest[name] = {split: _keys(load_examples(name, split, data_dir)) for split in splits}
    ids: dict[str, list[str]] = defaultdict(list)
    for ex in load_examples("multiarith", "test", data_dir):
        ids[question_key(ex.question)].append(ex.id.removeprefix("multiarith-"))
    manifest["multiarith"] = {"ids": dict(ids)}
    return manifest


def _keys(examples: Iterable[Example]) -> list[str]:
    return [question_key(ex.question) for ex in examples]


def write_split_manifest(data_dir: str | Path, path: Path = MANIFEST) -> None:
    """Regenerate `splits.json` from the raw files (done once; the tests check it stays in sync)."""
    write_text(path, json.dumps(split_manifest(data_dir), separators=(",", ":")) + "\n")

