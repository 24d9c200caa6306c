"""Throughput of `kpod train`: the KPOD loss (token weights + progressive schedule) against plain CoT
distillation in the same run, and against TRL's SFTTrainer (defaults) on the same model and data.

    python benchmarks/train_overhead.py [--device cpu|cuda] [--examples 384] [--epochs 2] [--repeats 2]

Each measurement runs in its own process (so peak memory is its own), in the order plain, kpod, trl,
repeated; the figures are medians. On CPU each process uses one thread and the rates are tokens per
CPU-second (wall time on a shared machine mostly measures the neighbours; it is reported too). Tokens are real (non-padding) prompt + target tokens processed;
the time is the whole training call (encoding, batching, optimizer, epoch-end checkpoints for kpod),
without model loading. Writes benchmarks/results/train_overhead.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "train_overhead.json"


def prepare(work: Path, args) -> None:
    """Testbed train split, a local student, random token weights and a linear schedule."""
    from kpod.data.example import rationale_items
    from kpod.data.loaders import write_examples
    from kpod.data.prompts import answer_sentence, question_prompt
    from kpod.data.steps import split_steps
    from kpod.data.synth import SynthConfig, generate
    from kpod.models.local import ModelSize, build_local_models
    from kpod.weighting.store import TokenWeights, write_weights

    examples = generate(SynthConfig(seed=0, train_size=args.examples, dev_size=1, test_size=1, ood_size=1))["train"]
    write_examples(work / "train.jsonl", examples)
    texts = [question_prompt(ex.question) + " " + ex.rationales[0] + " " + answer_sentence(ex.answer) for ex in examples]
    size = ModelSize(hidden=args.hidden, layers=args.layers, heads=args.heads, intermediate=args.hidden * 4,
                     max_positions=1024)
    paths = build_local_models(texts, work / "models", size, vocab_size=args.vocab)
    from kpod.models.loading import load_tokenizer

    tok = load_tokenizer(str(paths["causal"]))
    items = rationale_items(examples)
    rng = np.random.default_rng(0)
    weights = {}
    for item in items:
        offsets = np.asarray(tok(item.rationale, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
        weights[item.key] = TokenWeights(offsets.reshape(-1, 2), rng.uniform(0.05, 1.0, len(offsets)))
    write_weights(work / "weights", weights)
    T = max(1, args.epochs // 2)
    steps = {}
    for item in items:
        n = len(split_steps(item.rationale).steps)
        steps[item.key] = [max(0, round((n - 1) * (1 - t / T))) for t in range(args.epochs)]
    (work / "schedule.json").write_text(json.dumps({"epochs": args.epochs, "T": T, "stages": [], "input_steps": steps,
                                                    "num_steps": {k: v[0] + 1 for k, v in steps.items()}}))


def peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_kpod(work: Path, method: str, args) -> dict:
    from kpod.curriculum.schedule import load_curriculum
    from kpod.data.loaders import load_examples
    from kpod.distill.config import TrainConfig
    from kpod.distill.train import build_source
    from kpod.distill.trainer import Trainer

    cfg = TrainConfig(student=str(work / "models" / "causal"), epochs=args.epochs, batch_size=args.batch_size,
                      lr=1e-4, log_every=10**6, seed=0, bf16="auto")
    examples = load_examples(work / "train.jsonl")
    trainer = Trainer(cfg, work / f"run-{method}-{time.time_ns()}")
    if method == "kpod":
        source = build_source(cfg, examples, trainer.tokenizer, weights=str(work / "weights"),
                              curriculum=load_curriculum(work / "schedule.json"))
    else:
        source = build_source(cfg, examples, trainer.tokenizer)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(source)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(e.length for epoch in range(args.epochs) for e in trainer.encode(source.sequences(epoch)))
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": cpu_seconds}


def run_trl(work: Path, args) -> dict:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from kpod.data.loaders import load_examples
    from kpod.data.prompts import answer_sentence, question_prompt
    from kpod.models.loading import load_model

    loaded = load_model(str(work / "models" / "causal"), dtype=torch.float32)
    examples = load_examples(work / "train.jsonl")
    data = Dataset.from_list([{"prompt": question_prompt(ex.question),
                               "completion": " " + ex.rationales[0] + " " + answer_sentence(ex.answer)} for ex in examples])
    config = SFTConfig(output_dir=str(work / "trl"), per_device_train_batch_size=args.batch_size,
                       num_train_epochs=args.epochs, learning_rate=1e-4, logging_steps=10**6, save_strategy="no",
                       report_to=[], seed=0, use_cpu=args.device == "cpu", bf16=args.device == "cuda",
                       max_length=512, disable_tqdm=True)
    trainer = SFTTrainer(model=loaded.model, args=config, train_dataset=data, processing_class=loaded.tokenizer)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * args.epochs
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": cpu_seconds}


def worker(args) -> None:
    work = Path(args.work)
    result = run_trl(work, args) if args.worker == "trl" else run_kpod(work, args.worker, args)
    result.update(method=args.worker, tokens_per_s=result["tokens"] / result["seconds"],
                  tokens_per_cpu_s=result["tokens"] / result["cpu_seconds"],
                  peak_memory_mb=round(peak_memory_mb(args.device), 1))
    print("RESULT " + json.dumps(result), flush=True)


def trl_installed() -> bool:
    try:
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--examples", type=int, default=384)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    env = {**os.environ, "KPOD_NO_PROGRESS": "1", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    if args.device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    methods = ["plain", "kpod"] + (["trl"] if trl_installed() else [])
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, args)
        passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                       if k not in ("worker", "work", "out") and v is not None]
        for _ in range(args.repeats):
            for method in methods:
                proc = subprocess.run([sys.executable, __file__, *passthrough, "--worker", method, "--work", str(work)],
                                      env=env, capture_output=True, text=True)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    raise SystemExit(f"{method} failed:\n{proc.stderr[-3000:]}")
                runs[method].append(json.loads(lines[-1][len("RESULT "):]))
                print(method, runs[method][-1], file=sys.stderr)

    def median(method: str, key: str) -> float | None:
        return round(statistics.median(r[key] for r in runs[method]), 1) if runs.get(method) else None

    # On a shared CPU, wall time mostly measures the neighbours: the ratios use CPU time (one thread).
    rate = "tokens_per_s" if args.device == "cuda" else "tokens_per_cpu_s"
    kpod, plain, trl = (median(m, rate) for m in ("kpod", "plain", "trl"))
    import torch

    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "rate": rate, "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "work")},
        "kpod_tokens_per_s": kpod, "plain_cotd_tokens_per_s": plain, "trl_sft_tokens_per_s": trl,
        "wall_tokens_per_s": {m: median(m, "tokens_per_s") for m in methods},
        "kpod_overhead_vs_plain": round(1 - kpod / plain, 4),
        "kpod_over_trl": round(kpod / trl, 3) if trl else None,
        "peak_memory_mb": {m: median(m, "peak_memory_mb") for m in methods},
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))


if __name__ == "__main__":
    main()
