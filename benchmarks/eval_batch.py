"""Evaluation batch size: does generating more questions at a time change any prediction, and how much
time does it save?

    python benchmarks/eval_batch.py RUN/stages [MORE/stages ...] --batch-size 150 [--time] [--max-evals N]

For every finished eval stage in the given stage stores (`kpod run` writes them), the stage's student
generates its questions again at --batch-size, and each continuation is compared with the stored
prediction. With --time, each evaluation is also generated again at the batch size the stage was
computed with, right before, so the two timings are taken side by side. Prints the figures and adds
them to benchmarks/results/eval_batch.json under the command that produced them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from kpod.data.loaders import load_examples
from kpod.data.prompts import question_prompt
from kpod.eval.generate import generate
from kpod.io import read_json, read_jsonl, write_json
from kpod.models.loading import load_model
from kpod.pipeline.stages import computing_environment

RESULTS = Path(__file__).parent / "results" / "eval_batch.json"


def eval_stages(stores: list[Path]) -> list[Path]:
    return [ev for store in stores for ev in sorted(store.glob("eval-*")) if (ev / ".done").exists()]


def timed_generate(model, prompts: list[str], max_new_tokens: int, batch_size: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    texts = generate(model.model, model.tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                     desc=f"batch {batch_size}")
    return texts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+", type=Path, help="stage directories (RUN/stages)")
    parser.add_argument("--batch-size", type=int, default=150)
    parser.add_argument("--time", action="store_true", help="also time the stored batch size, side by side")
    parser.add_argument("--max-evals", type=int, help="only the first N eval stages")
    args = parser.parse_args()
    stages = eval_stages(args.stores)[: args.max_evals]
    rows = []
    for ev in stages:
        store, key = ev.parent, read_json(ev / "stage.json")["key"]
        train = store / key["train"]
        data_name = read_json(train / "stage.json")["key"]["data"]  # a stage of this store or of another given one
        data = next(d for d in [store / data_name, *(other / data_name for other in args.stores)] if d.exists())
        examples = load_examples(str(data / f"{key['set'].replace(':', '_')}.jsonl"))[: key["limit"]]
        prompts = [question_prompt(ex.question) for ex in examples]
        stored = [record["generated"] for _, record in read_jsonl(ev / "predictions.jsonl", ["generated"])]
        model = load_model(str(train / "final"), dtype=torch.float32)
        row = {"stage": str(ev), "stored_batch_size": key["eval"]["batch_size"], "questions": len(prompts)}
        if args.time:
            _, row["stored_batch_seconds"] = timed_generate(model, prompts, key["eval"]["max_new_tokens"],
                                                            key["eval"]["batch_size"])
        texts, row["seconds"] = timed_generate(model, prompts, key["eval"]["max_new_tokens"], args.batch_size)
        row["differing"] = sum(a != b for a, b in zip(texts, stored))
        rows.append(row)
        print(f"{ev.name}: {row['differing']} of {row['questions']} differ")
    summary = {"command": "python benchmarks/eval_batch.py " + " ".join(map(str, args.stores))
               + f" --batch-size {args.batch_size}" + (" --time" if args.time else "")
               + (f" --max-evals {args.max_evals}" if args.max_evals else ""),
               "environment": computing_environment(), "batch_size": args.batch_size, "evaluations": len(rows),
               "predictions": sum(r["questions"] for r in rows), "differing": sum(r["differing"] for r in rows),
               "seconds": round(sum(r["seconds"] for r in rows), 1), "runs": rows}
    if args.time:
        summary["stored_batch_seconds"] = round(sum(r["stored_batch_seconds"] for r in rows), 1)
    print(f"{summary['evaluations']} evaluations, {summary['predictions']} predictions: {summary['differing']} "
          f"differ at batch {args.batch_size}; {summary['seconds']} s"
          + (f" (stored batch sizes: {summary['stored_batch_seconds']} s)" if args.time else ""))
    results = read_json(RESULTS) if RESULTS.exists() else {}
    results[summary["command"]] = summary
    write_json(RESULTS, results)


if __name__ == "__main__":
    main()
