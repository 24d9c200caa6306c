"""The trainer: gradient accumulation, two processes, kill-and-resume, ablation switches, feedback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kpod.curriculum.base import EpochPlan
from kpod.data.example import Example, RationaleItem
from kpod.distill.config import TrainConfig
from kpod.distill.source import RationaleSource
from kpod.distill.train import build_source
from kpod.distill.trainer import Trainer, TrainingInterrupted
from kpod.models.loading import load_tokenizer
from kpod.weighting.store import TokenWeights, write_weights

REPO = Path(__file__).resolve().parents[1]


def make_items(n: int = 12) -> list[RationaleItem]:
    return [RationaleItem(f"q{i}", f"q{i}", f"Tom has {i} apples and buys {i % 4 + 2} more. How many?",
                          f"Tom has {i} apples. He buys {i % 4 + 2} more." + " He is happy." * (i % 3)
                          + f" So {i} + {i % 4 + 2} = {i + i % 4 + 2}. Therefore, the answer is {i + i % 4 + 2}.",
                          str(i + i % 4 + 2)) for i in range(n)]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in line]


def run_trainer(model: Path, out: Path, **overrides) -> list[dict]:
    cfg = TrainConfig(student=str(model), **{"epochs": 2, "lr": 3e-3, "log_every": 1, "seed": 1, **overrides})
    Trainer(cfg, out).fit(RationaleSource(make_items()))
    return read_log(out)


def test_gradient_accumulation_gives_the_same_steps(tiny_models, tmp_path):
    one = run_trainer(tiny_models["causal"], tmp_path / "one", batch_size=4, grad_accum=1)
    accum = run_trainer(tiny_models["causal"], tmp_path / "accum", batch_size=2, grad_accum=2)
    assert len(one) == len(accum) == 6  # 12 items / global batch 4 x 2 epochs
    np.testing.assert_allclose([r["weighted_loss"] for r in accum], [r["weighted_loss"] for r in one], rtol=1e-5)
    assert one[-1]["loss"] < one[0]["loss"]  # it learns
    from safetensors.torch import load_file
    a, b = (load_file(tmp_path / d / "final" / "model.safetensors") for d in ("one", "accum"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)


def test_activation_checkpointing_changes_memory_not_results(tiny_models, tmp_path):
    plain = run_trainer(tiny_models["causal"], tmp_path / "plain", batch_size=4, epochs=1)
    ckpt = run_trainer(tiny_models["causal"], tmp_path / "ckpt", batch_size=4, epochs=1, gradient_checkpointing=True)
    np.testing.assert_allclose([r["weighted_loss"] for r in ckpt], [r["weighted_loss"] for r in plain], rtol=1e-6)


class FakeCurriculum:
    """c_i = 1 at epoch 0, then 0; records what the trainer reports."""

    def __init__(self, keys: list[str], needs_feedback: bool = False):
        self.keys, self.needs_feedback = keys, needs_feedback
        self.observed: list[tuple[int, dict]] = []

    def plan(self, epoch: int) -> EpochPlan:
        return EpochPlan({key: 1 if epoch == 0 else 0 for key in self.keys})

    def observe(self, epoch: int, step_nll: dict[str, list[float]]) -> None:
        self.observed.append((epoch, step_nll))


@pytest.fixture
def ablation_setup(tiny_models, tmp_path):
    items = make_items()
    examples = [Example(it.example_id, it.question, it.answer, [it.rationale, it.rationale + " Done."]) for it in items]
    keys = [f"{ex.id}#0" for ex in examples] + [f"{ex.id}#1" for ex in examples]
    rationales = {f"{ex.id}#{k}": r for ex in examples for k, r in enumerate(ex.rationales)}
    weights = {key: TokenWeights(np.asarray([[0, 3], [4, 7], [7, 1000]]), np.asarray([0.05, 0.8, 0.5])) for key in keys}
    write_weights(tmp_path / "w", weights)
    assert all(rationales[k][:3] == "Tom" for k in keys)
    tok = load_tokenizer(str(tiny_models["causal"]))
    return examples, tok, tmp_path / "w"


def _view(source, epoch=0):
    seqs = source.sequences(epoch)
    spans = [[(0, 3), (4, 7), (len(s.target) - 3, len(s.target) - 1)] for s in seqs]
    weights = [None if s.weight_fn is None else s.weight_fn(sp).round(6).tolist() for s, sp in zip(seqs, spans)]
    return [(s.key, s.prompt, s.target) for s in seqs], weights


def test_each_ablation_switch_changes_only_what_it_names(ablation_setup):
    examples, tok, wdir = ablation_setup
    fake = FakeCurriculum([f"q{i}#{k}" for i in range(12) for k in (0, 1)])
    kpod_text, kpod_w = _view(build_source(TrainConfig(), examples, tok, weights=str(wdir), curriculum=fake))
    assert {p.count("Tom has") for _, p, _ in kpod_text} == {2}  # question + step 1 given (c_i = 1)
    # w.o.-sig: same prompts and targets, uniform weights
    text, w = _view(build_source(TrainConfig(use_token_weights=False), examples, tok, weights=str(wdir), curriculum=fake))
    assert all(x == [0.5, 0.5, 1.0] for x in kpod_w)  # later rationale tokens, then the answer
    assert text == kpod_text and all(x is None for x in w)
    # w.o.-prog: same weights function, but c_i = 0 (the whole rationale is the target)
    text, w = _view(build_source(TrainConfig(progressive=False), examples, tok, weights=str(wdir), curriculum=fake))
    assert [t[0] for t in text] == [t[0] for t in kpod_text]
    assert all(p.count("Tom has") == 1 and t.startswith("Tom has") for _, p, t in text)
    assert all(x == [0.05, 0.8, 1.0] for x in w)  # rationale tokens w_j, answer 1
    # weight floor: only weights below the floor move
    text, w = _view(build_source(TrainConfig(progressive=False, weight_floor=0.2), examples, tok, weights=str(wdir)))
    assert all(x == [0.2, 0.8, 1.0] for x in w)
    # plain CoTD vs multi-rationale: one rationale per question vs all of them
    plain = build_source(TrainConfig(), examples, tok)
    multi = build_source(TrainConfig(rationales_per_question=2), examples, tok)
    assert len(plain.sequences(0)) == 12 and len(multi.sequences(0)) == 24
    assert [s.key for s in plain.sequences(0)] == [f"q{i}#0" for i in range(12)]


def test_feedback_curriculum_gets_step_nll_each_epoch(tiny_models, tmp_path):
    fake = FakeCurriculum([f"q{i}" for i in range(12)], needs_feedback=True)
    cfg = TrainConfig(student=str(tiny_models["seq2seq"]), epochs=2, batch_size=4, log_every=100)
    Trainer(cfg, tmp_path / "run").fit(RationaleSource(make_items(), curriculum=fake))
    assert [epoch for epoch, _ in fake.observed] == [0, 1]
    nll = fake.observed[0][1]
    assert sorted(nll) == sorted(f"q{i}" for i in range(12))
    assert len(nll["q1"]) == 4 and all(np.isfinite(v) and v > 0 for v in nll["q1"])  # 4 steps
    log = read_log(tmp_path / "run")
    assert [r["mean_input_steps"] for r in log] == [1.0, 0.0]
    assert (tmp_path / "run" / "final" / "config.json").exists()


WORKER = """
import sys
sys.path.insert(0, {tests!r})
from test_distill_trainer import make_items
from kpod.distill.config import TrainConfig
from kpod.distill.source import RationaleSource
from kpod.distill.trainer import Trainer
cfg = TrainConfig(student=sys.argv[1], epochs=2, lr=3e-3, batch_size=2, grad_accum=2, log_every=1, seed=1)
Trainer(cfg, sys.argv[2]).fit(RationaleSource(make_items(16)))
"""


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_models, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(tests=str(REPO / "tests")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KPOD_NO_PROGRESS": "1", "ACCELERATE_USE_CPU": "true"}
    # torchrun starts two processes; accelerate sees WORLD_SIZE=2 and uses gloo on CPU
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                    str(worker), str(tiny_models["causal"]), str(tmp_path / "ddp")], check=True, env=env, timeout=170)
    cfg = TrainConfig(student=str(tiny_models["causal"]), epochs=2, lr=3e-3, batch_size=4, grad_accum=2, log_every=1,
                      seed=1)
    Trainer(cfg, tmp_path / "single").fit(RationaleSource(make_items(16)))
    ddp, single = read_log(tmp_path / "ddp"), read_log(tmp_path / "single")
    assert len(ddp) == len(single) == 4  # 16 items / global batch 8 x 2 epochs
    assert [r["target_tokens"] for r in ddp] == [r["target_tokens"] for r in single]
    np.testing.assert_allclose([r["weighted_loss"] for r in ddp], [r["weighted_loss"] for r in single], rtol=1e-5)


def _sigterm_after(log: Path, lines: int) -> threading.Thread:
    def watch():
        while not (log.exists() and len(log.read_text().splitlines()) >= lines):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sigterm_then_resume_reproduces_the_uninterrupted_run(tiny_models, tmp_path):
    cfg = TrainConfig(student=str(tiny_models["causal"]), epochs=3, lr=3e-3, batch_size=2, log_every=1, seed=1,
                      lora=True, lora_rank=4, lora_alpha=8, lora_dropout=0.2)  # dropout: RNG state must resume too
    Trainer(cfg, tmp_path / "full").fit(RationaleSource(make_items()))
    full = read_log(tmp_path / "full")
    assert len(full) == 18
    out = tmp_path / "killed"
    watcher = _sigterm_after(out / "train_log.jsonl", 8)
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg, out).fit(RationaleSource(make_items()))
    watcher.join(timeout=5)
    assert 8 <= len(read_log(out)) < 18
    Trainer(cfg, out).fit(RationaleSource(make_items()), resume=True)
    resumed = read_log(out)
    assert [r["step"] for r in resumed] == list(range(1, 19))
    assert [r["weighted_loss"] for r in resumed] == [r["weighted_loss"] for r in full]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in full]
    assert (out / "final" / "adapter_config.json").exists()


def test_replayed_feedback_reaches_the_curriculum_in_the_original_order():
    calls = []

    class Recording(FakeCurriculum):
        def plan(self, epoch):
            calls.append(("plan", epoch))
            return super().plan(epoch)

        def observe(self, epoch, step_nll):
            calls.append(("observe", epoch))

    source = RationaleSource(make_items(2), curriculum=Recording(["q0", "q1"], needs_feedback=True))
    for epoch in (0, 1):  # what a resumed run replays from its checkpoint
        source.observe(epoch, {"q0": [1.0], "q1": [2.0]})
    assert calls == [("plan", 0), ("observe", 0), ("plan", 1), ("observe", 1)]
