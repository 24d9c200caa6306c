"""KPDD's two students, their chained inference, and the error analysis.

KPDD-Key learns question -> key points; KPDD-Solve learns question + key points -> a CoT rationale
(KPDD-CoT) or a program (KPDD-PoT). Both are any Hugging Face causal or seq2seq model, trained by
kpod's trainer on plain (key, prompt, target) sequences (`kpod.distill`); with `shared_student` one
model learns both tasks (the prompts tell them apart). At inference the key points the first student
generates are the second student's hint, and programs run in the sandbox.

Error analysis of each wrong answer (after DUP and the KPDD paper; the exact rules are kpod's
assumptions, see docs/kpdd.md), first match wins:
- understanding: the generated key points do not parse, or their numbers differ from the reference
  key points' (or, without a reference, hold a number the question does not);
- program_failure (PoT): the program raised an error, timed out or returned nothing;
- calculation (CoT): an equation of the rationale does not hold when recomputed;
- other.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from kpod.data.answers import answers_match, extract_answer, normalize_number
from kpod.data.example import Example
from kpod.distill.encoding import TrainSequence
from kpod.eval.generate import generate
from kpod.io import read_json, write_json, write_jsonl
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.data import KpddRecord
from kpod.kpdd.formats import (KeyPoints, calculation_error, key_prompt, parse_key_points, parse_program,
                               solve_prompt)
from kpod.kpdd.sandbox import SandboxLimits, run_programs
from kpod.models.loading import LoadedModel, default_device, load_model

STUDENTS_FILE = "students.json"
ERROR_TYPES = ("understanding", "program_failure", "calculation", "other")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


# ---------------------------------------------------------------------------------------------------
# Training


def key_sequences(records: list[KpddRecord]) -> list[TrainSequence]:
    """KPDD-Key's data: question -> key points, one sequence per distinct (question, key points)."""
    seen, out = set(), []
    for record in records:
        target = record.key_points.render()
        if (record.example_id, target) not in seen:
            seen.add((record.example_id, target))
            out.append(TrainSequence(f"key:{record.key}", key_prompt(record.question), target))
    return out


def solve_sequences(records: list[KpddRecord], mode: str) -> list[TrainSequence]:
    """KPDD-Solve's data for one mode: question + key points -> rationale or program."""
    return [TrainSequence(f"{mode}:{r.key}", solve_prompt(r.question, r.key_points.render(), mode), r.target)
            for r in records if r.mode == mode]


def train_student(sequences: list[TrainSequence], base: str, cfg: KpddConfig, out_dir: str | Path) -> Path:
    """Fine-tune `base` on `sequences` with kpod's trainer (uniform token weights, no curriculum);
    returns the directory of the trained model."""
    from kpod.distill.config import TrainConfig
    from kpod.distill.source import StaticSource
    from kpod.distill.trainer import Trainer

    train_cfg = TrainConfig(student=base, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                            max_length=cfg.max_length, seed=cfg.seed, report_to="none", use_token_weights=False,
                            progressive=False)
    return Trainer(train_cfg, out_dir).fit(StaticSource(sequences))


def train_students(records: list[KpddRecord], cfg: KpddConfig, out_dir: str | Path) -> dict[str, str]:
    """Train KPDD-Key and one KPDD-Solve per mode (or one shared student); writes OUT/students.json
    {"key": dir, "cot": dir, "pot": dir} and returns it."""
    out_dir = Path(out_dir)
    modes = [m for m in cfg.modes if any(r.mode == m for r in records)]
    if cfg.shared_student:
        sequences = key_sequences(records) + [s for m in modes for s in solve_sequences(records, m)]
        path = str(train_student(sequences, cfg.base_student("solve"), cfg, out_dir / "shared"))
        students = {"key": path, **{m: path for m in modes}}
    else:
        students = {"key": str(train_student(key_sequences(records), cfg.base_student("key"), cfg, out_dir / "key"))}
        for mode in modes:
            students[mode] = str(train_student(solve_sequences(records, mode), cfg.base_student("solve"), cfg,
                                               out_dir / f"solve-{mode}"))
    write_json(out_dir / STUDENTS_FILE, students)
    return students


def read_students(out_dir: str | Path) -> dict[str, str]:
    return read_json(Path(out_dir) / STUDENTS_FILE)


# ---------------------------------------------------------------------------------------------------
# Inference


def _numbers(text: str) -> Counter:
    return Counter(n for n in (normalize_number(m) for m in _NUMBER.findall(text)) if n is not None)


def understanding_error(generated: KeyPoints | None, reference: KeyPoints | None, question: str) -> bool:
    """Whether generated key points misread the problem: unparsable, or their numbers differ from the
    reference key points' (as multisets), or, with no reference, hold a number absent from the question."""
    if generated is None or not generated.facts:
        return True
    numbers = _numbers(" ".join([generated.core_question, *generated.facts]))
    if reference is not None:
        return numbers != _numbers(" ".join([reference.core_question, *reference.facts]))
    return bool(set(numbers) - set(_numbers(question)))


def classify_error(record: dict, reference: KeyPoints | None) -> str | None:
    """The error type of one prediction record (None when it is correct)."""
    if record["correct"]:
        return None
    if understanding_error(parse_key_points(record["key_points"]), reference, record["question"]):
        return "understanding"
    if record["mode"] == "pot" and not record["program_ok"]:
        return "program_failure"
    if record["mode"] == "cot" and calculation_error(record["solution"]) is not None:
        return "calculation"
    return "other"


def reference_key_points(example: Example) -> KeyPoints | None:
    return KeyPoints.from_json(example.kpdd) if example.kpdd and example.kpdd.get("core_question") else None


def chained_predict(examples: list[Example], key_model: LoadedModel, solve_model: LoadedModel, mode: str, *,
                    key_max_new_tokens: int = 160, solve_max_new_tokens: int = 256, batch_size: int = 32,
                    limits: SandboxLimits | None = None, workers: int = 2,
                    key_points: list[str] | None = None) -> list[dict]:
    """Generate key points, then solutions from them, then answers (PoT: by running the programs).
    `key_points` reuses key points generated before (they do not depend on the mode)."""
    if key_points is None:
        key_points = generated_key_points(examples, key_model, key_max_new_tokens, batch_size)
    prompts = [solve_prompt(ex.question, kp, mode) for ex, kp in zip(examples, key_points)]
    solutions = generate(solve_model.model, solve_model.tokenizer, prompts, max_new_tokens=solve_max_new_tokens,
                         batch_size=batch_size, desc=f"solve ({mode})")
    if mode == "pot":
        results = run_programs([parse_program(s) for s in solutions], limits, workers, desc="run programs")
        answers = [(r.answer if r.ok else None, r.ok, r.error) for r in results]
    else:
        answers = [(extract_answer(s, mode="flexible"), None, None) for s in solutions]
    records = []
    for ex, kp, solution, (pred, ok, error) in zip(examples, key_points, solutions, answers):
        record = {"id": ex.id, "question": ex.question, "gold": ex.answer, "mode": mode, "key_points": kp,
                  "solution": solution, "pred": pred, "correct": answers_match(pred, ex.answer),
                  "program_ok": ok, "program_error": error}
        reference = reference_key_points(ex)
        parsed = parse_key_points(kp)
        record["key_points_ok"] = not understanding_error(parsed, reference, ex.question)
        record["error_type"] = classify_error(record, reference)
        records.append(record)
    return records


def generated_key_points(examples: list[Example], key_model: LoadedModel, max_new_tokens: int = 160,
                         batch_size: int = 32) -> list[str]:
    return generate(key_model.model, key_model.tokenizer, [key_prompt(ex.question) for ex in examples],
                    max_new_tokens=max_new_tokens, batch_size=batch_size, desc="key points")


def kpdd_metrics(records: list[dict]) -> dict:
    """Accuracy, the error-type breakdown of wrong answers, and key-point / program success rates."""
    n = len(records)
    errors = Counter(r["error_type"] for r in records if r["error_type"])
    metrics = {"accuracy": sum(r["correct"] for r in records) / n if n else 0.0, "n": n,
               "errors": {t: errors.get(t, 0) for t in ERROR_TYPES},
               "key_points_ok": sum(r["key_points_ok"] for r in records) / n if n else 0.0}
    programs = [r for r in records if r["mode"] == "pot"]
    if programs:
        metrics["program_ok"] = sum(bool(r["program_ok"]) for r in programs) / len(programs)
    return metrics


def evaluate_students(examples: list[Example], students: dict[str, str], modes, cfg: KpddConfig, out_dir: str | Path) -> dict:
    """Chained inference of every mode on `examples`; writes OUT/<mode>/predictions.jsonl and
    metrics.json, returns {mode: metrics}."""
    device = default_device()
    loaded: dict[str, LoadedModel] = {}

    def model(path: str) -> LoadedModel:
        if path not in loaded:
            loaded[path] = load_model(path, device=device)
        return loaded[path]

    key_points = generated_key_points(examples, model(students["key"]), cfg.key_max_new_tokens, cfg.eval_batch_size)
    out = {}
    for mode in modes:
        records = chained_predict(examples, model(students["key"]), model(students[mode]), mode,
                                  solve_max_new_tokens=cfg.solve_max_new_tokens, batch_size=cfg.eval_batch_size,
                                  limits=cfg.sandbox_limits(), workers=cfg.sandbox_workers, key_points=key_points)
        metrics = kpdd_metrics(records)
        write_jsonl(Path(out_dir) / mode / "predictions.jsonl", records)
        write_json(Path(out_dir) / mode / "metrics.json", metrics)
        out[mode] = metrics
    return out
