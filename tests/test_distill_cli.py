"""`kpod train` end to end: a causal student with KPOD weights and schedule, a seq2seq student with
LoRA and the SPL curriculum."""

from __future__ import annotations

import json

import numpy as np

from kpod.cli import main
from kpod.data.example import Example
from kpod.data.loaders import write_examples
from kpod.data.steps import split_steps
from kpod.models.loading import load_model
from kpod.weighting.store import TokenWeights, write_weights


def _examples(n: int) -> list[Example]:
    return [Example(f"e{i}", f"Sam has {i} pens and gets {i + 2} more. How many?", str(2 * i + 2),
                    [f"Sam has {i} pens. He gets {i + 2} more. So {i} + {i + 2} = {2 * i + 2}. "
                     f"Therefore, the answer is {2 * i + 2}."]) for i in range(n)]


def test_causal_student_trains_with_weights_schedule_and_dev(tiny_models, tmp_path):
    train, dev = _examples(10), _examples(3)
    write_examples(tmp_path / "train.jsonl", train)
    write_examples(tmp_path / "dev.jsonl", dev)
    write_weights(tmp_path / "w", {ex.id: TokenWeights(np.asarray([[0, 3], [4, 7]]), np.asarray([0.3, 0.9]))
                                   for ex in train})
    n = {ex.id: len(split_steps(ex.rationales[0]).steps) for ex in train}
    (tmp_path / "schedule.json").write_text(json.dumps({
        "epochs": 2, "T": 1, "stages": [], "num_steps": n, "input_steps": {k: [v - 1, 0] for k, v in n.items()}}))
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "train.jsonl"), "--student", str(tiny_models["causal"]),
                 "--out", str(out), "--weights", str(tmp_path / "w"), "--schedule", str(tmp_path / "schedule.json"),
                 "--dev", str(tmp_path / "dev.jsonl"), "--epochs", "2", "--batch-size", "4", "--log-every", "1",
                 "--eval-max-new-tokens", "8", "--lr", "1e-3"])
    assert code == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["mean_input_steps"] for r in steps] == [2.0] * 3 + [0.0] * 3  # c_i = n_i - 1, then 0
    # the weighted tokens ("Sam has", w < 1) are in the target only once c_i = 0
    assert [r["weighted_loss"] < r["loss"] for r in steps] == [False] * 3 + [True] * 3
    evals = [r for r in records if "eval" in r]
    assert len(evals) == 2 and evals[0]["eval"]["n"] == 3
    assert (out / "best" / "config.json").exists() and (out / "eval" / "step-3" / "metrics.json").exists()
    reloaded = load_model(str(out / "final"))
    assert not reloaded.is_seq2seq


def test_dev_is_evaluated_every_n_steps_and_after_the_last(tiny_models, tmp_path):
    write_examples(tmp_path / "train.jsonl", _examples(10))  # 3 steps per epoch at batch 4
    write_examples(tmp_path / "dev.jsonl", _examples(2))
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "train.jsonl"), "--student", str(tiny_models["causal"]),
                 "--out", str(out), "--dev", str(tmp_path / "dev.jsonl"), "--epochs", "3", "--batch-size", "4",
                 "--eval-every", "4", "--eval-max-new-tokens", "4", "--report-to", "none"]) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "eval" in r] == [4, 8, 9]


def test_seq2seq_student_trains_with_lora_and_spl(tiny_models, tmp_path):
    write_examples(tmp_path / "train.jsonl", _examples(8))
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "train.jsonl"), "--student", str(tiny_models["seq2seq"]),
                 "--out", str(out), "--curriculum", "spl", "--epochs", "4", "--batch-size", "4", "--lora", "true",
                 "--lora-rank", "4", "--lora-alpha", "8", "--save-merged", "true", "--log-every", "1"])
    assert code == 0
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(steps) == 8
    # SPL (T = 2): uniform weights before the first feedback, confidence weights in epoch 1, uniform
    # again from epoch T on
    assert [r["weighted_loss"] == r["loss"] for r in steps] == [True, True, False, False, True, True, True, True]
    assert (out / "final" / "adapter_config.json").exists()
    assert load_model(str(out / "final-merged")).is_seq2seq
