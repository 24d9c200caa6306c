"""Plain CoT distillation on the default testbed: the baseline every better method must beat.

For each seed: the student is the testbed's pre-trained causal base model (`kpod base-model`), fine-tuned
with the simplest correct loop (cross-entropy on the rationale + answer tokens given
`question_prompt(q)`, uniform token weights, full rationale from the start, teacher rationales with a
wrong final answer filtered out), then greedy-decoded on test and the out-of-distribution test and
scored by exact integer match of the number after "Therefore, the answer is".

By default the testbed (`kpod data synth`) and the base model are built once with seed 0 (as `make demo`
does) and the seeds vary the student's batch order; `--vary-data` rebuilds both for every seed.

    python benchmarks/testbed_baseline.py --seeds 0 1 2
writes benchmarks/results/testbed_baseline.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

import torch

from kpod.config import load_config
from kpod.data.prompts import ANSWER_TRIGGER, question_prompt
from kpod.data.synth import SynthConfig, write_testbed
from kpod.io import read_jsonl, write_json
from kpod.models.loading import load_model
from kpod.models.pretrain import BaseModelConfig, build_base_models
from kpod.progress import progress

ANSWER_RE = re.compile(re.escape(ANSWER_TRIGGER) + r"\s*(-?\d+)")
RESULTS = Path(__file__).resolve().parent / "results" / "testbed_baseline.json"


def read_split(data: Path, split: str) -> list[dict]:
    return [record for _, record in read_jsonl(data / f"{split}.jsonl", required=("question", "answer"))]


def said_answer(text: str) -> int | None:
    """The integer after the last "Therefore, the answer is", or None."""
    found = ANSWER_RE.findall(text)
    return int(found[-1]) if found else None


def encode(tokenizer, record: dict) -> tuple[list[int], list[int]]:
    """Input ids of prompt + " " + rationale + EOS, and labels that mask the prompt with -100."""
    prompt = tokenizer(question_prompt(record["question"]), add_special_tokens=False)["input_ids"]
    target = tokenizer(" " + record["rationale"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt + target, [-100] * len(prompt) + target


def batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random, pad_id: int):
    """Shuffled batches of similar length (less padding), right-padded."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    for group in groups:
        width = max(len(encoded[i][0]) for i in group)
        ids = torch.full((len(group), width), pad_id)
        labels = torch.full((len(group), width), -100)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            n = len(encoded[i][0])
            ids[row, :n] = torch.tensor(encoded[i][0])
            labels[row, :n] = torch.tensor(encoded[i][1])
            mask[row, :n] = 1
        yield ids, labels, mask


def finetune(model, tokenizer, records: list[dict], *, epochs: int, batch_size: int, lr: float,
             seed: int) -> tuple[float, float]:
    """Plain CoT distillation: mean token cross-entropy on rationale + answer; returns (wall, CPU) seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    encoded = [encode(tokenizer, r) for r in records]
    total = epochs * math.ceil(len(encoded) / batch_size)
    warmup = max(1, total // 20)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    model.train()
    bar = progress(total=total, desc=f"baseline seed {seed}", unit="step")
    for _ in range(epochs):
        for ids, labels, mask in batches(encoded, batch_size, rng, tokenizer.pad_token_id):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return time.perf_counter() - start, time.process_time() - cpu


@torch.inference_mode()
def accuracy(model, tokenizer, records: list[dict], *, batch_size: int, max_new_tokens: int) -> float:
    """Greedy decoding (left padding, KV cache); exact integer match of the stated answer."""
    tokenizer.padding_side = "left"
    order = sorted(range(len(records)), key=lambda i: len(records[i]["question"]))
    correct = 0
    for start in progress(range(0, len(order), batch_size), desc="generate", unit="batch"):
        group = [records[i] for i in order[start:start + batch_size]]
        enc = tokenizer([question_prompt(r["question"]) for r in group], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        correct += sum(said_answer(t) == int(r["answer"]) for t, r in zip(texts, group))
    tokenizer.padding_side = "right"
    return correct / len(records)


def run_seed(data: Path, base: Path, seed: int, args) -> dict:
    """Train and score one student; the result is kept in WORK/result-seed<N>.json, and reused when there."""
    cached = args.work / f"result-seed{seed}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    train = [r for r in read_split(data, "train") if said_answer(r["rationale"]) == int(r["answer"])]
    loaded = load_model(str(base / "causal"))
    seconds, cpu = finetune(loaded.model, loaded.tokenizer, train, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, seed=seed)
    result = {"seed": seed, "train_examples": len(train), "train_seconds": round(seconds, 1),
              "train_cpu_seconds": round(cpu, 1), "load_average": os.getloadavg()[0]}
    start = time.perf_counter()
    for split, budget in (("test", args.max_new_tokens), ("test_ood", 2 * args.max_new_tokens)):
        records = read_split(data, split)[: args.eval_size]
        result[split] = accuracy(loaded.model, loaded.tokenizer, records, batch_size=64, max_new_tokens=budget)
    result["eval_seconds"] = round(time.perf_counter() - start, 1)
    write_json(cached, result)
    print(json.dumps(result), flush=True)
    return result


def summary(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "values": [round(v, 4) for v in values]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, default=Path("runs/testbed_baseline"))
    parser.add_argument("--vary-data", action="store_true", help="rebuild testbed and base model per seed")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-size", type=int, default=None, help="score only the first N of each test split")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="test budget; the OOD test gets twice")
    parser.add_argument("--synth", nargs="*", default=[], metavar="KEY=VALUE", help="SynthConfig overrides")
    parser.add_argument("--base", nargs="*", default=[], metavar="KEY=VALUE", help="BaseModelConfig overrides")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once, each in its own process")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    setup, tasks = {}, []
    for seed in args.seeds:
        data_seed = seed if args.vary_data else 0
        data, base = args.work / f"testbed-{data_seed}", args.work / f"base-{data_seed}"
        if not (data / "test_ood.jsonl").exists():
            t = time.perf_counter()
            write_testbed(data, load_config(SynthConfig, overrides=[*args.synth, f"seed={data_seed}"]))
            setup[f"synth_seconds_{data_seed}"] = round(time.perf_counter() - t, 1)
        if not (base / "causal").exists():
            t = time.perf_counter()
            build_base_models(data, base, load_config(
                BaseModelConfig, overrides=[*args.base, f"seed={data_seed}", "skip_seq2seq=true"]))
            setup[f"base_model_causal_seconds_{data_seed}"] = round(time.perf_counter() - t, 1)
        tasks.append((data, base, seed, args))
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            runs = pool.starmap(run_seed, tasks)
    else:
        runs = [run_seed(*task) for task in tasks]
    report = {
        "command": "python benchmarks/testbed_baseline.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": os.getloadavg(),
        "test_accuracy": summary([r["test"] for r in runs]),
        "ood_accuracy": summary([r["test_ood"] for r in runs]),
        "runs": runs,
        "setup": setup,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("test_accuracy", "ood_accuracy", "wall_seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
