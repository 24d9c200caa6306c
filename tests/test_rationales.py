"""Teacher rationale files: matching to train splits, correctness, counts, several per question."""

from __future__ import annotations

import json

import pytest

from kpod.data.example import Example, rationale_items
from kpod.data.rationales import (attach_rationales, load_with_rationales, match_key, rationale_is_correct,
                                  read_rationale_file)
from kpod.data.steps import split_steps
from kpod.errors import DataError


def write(path, records):
    path.write_text(json.dumps(records))
    return path


def test_instruction_and_chain_formats(shared_data):
    rows = read_rationale_file(shared_data / "rationales" / "gsm8k_llama3-70b.json")
    assert len(rows) == 7442 and rows[0].rationale.endswith("The answer is 720")
    chains = read_rationale_file(shared_data / "rationales" / "svamp_gpt-3.5-turbo.json")
    assert len(chains) == 1953
    first = chains[0].rationale
    assert first.startswith("Danny found a total of 15 + 18 = 33")
    assert first.endswith("more wrappers than bottle caps.\nTherefore, the answer is 32.")
    split = split_steps(first)
    assert first[slice(*split.answer)] == "Therefore, the answer is 32." and len(split.steps) == 4


def test_attach_counts_and_keeps_several_rationales(tmp_path):
    train = [Example(id="q1", question="Tom has 3 apples.  He buys 2 more. How many?\n", answer="5"),
             Example(id="q2", question="Sam has 10 pens. He loses 4. How many are left?", answer="6")]
    dev = [Example(id="q3", question="A dev question?", answer="1")]
    path = write(tmp_path / "toy_teacher.json", [
        {"instruction": "Tom has 3 apples. He buys 2 more. How many?", "output": "3 + 2 = 5. The answer is 5"},
        {"instruction": "Tom has 3 apples. He buys 2 more. How many?  ", "output": "3 + 3 = 6. The answer is 6"},
        {"instruction": "Tom has 3 apples. He buys 2 more. How many?", "output": "3 + 2 = 5. The answer is 5"},
        {"instruction": "Sam has 10 pens.\nHe loses 4. How many are left?", "output": "10 - 4 = 6. The answer is 6"},
        {"instruction": "A dev question?", "output": "It is 1. The answer is 1"},
        {"instruction": "Not in the data set at all?", "output": "The answer is 2"},
    ])
    report = attach_rationales(train, path, "toy", other_splits={"dev": dev})
    assert (report.rows, report.matched, report.unmatched, report.correct, report.incorrect) == (6, 4, 2, 3, 1)
    assert report.duplicates == 1 and report.questions == 2
    assert report.unmatched_in_split == {"dev": 1, "absent": 1}
    assert report.unmatched_questions == ["A dev question?", "Not in the data set at all?"]
    assert train[0].rationales == ["3 + 2 = 5. The answer is 5", "3 + 3 = 6. The answer is 6"]
    assert [item.key for item in rationale_items(train)] == ["q1#0", "q1#1", "q2"]
    assert dev[0].rationales == []


def test_only_correct_drops_wrong_rationales_but_counts_them(tmp_path):
    train = [Example(id="q1", question="Tom has 3 apples. He buys 2 more. How many?", answer="5")]
    path = write(tmp_path / "t.json", [
        {"instruction": train[0].question, "output": "3 + 3 = 6. The answer is 6"},
        {"instruction": train[0].question, "output": "3 + 2 = 5. The answer is 5"}])
    report = attach_rationales(train, path, "toy", only_correct=True)
    assert train[0].rationales == ["3 + 2 = 5. The answer is 5"]
    assert (report.matched, report.correct, report.incorrect) == (2, 1, 1)


def test_csqa_instructions_match_on_the_stem():
    ours = "The sanctions against the school were a punishing blow? Answer Choices:\nA. ignore\nB. enforce"
    theirs = "Q: The sanctions against the school were a punishing blow?  Answer choices: A: ignore, B: enforce"
    assert match_key("csqa", ours) == match_key("csqa", theirs) == "The sanctions against the school were a punishing blow?"


def test_correctness_uses_strict_then_flexible():
    assert rationale_is_correct("3 + 2 = 5. The answer is 5", "5")
    assert rationale_is_correct("So there are 1,035 pounds left.", "1035")
    assert not rationale_is_correct("The answer is 1,000 - 35 = 965. The answer is 966", "965")
    assert rationale_is_correct("This is a jewelry store. The answer is A", "A", choices=True)
    assert not rationale_is_correct("Jewelry box is (D). So the answer is D", "A", choices=True)


@pytest.mark.parametrize("record,field", [
    ({"instruction": "q"}, "output"),
    ({"input": "q", "answer": "1"}, "chain"),
    ({"input": "q", "chain": "   ", "answer": "1"}, "chain"),
    ({"instruction": "q", "output": ""}, "output"),
])
def test_bad_rationale_records(tmp_path, record, field):
    path = write(tmp_path / "bad.json", [{"instruction": "fine", "output": "The answer is 1"}, record])
    with pytest.raises(DataError, match="item 2") as err:
        read_rationale_file(path)
    assert err.value.field == field and err.value.path == path


@pytest.mark.slow
def test_real_files_match_counts(shared_data):
    """The five shared rationale files against their train splits (figures in docs/data.md)."""
    expected = {
        "gsm8k": {"gsm8k_gemini-1.5-flash.json": (7433, 7430, 3, 7065, 365),
                  "gsm8k_llama3-70b.json": (7442, 7439, 3, 7413, 26)},
        "svamp": {"svamp_gpt-3.5-turbo.json": (1953, 1953, 0, 1953, 0)},
        "asdiv": {"asdiv_gpt-3.5-turbo.json": (4269, 4269, 0, 4269, 0)},
        "csqa": {"csqa_llama3-70b.json": (9732, 8512, 1220, 8511, 1)},
    }
    for dataset, files in expected.items():
        train, reports = load_with_rationales(dataset, shared_data)
        got = {r.file: (r.rows, r.matched, r.unmatched, r.correct, r.incorrect) for r in reports}
        assert got == files
        for r in reports:
            assert r.rows == r.matched + r.unmatched and r.matched == r.correct + r.incorrect
            assert set(r.unmatched_in_split) <= {"dev", "test", "absent"}
        assert sum(len(ex.rationales) for ex in train) == sum(r.matched - r.duplicates for r in reports)
    # CSQA's unmatched questions are exactly the ones of kpod's dev split (official train minus split_train)
    assert reports[0].unmatched_in_split == {"dev": 1220}


def test_svamp_rationales_several_per_question(shared_data):
    train, [report] = load_with_rationales("svamp", shared_data, only_correct=True)
    with_rationales = [ex for ex in train if ex.rationales]
    assert len(with_rationales) == report.questions == 651
    assert max(len(ex.rationales) for ex in train) == 3
    assert all(ex.rationales[0].endswith(f"Therefore, the answer is {ex.answer}.") for ex in with_rationales)


def test_no_train_split_to_attach_to(shared_data):
    with pytest.raises(DataError, match="no train split"):
        load_with_rationales("multiarith", shared_data)
