"""Built-in data sets (Table 4 splits, item for item), generic JSONL, bad input and the hub mapping."""

from __future__ import annotations

import json
import os
import random
import sys
import types
import xml.etree.ElementTree as ET

import pytest

from kpod.data import hub
from kpod.data.answers import normalize_number
from kpod.data.example import Example
from kpod.data.loaders import BUILTIN_SPLITS, content_id, load_examples, normalize_question, read_generic, write_examples
from kpod.errors import DataError

TABLE4 = {"gsm8k": (7473, 660, 659), "asdiv": (1462, 313, 314), "svamp": (700, 150, 150),
          "csqa": (8520, 1221, 1221)}
# (data set, split, reference file): the split must list the file's items in the file's order
REFERENCE = [("gsm8k", "test", "gsm8k/split_test.json"), ("svamp", "train", "svamp/split_train.json"),
             ("svamp", "test", "svamp/split_test.json"), ("asdiv", "train", "asdiv/split_train.json"),
             ("asdiv", "test", "asdiv/split_test.json"), ("csqa", "train", "csqa/split_train.json")]


def splits(name, data_dir):
    return {s: load_examples(name, s, data_dir) for s in ("train", "dev", "test")}


@pytest.mark.parametrize("name", sorted(TABLE4))
def test_table4_counts_and_disjoint_unique_ids(name, shared_data):
    loaded = splits(name, shared_data)
    assert tuple(len(loaded[s]) for s in ("train", "dev", "test")) == TABLE4[name]
    ids = [ex.id for s in loaded.values() for ex in s]
    assert len(ids) == len(set(ids))
    assert all(ex.id.startswith(f"{name}-") and ex.answer for s in loaded.values() for ex in s)


def test_multiarith_is_a_test_set(shared_data):
    test = load_examples("multiarith", "test", shared_data)
    assert len(test) == 600 and len({ex.id for ex in test}) == 600
    assert test[0].id == "multiarith-0" and test[0].answer == "39"
    assert test[0].question.startswith("For Halloween Debby")
    with pytest.raises(DataError, match="no 'train' split") as err:
        load_examples("multiarith", "train", shared_data)
    assert err.value.field == "split"


@pytest.mark.parametrize("name,split,ref", REFERENCE)
def test_split_identical_to_reference_file(name, split, ref, shared_data):
    items = json.loads((shared_data / ref).read_text())
    loaded = load_examples(name, split, shared_data)
    assert [normalize_question(ex.question) for ex in loaded] == [normalize_question(i["input"]) for i in items]
    if name == "csqa":  # answer "A. ignore": the letter is the answer, the text a choice
        assert [f"{ex.answer}. " in i["answer"] and i["answer"] in ex.choices for ex, i in zip(loaded, items)] == \
            [True] * len(items)
        assert [ex.question for ex in loaded] == [i["input"].rstrip("\n") for i in items]
    else:
        assert [ex.answer for ex in loaded] == [normalize_number(i["answer"]) for i in items]


def test_dev_splits_are_the_remainders(shared_data):
    gsm_test = [json.loads(line)["question"] for line in (shared_data / "gsm8k/test.jsonl").open()]
    g = splits("gsm8k", shared_data)
    assert sorted(ex.question for ex in g["dev"] + g["test"]) == sorted(q.strip() for q in gsm_test)
    assert [ex.question for ex in g["dev"]] == [q.strip() for q in gsm_test if q.strip() not in
                                                {ex.question for ex in g["test"]}]
    s = splits("svamp", shared_data)
    svamp_ids = [f"svamp-{r['ID']}" for r in json.loads((shared_data / "svamp/SVAMP.json").read_text())]
    assert sorted(ex.id for split in s.values() for ex in split) == sorted(svamp_ids)
    c = splits("csqa", shared_data)
    official = [json.loads(line)["id"] for line in (shared_data / "csqa/train_rand_split.jsonl").open()]
    assert sorted(ex.id for ex in c["train"] + c["dev"]) == sorted(f"csqa-{i}" for i in official)
    a = splits("asdiv", shared_data)
    assert len({ex.id for split in a.values() for ex in split}) == 2089


def test_ids_answers_and_question_forms(shared_data):
    gsm = load_examples("gsm8k", "train", shared_data)[0]
    assert gsm.id == content_id("gsm8k", gsm.question) and gsm.answer == "72"
    assert gsm.meta["solution"].endswith("#### 72")
    svamp = {ex.id: ex for ex in load_examples("svamp", "train", shared_data)}
    danny = next(ex for ex in svamp.values() if ex.question.startswith("Danny collects bottle caps"))
    assert danny.answer == "32" and danny.id.startswith("svamp-chal-")
    asdiv = load_examples("asdiv", "train", shared_data)[0]
    assert asdiv.id == "asdiv-nluds-0004" and asdiv.answer == "6"
    assert asdiv.question == ("Allan brought two balloons and Jake brought four balloons to the park. "
                              "How many balloons did Allan and Jake have in the park?")
    csqa = load_examples("csqa", "train", shared_data)[0]
    assert csqa.id == "csqa-075e483d21c29a511267ef62bedc0461" and csqa.answer == "A"
    assert csqa.choices == ["A. ignore", "B. enforce", "C. authoritarian", "D. yell at", "E. avoid"]
    assert csqa.question.endswith("Answer Choices:\nA. ignore\nB. enforce\nC. authoritarian\nD. yell at\nE. avoid")
    decimals = [ex.answer for ex in load_examples("asdiv", "test", shared_data) if "." in ex.answer]
    assert decimals and all(not a.endswith("0") for a in decimals)


def test_loaded_examples_are_independent_copies(shared_data):
    first = load_examples("svamp", "train", shared_data)
    first[0].rationales.append("mutated")
    assert load_examples("svamp", "train", shared_data)[0].rationales == []


# --- generic JSONL ------------------------------------------------------------------------------

def sample_examples():
    return [
        Example(id="a", question="Tom has 3 apples and buys 2. How many?", answer="5",
                rationales=["Tom has 3 + 2 = 5 apples. Therefore, the answer is 5."], keypoints=[[8, 13]]),
        Example(id="b", question="Which is a fruit? Answer Choices:\nA. apple\nB. car", answer="A",
                rationales=["An apple grows on trees. The answer is A", "Cars are not fruit. The answer is A"],
                choices=["A. apple", "B. car"], meta={"source": "test"}),
        Example(id="c", question="What is 1,000 + 0.5?", answer="1000.5",
                kpdd={"core_question": "sum", "facts": ["1000", "0.5"], "program": "print(1000.5)"}),
    ]


def test_generic_round_trip_file_and_directory(tmp_path):
    examples = sample_examples()
    write_examples(tmp_path / "train.jsonl", examples)
    write_examples(tmp_path / "test.jsonl", examples[:1])
    assert read_generic(tmp_path / "train.jsonl") == examples
    assert load_examples(str(tmp_path / "train.jsonl"), split="ignored") == examples
    assert load_examples(tmp_path, "test") == examples[:1]
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["rationale"].startswith("Tom has") and "rationales" in json.loads(lines[1])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_generic_answers_normalized_and_extra_keys_kept(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1, "question": "q", "answer": "1,000", "source": "web"}\n'
                    '{"id": "2", "question": "q2", "answer": 18.0}\n\n'
                    '{"id": "3", "question": "q3", "answer": " B "}\n')
    loaded = read_generic(path)
    assert [ex.answer for ex in loaded] == ["1000", "18", "B"]
    assert loaded[0].id == "1" and loaded[0].meta == {"source": "web"}


def test_write_examples_is_atomic(tmp_path):
    path = tmp_path / "out.jsonl"
    write_examples(path, sample_examples())
    before = path.read_text()
    broken = sample_examples() + [Example(id="x", question="q", answer="1", meta={"bad": object()})]
    with pytest.raises(TypeError):
        write_examples(path, broken)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]


@pytest.mark.parametrize("content,line,field,message", [
    ('{"id": "a", "question": "q", "answer": "1"}\n{"id": "b", "question": "q", "answer": \n', 2, None, "malformed"),
    ('{"id": "a", "question": "q", "answer": "1"}\n{"id": "b", "answer": "1"}\n', 2, "question", "missing"),
    ('{"id": "a", "question": "q"}\n', 1, "answer", "missing"),
    ('{"id": "a", "question": "q", "answer": "1", "rationale": "  "}\n', 1, "rationale", "empty rationale"),
    ('{"id": "a", "question": "q", "answer": "1", "rationales": ["ok.", ""]}\n', 1, "rationales[1]",
     "empty rationale"),
    ('{"id": "a", "question": "q", "answer": "1"}\n{"id": "a", "question": "q", "answer": "2"}\n', 2, "id",
     "duplicate"),
    ('{"id": "a", "question": "", "answer": "1"}\n', 1, "question", "non-empty"),
    ('{"id": "a", "question": "q", "answer": "1", "choices": "A. x"}\n', 1, "choices", "list"),
    ('{"id": "a", "question": "q", "answer": "1", "keypoints": [[1]]}\n', 1, "keypoints", "pairs"),
    ('[1, 2]\n', 1, None, "JSON object"),
])
def test_generic_bad_input_names_file_line_field(tmp_path, content, line, field, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_examples(path)
    assert err.value.path == path and err.value.line == line and err.value.field == field
    assert str(path) in str(err.value) and f"line {line}" in str(err.value)


def test_unknown_dataset_and_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="unknown data set 'gsm9k'") as err:
        load_examples("gsm9k")
    assert err.value.field == "dataset"
    with pytest.raises(DataError, match="data directory not found"):
        load_examples("gsm8k", "train", tmp_path / "nowhere")
    with pytest.raises(DataError, match="file not found") as err:
        load_examples(str(tmp_path / "typo.jsonl"))
    assert err.value.path == tmp_path / "typo.jsonl"
    with pytest.raises(DataError, match="file not found") as err:
        load_examples(tmp_path, "dev")
    assert err.value.path == tmp_path / "dev.jsonl"


def test_broken_raw_files_are_located(tmp_path, shared_data):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text('{"question": "q", "answer": "no final answer"}\n')
    with pytest.raises(DataError) as err:
        load_examples("gsm8k", "train", tmp_path)
    assert err.value.line == 1 and err.value.field == "answer" and "train.jsonl" in str(err.value)
    (tmp_path / "svamp").mkdir()
    (tmp_path / "svamp" / "SVAMP.json").write_text((shared_data / "svamp/SVAMP.json").read_text())
    items = json.loads((shared_data / "svamp/split_train.json").read_text())
    items[3]["answer"] = "123456"
    (tmp_path / "svamp" / "split_train.json").write_text(json.dumps(items))
    (tmp_path / "svamp" / "split_test.json").write_text("[]")
    with pytest.raises(DataError, match="item 4: answer '123456' disagrees") as err:
        load_examples("svamp", "train", tmp_path)
    assert err.value.field == "answer"


# --- the hub path, with the hub's row layouts rebuilt from the raw files ------------------------

def hub_rows(name, data_dir):
    rng = random.Random(0)
    if name == "gsm8k":
        return {s: [json.loads(line) for line in (data_dir / f"gsm8k/{s}.jsonl").open()] for s in ("train", "test")}
    if name == "svamp":
        rows = json.loads((data_dir / "svamp/SVAMP.json").read_text())
        rng.shuffle(rows)
        return {"train": rows[:700], "test": rows[700:]}
    if name == "asdiv":
        problems = ET.parse(data_dir / "asdiv/ASDiv.xml").getroot().iter("Problem")
        return {"validation": [{"body": p.findtext("Body"), "question": p.findtext("Question"),
                                "answer": p.findtext("Answer"), "formula": p.findtext("Formula"),
                                "solution_type": p.findtext("Solution-Type")} for p in problems]}
    if name == "csqa":
        def tau(line):
            rec = json.loads(line)
            q = rec["question"]
            return {"id": rec["id"], "question": q["stem"], "question_concept": q["question_concept"],
                    "choices": {"label": [c["label"] for c in q["choices"]], "text": [c["text"] for c in q["choices"]]},
                    "answerKey": rec["answerKey"]}
        return {"train": [tau(line) for line in (data_dir / "csqa/train_rand_split.jsonl").open()],
                "validation": [tau(line) for line in (data_dir / "csqa/dev_rand_split.jsonl").open()]}
    rows = [{"question": r["sQuestion"], "final_ans": str(r["lSolutions"][0])}
            for r in json.loads((data_dir / "multiarith/MultiArith.json").read_text())]
    return {"train": rows[:420], "test": rows[420:]}


def test_packaged_split_manifest_matches_raw_files(shared_data):
    assert hub.read_manifest() == json.loads(json.dumps(hub.split_manifest(shared_data)))


@pytest.mark.parametrize("name", ["gsm8k", "svamp", "asdiv", "csqa", "multiarith"])
def test_hub_rows_give_the_same_splits_and_ids(name, shared_data):
    from_hub = hub.hub_splits_to_examples(name, hub_rows(name, shared_data), hub.read_manifest())
    assert sorted(from_hub) == sorted(BUILTIN_SPLITS[name])
    for split, examples in from_hub.items():
        from_files = load_examples(name, split, shared_data)
        assert [(ex.id, ex.question, ex.answer, ex.choices) for ex in examples] == \
            [(ex.id, ex.question, ex.answer, ex.choices) for ex in from_files], (name, split)


def test_load_hub_examples_calls_datasets_by_name(monkeypatch, shared_data):
    calls = []
    rows = hub_rows("gsm8k", shared_data)

    def fake_load_dataset(repo, config=None, split=None):
        calls.append((repo, config, split))
        return rows[split]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    test = load_examples("gsm8k", "test")
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "test")]
    assert [ex.id for ex in test] == [ex.id for ex in load_examples("gsm8k", "test", shared_data)]


def test_hub_rows_missing_a_column_are_reported():
    with pytest.raises(DataError, match="lacks a required column") as err:
        hub.hub_splits_to_examples("svamp", {"train": [{"ID": "x", "Body": "b"}], "test": []}, hub.read_manifest())
    assert err.value.field == "Question"
