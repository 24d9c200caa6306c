"""KPDD-CoT and KPDD-PoT against plain CoT distillation on the testbed, with the same base student.

For each seed, from the testbed (`kpod data synth`) and its pre-trained base student (`kpod
base-model`), built once with seed 0 unless --vary-data:
- plain CoT distillation: question_prompt(q) -> rationale + answer sentence (teacher rationales with a
  wrong answer filtered out), kpod's trainer with uniform weights and no curriculum, scored by
  `kpod.eval.evaluate` (flexible extraction);
- KPDD: teacher data from the testbed's key points and programs (`kpod.kpdd.data`), KPDD-Key and one
  KPDD-Solve per mode (or one shared student), chained inference, PoT programs run in the sandbox,
  with the error analysis of every wrong answer.
All students start from the same base model and use the same lr, batch size and epochs (the KPDD
paper's 5e-4, 32, 10 by default). Test and OOD accuracy: mean and std over the seeds.

    python benchmarks/kpdd.py --seeds 0 1 2
writes benchmarks/results/kpdd.json (after every seed, so a cut-off run keeps what it finished).
Seeds are independent, so they can run in separate processes (`--seeds 2 --out s2.json`) and be
combined afterwards: `python benchmarks/kpdd.py --merge s01.json s2.json` (settings must match).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from kpod.data.answers import answers_match, extract_answer
from kpod.data.example import rationale_items
from kpod.data.loaders import load_examples
from kpod.data.synth import SynthConfig, write_testbed
from kpod.io import read_jsonl, write_json
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.data import build_teacher_data
from kpod.kpdd.formats import calculation_error
from kpod.kpdd.pipeline import evaluate_students, train_students
from kpod.models.pretrain import BaseModelConfig, build_base_models

RESULTS = Path(__file__).resolve().parent / "results" / "kpdd.json"
SPLITS = ("test", "test_ood")
METHODS = ("cot-distill", "kpdd-cot", "kpdd-pot")


def plain_cot_distillation(train, base: str, args, seed: int, out: Path) -> str:
    """The baseline: kpod's trainer on the correct teacher rationales, no weights, no curriculum."""
    from kpod.distill.config import TrainConfig
    from kpod.distill.source import RationaleSource
    from kpod.distill.trainer import Trainer

    correct = [ex for ex in train if answers_match(extract_answer(ex.rationales[0], mode="strict"), ex.answer)]
    cfg = TrainConfig(student=base, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                      max_length=args.max_length, report_to="none", use_token_weights=False, progressive=False)
    return str(Trainer(cfg, out).fit(RationaleSource(rationale_items(correct, max_per_question=1))))


def baseline_errors(predictions: Path) -> dict:
    """Wrong answers of the baseline: calculation (an equation that does not hold) or other."""
    counts = Counter()
    for _, record in read_jsonl(predictions):
        if not record["correct"]:
            counts["calculation" if calculation_error(record["generated"]) else "other"] += 1
    return {"calculation": counts["calculation"], "other": counts["other"]}


def run_seed(data: Path, base: str, seed: int, args) -> dict:
    from kpod.eval.evaluate import evaluate

    out = args.work / f"seed-{seed}"
    train = load_examples(data, "train")[: args.train_size]
    tests = {split: load_examples(data, split)[: args.eval_size] for split in SPLITS}
    result: dict = {"seed": seed, "train_questions": len(train), "eval_questions": {s: len(v) for s, v in tests.items()}}
    torch.manual_seed(seed)
    if "cot-distill" in args.methods:
        start = time.perf_counter()
        student = plain_cot_distillation(train, base, args, seed, out / "cot-distill")
        result["cot-distill"] = {"train_seconds": round(time.perf_counter() - start, 1)}
        start = time.perf_counter()
        for split, examples in tests.items():
            metrics = evaluate(student, examples, out / "cot-distill" / "eval" / split,
                               max_new_tokens=args.max_new_tokens, batch_size=args.eval_batch_size)
            result["cot-distill"][split] = {"accuracy": metrics["accuracy"], "n": metrics["n"],
                                            "errors": baseline_errors(out / "cot-distill" / "eval" / split /
                                                                      "predictions.jsonl")}
        result["cot-distill"]["eval_seconds"] = round(time.perf_counter() - start, 1)
        _progress(result)
    modes = [m.split("-")[1] for m in args.methods if m.startswith("kpdd-")]
    if modes:
        cfg = KpddConfig(out=out / "kpdd", student=base, mode=modes[0] if len(modes) == 1 else "both", lr=args.lr,
                         batch_size=args.batch_size, epochs=args.epochs, seed=seed, max_length=args.max_length,
                         shared_student=args.shared_student, key_max_new_tokens=args.max_new_tokens,
                         solve_max_new_tokens=args.max_new_tokens, eval_batch_size=args.eval_batch_size,
                         sandbox_workers=args.sandbox_workers)
        start = time.perf_counter()
        records, stats = build_teacher_data(train, cfg, cfg.out)
        result["kpdd_data"] = stats
        students = train_students(records, cfg, cfg.out)
        train_seconds = round(time.perf_counter() - start, 1)
        for split, examples in tests.items():
            start = time.perf_counter()
            metrics = evaluate_students(examples, students, cfg.modes, cfg, cfg.out / "eval" / split)
            for mode, values in metrics.items():
                entry = result.setdefault(f"kpdd-{mode}", {"train_seconds_all_students": train_seconds})
                entry[split] = values
            result[f"kpdd_eval_seconds_{split}"] = round(time.perf_counter() - start, 1)
    result["load_average"] = os.getloadavg()[0]
    return result


def _progress(result: dict) -> None:
    print(json.dumps(result), flush=True)


def summary(runs: list[dict], method: str, split: str) -> dict | None:
    values = [r[method][split]["accuracy"] for r in runs if method in r and split in r[method]]
    if not values:
        return None
    return {"mean": round(statistics.mean(values), 4), "std": round(statistics.stdev(values), 4) if len(values) > 1
            else 0.0, "values": [round(v, 4) for v in values]}


def error_totals(runs: list[dict], method: str, split: str) -> dict:
    totals: Counter = Counter()
    for run in runs:
        totals.update(run.get(method, {}).get(split, {}).get("errors", {}))
    return dict(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--work", type=Path, default=Path("runs/kpdd_bench"))
    parser.add_argument("--vary-data", action="store_true", help="rebuild testbed and base model per seed")
    parser.add_argument("--student", choices=("causal", "seq2seq"), default="causal", help="base student kind")
    parser.add_argument("--shared-student", action="store_true", help="one KPDD student for both tasks")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--train-size", type=int, default=None, help="train on the first N testbed questions")
    parser.add_argument("--eval-size", type=int, default=None, help="score only the first N of each test split")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--sandbox-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="combine result files of separate seeds into --out, and train nothing")
    args = parser.parse_args(argv)
    if args.merge:
        report = merge_reports(args.merge, args.out)
        print(json.dumps({k: report[k] for k in ("seeds_finished", "accuracy", "errors")}, indent=2))
        return 0
    torch.set_num_threads(args.threads)
    os.environ.setdefault("KPOD_NO_PROGRESS", "1")
    command = "python benchmarks/kpdd.py " + " ".join(argv if argv is not None else sys.argv[1:])

    start = time.perf_counter()
    runs, setup = [], {}
    for seed in args.seeds:
        data_seed = seed if args.vary_data else 0
        data, base = args.work / f"testbed-{data_seed}", args.work / f"base-{data_seed}"
        if not (data / "test_ood.jsonl").exists():
            t = time.perf_counter()
            write_testbed(data, SynthConfig(seed=data_seed))
            setup[f"synth_seconds_{data_seed}"] = round(time.perf_counter() - t, 1)
        if not (base / args.student).exists():
            t = time.perf_counter()
            build_base_models(data, base, BaseModelConfig(seed=data_seed, skip_seq2seq=args.student == "causal"))
            setup[f"base_model_seconds_{data_seed}"] = round(time.perf_counter() - t, 1)
        runs.append(run_seed(data, str(base / args.student), seed, args))
        report = build_report(command, settings_of(args), runs, setup, round(time.perf_counter() - start, 1))
        write_json(args.out, report)
        print(json.dumps({k: report[k] for k in ("seeds_finished", "accuracy", "errors", "wall_seconds")}, indent=2),
              flush=True)
    return 0


def settings_of(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "merge"}


def build_report(command: str | list[str], settings: dict, runs: list[dict], setup: dict, wall_seconds: float) -> dict:
    return {
        "command": command, "settings": settings,
        "seeds_finished": [r["seed"] for r in runs],
        "accuracy": {m: {s: summary(runs, m, s) for s in SPLITS} for m in settings["methods"]},
        "errors": {m: {s: error_totals(runs, m, s) for s in SPLITS} for m in settings["methods"]},
        "runs": runs, "setup": setup, "torch_threads": torch.get_num_threads(), "wall_seconds": wall_seconds,
    }


def merge_reports(paths: list[Path], out: Path) -> dict:
    """One report from several result files of the same settings (seeds run in separate processes)."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    ignored = ("seeds", "out")
    settings = [{k: v for k, v in r["settings"].items() if k not in ignored} for r in reports]
    if any(s != settings[0] for s in settings[1:]):
        raise SystemExit(f"cannot merge {', '.join(map(str, paths))}: their settings differ")
    runs = sorted((run for r in reports for run in r["runs"]), key=lambda run: run["seed"])
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"cannot merge: seed repeated in {seeds}")
    merged_settings = {**reports[0]["settings"], "seeds": seeds, "out": str(out)}
    setup = {k: v for r in reports for k, v in r.get("setup", {}).items()}
    report = build_report([r["command"] for r in reports], merged_settings, runs, setup,
                          round(sum(r["wall_seconds"] for r in reports), 1))
    report["merged_from"] = [str(p) for p in paths]
    write_json(out, report)
    return report


if __name__ == "__main__":
    sys.exit(main())
