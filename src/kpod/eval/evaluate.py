"""Evaluate a student's accuracy: greedy generation on a data set, answers scored strict and flexible.

    kpod eval --model runs/x/final --dataset gsm8k --data-dir ../shared/data --split test --out runs/x/eval

writes OUT/predictions.jsonl (one record per example: id, question, gold, generated text, the answer
extracted in each mode, correctness) and OUT/metrics.json. `accuracy` is the flexible accuracy (the
last number of the output, lm-evaluation-harness's "flexible-extract"); `accuracy_strict` counts only
answers stated as "The answer is N" / "#### N". Multiple-choice data sets (examples with `choices`)
are scored on the option letter. Evaluating on another data set than the one trained on (the KPOD
paper's out-of-distribution setting) is the same command with another `--dataset`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from kpod.config import add_config_arguments, config_from_args
from kpod.data.answers import answers_match, extract_answer
from kpod.data.example import Example
from kpod.data.loaders import load_examples
from kpod.data.prompts import question_prompt
from kpod.errors import ConfigError, DataError
from kpod.eval.config import EvalConfig
from kpod.eval.generate import generate, generate_vllm, vllm_available
from kpod.io import write_json, write_jsonl
from kpod.models.loading import LoadedModel, default_device, is_seq2seq, load_model

ACCURACY_MODE = "flexible"


def score_prediction(example: Example, generated: str) -> dict:
    """One predictions.jsonl record: the answer extracted from `generated` in both modes, and
    whether each matches the gold answer (`correct` is the flexible verdict)."""
    choices = example.choices is not None
    strict = extract_answer(generated, choices=choices, mode="strict")
    flexible = extract_answer(generated, choices=choices, mode="flexible")
    correct_strict = answers_match(strict, example.answer)
    correct_flexible = answers_match(flexible, example.answer)
    return {
        "id": example.id, "question": example.question, "gold": example.answer, "generated": generated,
        "pred_strict": strict, "pred_flexible": flexible, "correct_strict": correct_strict,
        "correct_flexible": correct_flexible, "correct": correct_flexible,
    }


def compute_metrics(records: list[dict]) -> dict:
    """Accuracy in both extraction modes over predictions.jsonl records; `accuracy` is flexible."""
    n = len(records)
    counts = {
        "correct_strict": sum(r["correct_strict"] for r in records),
        "correct_flexible": sum(r["correct_flexible"] for r in records),
        "no_answer_strict": sum(r["pred_strict"] is None for r in records),
        "no_answer_flexible": sum(r["pred_flexible"] is None for r in records),
    }
    accuracy_strict = counts["correct_strict"] / n if n else 0.0
    accuracy_flexible = counts["correct_flexible"] / n if n else 0.0
    return {"accuracy": accuracy_flexible, "accuracy_mode": ACCURACY_MODE, "accuracy_strict": accuracy_strict,
            "accuracy_flexible": accuracy_flexible, "n": n, **counts}


def _resolve_device(device: str | None) -> torch.device:
    return default_device() if device in (None, "auto") else torch.device(device)


def _use_vllm(model, backend: str) -> bool:
    """Whether vLLM generates: asked for (or `auto`), installed with a GPU, and `model` a full causal
    checkpoint given by path or name (vLLM loads it itself; seq2seq and adapter-only dirs are not)."""
    if backend == "hf":
        return False
    usable = not isinstance(model, LoadedModel) and vllm_available()
    if usable:
        path = Path(model)
        adapter_only = (path / "adapter_config.json").exists() and not (path / "config.json").exists()
        usable = not adapter_only and not is_seq2seq(str(model))
    if backend == "vllm" and not usable:
        raise ConfigError(f"eval: --backend vllm needs vLLM, a GPU and a full causal checkpoint given by path or "
                          f"name ({model} is not one, or vLLM or the GPU is missing); use --backend hf")
    return usable


def generate_answers(model: str | LoadedModel, prompts: list[str], *, max_new_tokens: int = 256,
                     batch_size: int = 32, backend: str = "auto", device: str | None = None,
                     dtype: str | None = None) -> list[str]:
    """Greedy continuations of `prompts` with vLLM when `backend` allows it, else batched transformers."""
    if _use_vllm(model, backend):
        return generate_vllm(str(model), prompts, max_new_tokens=max_new_tokens, dtype=dtype or "auto")
    if not isinstance(model, LoadedModel):
        model = load_model(str(model), dtype=None if dtype in (None, "auto") else dtype,
                           device=_resolve_device(device))
    return generate(model.model, model.tokenizer, prompts, max_new_tokens=max_new_tokens,
                    batch_size=batch_size, desc="eval")


def evaluate(model: str | LoadedModel, examples: list[Example], out_dir: str | Path, *, max_new_tokens: int = 256,
             batch_size: int = 32, backend: str = "auto", device: str | None = None, dtype: str | None = None,
             meta: dict | None = None) -> dict:
    """Generate an answer for every example, write out_dir/predictions.jsonl and out_dir/metrics.json
    (`meta` is added to the metrics, e.g. the data set's name), and return the metrics."""
    if not examples:
        raise DataError("no examples to evaluate")
    prompts = [question_prompt(ex.question) for ex in examples]
    start = time.perf_counter()
    texts = generate_answers(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             backend=backend, device=device, dtype=dtype)
    seconds = time.perf_counter() - start
    records = [score_prediction(ex, text) for ex, text in zip(examples, texts)]
    metrics = compute_metrics(records)
    metrics.update({
        "model": getattr(model.model, "name_or_path", "") if isinstance(model, LoadedModel) else str(model),
        "max_new_tokens": max_new_tokens, "seconds": round(seconds, 3),
        "examples_per_s": round(len(examples) / seconds, 3) if seconds > 0 else None, **(meta or {}),
    })
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "predictions.jsonl", records)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, EvalConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(EvalConfig, args)
    cfg.require()
    examples = load_examples(cfg.dataset, split=cfg.split, data_dir=cfg.data_dir)
    if cfg.limit is not None:
        examples = examples[: cfg.limit]
    metrics = evaluate(cfg.model, examples, cfg.out, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                       backend=cfg.backend, device=cfg.device, dtype=cfg.dtype,
                       meta={"dataset": cfg.dataset, "split": cfg.split})
    print(f"[kpod] eval: accuracy {metrics['accuracy']:.4f} (flexible), strict {metrics['accuracy_strict']:.4f}, "
          f"n={metrics['n']} -> {Path(cfg.out) / 'metrics.json'}")
    return 0
