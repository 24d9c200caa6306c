"""The teacher's prompts, and a local Hugging Face model as the teacher (`kpod teach --backend hf`)."""

from __future__ import annotations

import json

import pytest

from kpod.cli import main as kpod
from kpod.data.example import Example
from kpod.eval.generate import generate
from kpod.teacher.hf_backend import LocalGenerator, cut_at_stop
from kpod.teacher.prompts import answer_prompt, chat_messages, clean_rationale, parse_answer, rationale_prompt
from kpod.teacher.records import read_records


def test_two_stage_template_of_kpod_sec_3_1():
    ex = Example(id="1", question="  Tom has 12 apples and buys 30 more. How many? ", answer="42")
    first = rationale_prompt(ex)
    assert first == "Q: Tom has 12 apples and buys 30 more. How many?\nA: Let's think step by step."
    assert answer_prompt(first, "12 + 30 = 42.") == first + " 12 + 30 = 42.\nTherefore, the answer is"
    assert chat_messages(first, "r") == [{"role": "user", "content": first}, {"role": "assistant", "content": "r"},
                                         {"role": "user", "content": "Therefore, the answer is"}]


def test_choices_are_shown_once():
    listed = Example(id="c", question="Which is a fruit? Answer Choices:\nA. apple\nB. car", answer="A",
                     choices=["A. apple", "B. car"])
    bare = Example(id="c", question="Which is a fruit?", answer="A", choices=["A. apple", "B. car"])
    assert rationale_prompt(listed) == ("Q: Which is a fruit? Answer Choices:\nA. apple\nB. car\n"
                                        "A: Let's think step by step.")
    assert rationale_prompt(bare) == rationale_prompt(listed)


def test_rationale_cleaning_and_answer_parsing():
    assert clean_rationale(" 12 + 30 = 42. Therefore, the answer is 42.\nQ: next") == "12 + 30 = 42."
    assert clean_rationale("Add them.\n\nQ: Another question") == "Add them."
    assert parse_answer(" 42.") == "42"
    assert parse_answer(" $1,250.50 in total.") == "1250.5"  # strict fails on "$", flexible reads it
    assert parse_answer(" 7 apples, not 9.") == "7"  # strict: the number right after the trigger
    assert parse_answer(" (B) car.", choices=True) == "B"
    assert parse_answer(" not sure.") is None
    assert cut_at_stop("abc\nQ: d\ne", ["\nQ:", "\n"]) == ("abc", True)
    assert cut_at_stop("abc", ["\n"]) == ("abc", False)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_local_generator_greedy_is_the_evaluation_path(tiny_models, kind):
    generator = LocalGenerator(str(tiny_models[kind]), batch_size=2, device="cpu")
    prompts = ["Q: Tom has 12 apples.\nA: Let's think step by step.", "Q: A box holds 6 pens.\nA:", "Q: x\nA:"]
    results = generator.complete(prompts, max_tokens=8, temperature=0)
    expected = generate(generator.loaded.model, generator.tokenizer, prompts, max_new_tokens=8, batch_size=2)
    assert [r.text for r in results] == expected
    for r in results:
        assert 0 <= r.completion_tokens <= 8 and r.prompt_tokens > 0 and r.finish_reason in ("stop", "length")


def test_local_generator_sampling_follows_the_seed(tiny_models):
    generator = LocalGenerator(str(tiny_models["causal"]), batch_size=4, device="cpu")
    prompts = ["Q: Tom has 12 apples.\nA: Let's think step by step."] * 3
    first = [r.text for r in generator.complete(prompts, max_tokens=12, temperature=1.0, seed=1)]
    again = [r.text for r in generator.complete(prompts, max_tokens=12, temperature=1.0, seed=1)]
    other = [r.text for r in generator.complete(prompts, max_tokens=12, temperature=1.0, seed=2)]
    assert first == again and first != other
    assert len(set(first)) > 1  # rows of one batch are sampled independently


def test_teach_command_with_the_hf_backend_resumes(tiny_models, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": "42"}) + "\n" for i, q in enumerate(
        ["Tom has 12 apples and buys 30 more. How many apples does he have?", "A box holds 6 pens. How many in 7?",
         "Sara had $150.50 and spent $20. How much is left?"])))
    out = tmp_path / "rationales.jsonl"
    args = ["teach", "--backend", "hf", "--model", str(tiny_models["causal"]), "--dataset", str(data),
            "--out", str(out),
            "--max-tokens", "16", "--answer-max-tokens", "6", "--batch-size", "2", "--limit", "2"]
    code = kpod(args)
    records = read_records(out)
    assert list(records) == [("q0", 0), ("q1", 0)]
    assert code == (1 if any(r["status"] == "failed" for r in records.values()) else 0)
    for r in records.values():
        assert r["prompt"].startswith("Q: ") and r["prompt"].endswith("A: Let's think step by step.")
        if r["status"] == "ok":
            assert r["rationale"] == clean_rationale(r["response"][0])
            assert r["answer_prompt"] == answer_prompt(r["prompt"], r["rationale"])
            assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] > 0
    assert "of 2 records (2 now, 0 from earlier runs)" in capsys.readouterr().out
    lines_before = out.read_text().count("\n")
    ok_before = sum(r["status"] == "ok" for r in records.values())
    kpod(args[:-1] + ["3"])  # one more example; the ok records are kept, failed ones retried
    assert len(read_records(out)) == 3
    assert out.read_text().count("\n") == lines_before + 1 + (2 - ok_before)
