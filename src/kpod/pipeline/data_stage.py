"""The data stage of `kpod run`: the train split with teacher rationales and every evaluation set,
written as generic JSONL files in one directory, with counts of what was kept and dropped."""

from __future__ import annotations

from pathlib import Path

from kpod.data.example import Example
from kpod.data.loaders import load_examples, write_examples
from kpod.data.rationales import load_with_rationales, rationale_is_correct
from kpod.errors import ConfigError
from kpod.io import write_json
from kpod.pipeline.config import TESTBED, DataSection


def keep_correct(examples: list[Example]) -> tuple[list[Example], dict]:
    """Drop teacher rationales whose final answer is wrong, and questions left with none."""
    counts = {"rationales": 0, "wrong_answer": 0, "questions_without_rationale": 0}
    kept = []
    for ex in examples:
        good = [text for text in ex.rationales if rationale_is_correct(text, ex.answer, choices=ex.choices is not None)]
        counts["rationales"] += len(ex.rationales)
        counts["wrong_answer"] += len(ex.rationales) - len(good)
        if good:
            ex.rationales = good
            kept.append(ex)
        else:
            counts["questions_without_rationale"] += 1
    counts["kept_rationales"] = sum(len(ex.rationales) for ex in kept)
    return kept, counts


def resolve_rationale_file(name: str, data_dir: str | None) -> Path:
    """A rationale file given by path, or by name inside DATA_DIR/rationales/."""
    path = Path(name)
    if not path.exists() and data_dir:
        path = Path(data_dir) / "rationales" / name
    if not path.exists():
        raise ConfigError(f"data.rationales: file not found: {name}")
    return path


def load_train(data: DataSection, out: Path, log, teacher_file: Path | None) -> tuple[list[Example], dict]:
    """The train split with its teacher rationales attached."""
    if teacher_file is not None:
        return load_examples(str(teacher_file)), {"source": f"kpod teach ({teacher_file})"}
    if data.dataset == TESTBED:
        from kpod.data.synth import write_testbed

        write_testbed(out, data.synth)
        return load_examples(str(out / "train.jsonl")), {"source": "testbed teacher"}
    train = load_examples(data.dataset, "train", data.data_dir)
    if any(ex.rationales for ex in train) and not data.rationales:
        return train, {"source": "rationales in the data set"}
    if not data.data_dir and not data.rationales:
        raise ConfigError(f"data.rationales: '{data.dataset}' has no teacher rationales; name rationale files "
                          "or set data.data_dir to a directory with rationales/")
    files = [resolve_rationale_file(name, data.data_dir) for name in data.rationales] or None
    train, reports = load_with_rationales(data.dataset, data.data_dir, files=files)
    summaries = [r.summary() for r in reports]
    for r in reports:
        log(f"[kpod] data: {r.file}: {r.matched} matched, {r.unmatched} unmatched, {r.correct} correct, "
            f"{r.incorrect} incorrect")
    return train, {"rationale_files": summaries}


def eval_file_name(eval_set: str) -> str:
    return f"{eval_set.replace(':', '_')}.jsonl"


def prepare_data(data: DataSection, out: Path, log=print, teacher_file: Path | None = None) -> dict:
    out = Path(out)
    train, report = load_train(data, out, log, teacher_file)
    train = train[: data.train_limit] if data.train_limit else train
    if data.correct_only:
        train, report["filter"] = keep_correct(train)
    else:
        train = [ex for ex in train if ex.rationales]
    write_examples(out / "train.jsonl", train)
    report["train_questions"] = len(train)
    report["eval_sets"] = {}
    for eval_set in dict.fromkeys(["dev", *data.eval_sets]):
        target = out / eval_file_name(eval_set)
        if data.dataset == TESTBED and ":" not in eval_set:
            if not target.exists():
                raise ConfigError(f"data.eval_sets: the testbed has no split '{eval_set}'")
            examples = load_examples(str(target))
        else:
            dataset, split = eval_set.split(":", 1) if ":" in eval_set else (data.dataset, eval_set)
            examples = load_examples(dataset, split, data.data_dir)
        if eval_set == "dev":
            examples = examples[: data.dev_limit]
        write_examples(target, examples)
        report["eval_sets"][eval_set] = len(examples)
    write_json(out / "data_report.json", report)
    log(f"[kpod] data: {len(train)} train questions; evaluation sets {report['eval_sets']}")
    return report
