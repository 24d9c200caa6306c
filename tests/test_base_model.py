"""`kpod base-model`: domain-only corpus, true arithmetic, a loss that falls, loadable models."""

from __future__ import annotations

import json
import random

import pytest
import torch

from kpod.cli import main as kpod_main
from kpod.data.synth import SynthConfig, generate, write_testbed
from kpod.models.loading import load_model
from kpod.models.pretrain import BaseModelConfig, arithmetic_statements, build_base_models, domain_corpus, lr_factor

TINY = ["--vocab-size", "360", "--hidden", "32", "--layers", "1", "--heads", "2", "--intermediate", "64",
        "--block-size", "64", "--batch-size", "8", "--causal-steps", "30", "--seq2seq-steps", "6",
        "--equations", "400", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    out = tmp_path_factory.mktemp("testbed")
    write_testbed(out, SynthConfig(seed=0, train_size=120, dev_size=4, test_size=4, ood_size=4))
    return out


def test_arithmetic_statements_are_true():
    for statement in arithmetic_statements(random.Random(0), 300, max_value=50):
        left, right = statement.rstrip(".").split(" = ")
        a, op, b = left.split()
        exact = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b), "/": int(a) / int(b)}[op]
        assert exact == int(right) and 0 <= int(right) <= 50


def test_corpus_holds_no_multistep_rationale():
    examples = generate(SynthConfig(seed=1, train_size=60, dev_size=0, test_size=0, ood_size=0))["train"]
    docs = domain_corpus(examples, BaseModelConfig(equations=80))
    steps = [ex.rationales[0][s:e] for ex in examples for s, e in ex.meta["steps"]]
    text = "\n".join(docs)
    assert not any(step in text for step in steps)
    assert all(doc.startswith("Therefore, the answer is") for doc in docs if "Therefore" in doc)
    assert {ex.question for ex in examples} <= set(docs)


def test_lr_factor_warms_up_then_decays():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.1)


def test_base_model_command_writes_loadable_pretrained_models(testbed, tmp_path):
    out = tmp_path / "base"
    assert kpod_main(["base-model", "--data", str(testbed), "--out", str(out), *TINY]) == 0
    causal, seq2seq = load_model(str(out / "causal")), load_model(str(out / "seq2seq"))
    assert not causal.is_seq2seq and seq2seq.is_seq2seq
    assert causal.tokenizer.is_fast and len(causal.tokenizer) == len(seq2seq.tokenizer)
    report = json.loads((out / "base_model.json").read_text())
    assert report["config"]["causal_steps"] == 30 and report["causal_parameters"] > 0

    # Pre-training helped: domain text is likelier under the trained model than under a fresh one.
    from kpod.models.local import causal_model

    text = causal.tokenizer("Tom has 12 apples. 12 + 5 = 17. Therefore, the answer is 17.", return_tensors="pt")
    fresh = causal_model(causal.tokenizer, BaseModelConfig(hidden=32, layers=1, heads=2, intermediate=64).size())
    with torch.no_grad():
        trained_loss = causal.model(**text, labels=text["input_ids"]).loss.item()
        fresh_loss = fresh(**text, labels=text["input_ids"]).loss.item()
    assert trained_loss < fresh_loss - 0.5
    assert report["causal_loss"] < fresh_loss


def test_skip_seq2seq_and_jsonl_input(testbed, tmp_path):
    out = tmp_path / "base"
    build_base_models(testbed / "train.jsonl", out, BaseModelConfig(
        vocab_size=360, hidden=32, layers=1, heads=2, intermediate=64, block_size=64, batch_size=4,
        causal_steps=2, equations=50, skip_seq2seq=True))
    assert (out / "causal" / "config.json").exists() and not (out / "seq2seq").exists()


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert kpod_main(["base-model", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
