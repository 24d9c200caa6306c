"""`kpod eval` end to end on a tiny local model and a tiny generic JSONL file."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_CORPUS, fit_causal
from kpod.cli import main as kpod
from kpod.data.example import Example
from kpod.data.loaders import write_examples
from kpod.eval.evaluate import evaluate
from kpod.models.loading import load_model
from kpod.models.local import SPECIAL_TOKENS, save_local_model

METRIC_KEYS = {"accuracy", "accuracy_strict", "accuracy_flexible", "n", "correct_strict", "correct_flexible"}


def _question(text: str) -> str:
    """The question of a corpus text "Q: <question>\nA: Let's think step by step. ..."."""
    return text.split("\nA: Let's")[0].removeprefix("Q: ")


@pytest.fixture(scope="module")
def fitted_student(tiny_models, tmp_path_factory):
    """The tiny causal model fitted to the corpus (question, rationale, answer sentence, EOS), saved
    with save_pretrained: it answers the corpus questions right."""
    loaded = fit_causal(tiny_models["causal"], [t + SPECIAL_TOKENS["eos_token"] for t in TINY_CORPUS])
    return save_local_model(loaded.model, loaded.tokenizer, tmp_path_factory.mktemp("fitted") / "student")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """The corpus questions as generic JSONL; the last gold answer is deliberately wrong."""
    examples = [
        Example(id="e0", question=_question(TINY_CORPUS[0]), answer="42"),
        Example(id="e1", question=_question(TINY_CORPUS[1]), answer="42"),
        Example(id="e2", question=_question(TINY_CORPUS[2]), answer="130.5"),
        Example(id="e3", question=_question(TINY_CORPUS[3]), answer="A", choices=["A. apple", "B. car"]),
        Example(id="e4", question=_question(TINY_CORPUS[0]), answer="41"),
    ]
    path = tmp_path_factory.mktemp("data") / "tiny.jsonl"
    write_examples(path, examples)
    return path


def test_kpod_eval_writes_the_metrics_contract(fitted_student, tiny_dataset, tmp_path):
    out = tmp_path / "eval"
    code = kpod(["eval", "--model", str(fitted_student), "--dataset", str(tiny_dataset), "--split", "test",
                 "--out", str(out), "--max-new-tokens", "60", "--batch-size", "2"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["n"] == 5
    assert metrics["accuracy"] == metrics["accuracy_flexible"] == pytest.approx(4 / 5)
    assert metrics["accuracy_strict"] == pytest.approx(4 / 5)
    assert metrics["dataset"] == str(tiny_dataset)
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["e0", "e1", "e2", "e3", "e4"]
    assert records[2]["generated"].endswith("Therefore, the answer is 130.5.")
    assert records[3]["pred_strict"] == "A" and records[3]["correct"] is True  # scored on the letter
    assert (records[4]["pred_flexible"], records[4]["correct"]) == ("42", False)


def test_kpod_eval_limit_and_library_call_agree(fitted_student, tiny_dataset, tmp_path):
    assert kpod(["eval", "--model", str(fitted_student), "--dataset", str(tiny_dataset), "--out",
                 str(tmp_path / "cli"), "--limit", "2", "--max-new-tokens", "60"]) == 0
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    examples = [Example(id="e0", question=_question(TINY_CORPUS[0]), answer="42"),
                Example(id="e1", question=_question(TINY_CORPUS[1]), answer="42")]
    lib = evaluate(load_model(str(fitted_student)), examples, tmp_path / "lib", max_new_tokens=60)
    assert cli["n"] == lib["n"] == 2
    assert cli["accuracy"] == lib["accuracy"] == 1.0
    assert json.loads((tmp_path / "lib" / "metrics.json").read_text())["accuracy"] == 1.0


def test_kpod_eval_errors_name_the_problem(tiny_dataset, tmp_path, capsys):
    assert kpod(["eval", "--dataset", str(tiny_dataset), "--out", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q?"}\n')
    assert kpod(["eval", "--model", "unused", "--dataset", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 1" in err and "answer" in err
    assert not (tmp_path / "o" / "metrics.json").exists()
    assert kpod(["eval", "--model", "m", "--dataset", str(tiny_dataset), "--out", str(tmp_path), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_vllm_backend_refuses_what_it_cannot_run(tiny_models, tiny_dataset, tmp_path, capsys):
    """No GPU/vLLM here, and a seq2seq student is never vLLM's: an explicit --backend vllm says so."""
    assert kpod(["eval", "--model", str(tiny_models["seq2seq"]), "--dataset", str(tiny_dataset), "--out",
                 str(tmp_path), "--backend", "vllm"]) == 2
    assert "--backend hf" in capsys.readouterr().err
