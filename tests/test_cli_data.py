"""`kpod data stats`: through kpod.cli.main and once through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpod.cli import main
from kpod.data.example import Example
from kpod.data.loaders import write_examples


def stats(capsys, *argv) -> dict:
    assert main(["data", "stats", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


@pytest.mark.parametrize("name,counts", [("asdiv", (1462, 313, 314)), ("multiarith", (0, 0, 600))])
def test_stats_counts(capsys, shared_data, name, counts):
    result = stats(capsys, "--dataset", name, "--data-dir", str(shared_data))
    assert result["dataset"] == name and (result["train"], result["dev"], result["test"]) == counts
    if name == "asdiv":
        assert (result["rationales_matched"], result["rationales_unmatched"], result["rationales_correct"],
                result["rationales_incorrect"]) == (4269, 0, 4269, 0)
        [detail] = result["rationale_files"]
        assert detail["file"] == "asdiv_gpt-3.5-turbo.json" and detail["questions"] == 1422
    else:
        assert "rationales_matched" not in result


def test_stats_generic_file_and_directory(capsys, tmp_path):
    examples = [Example(id="a", question="2 + 3?", answer="5", rationales=["2 + 3 = 5. The answer is 5",
                                                                            "2 + 3 = 6. The answer is 6"]),
                Example(id="b", question="1 + 1?", answer="2")]
    write_examples(tmp_path / "train.jsonl", examples)
    write_examples(tmp_path / "test_ood.jsonl", examples[1:])
    result = stats(capsys, "--dataset", str(tmp_path / "train.jsonl"))
    assert (result["train"], result["rationales"], result["rationales_correct"], result["rationales_incorrect"]) == \
        (2, 2, 1, 1)
    result = stats(capsys, "--dataset", str(tmp_path))
    assert (result["train"], result["dev"], result["test"], result["test_ood"]) == (2, 0, 0, 1)
    assert result["examples_with_rationales"] == 1


def test_stats_errors_exit_2(capsys, tmp_path):
    assert main(["data", "stats", "--dataset", "gsm9k", "--json"]) == 2
    assert "unknown data set 'gsm9k'" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "question": "q"}\n')
    assert main(["data", "stats", "--dataset", str(tmp_path / "bad.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 1" in err and "field 'answer'" in err


def test_stats_plain_text_output(capsys, shared_data):
    assert main(["data", "stats", "--dataset", "multiarith", "--data-dir", str(shared_data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["dataset", "multiarith"] and lines[-1].split() == ["test", "600"]


def test_console_script(shared_data):
    script = Path(sys.executable).with_name("kpod")
    assert script.exists(), "the kpod console script is installed beside the interpreter"
    env = {**os.environ, "KPOD_NO_PROGRESS": "1"}
    done = subprocess.run([str(script), "data", "stats", "--dataset", "svamp", "--data-dir", str(shared_data),
                           "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["train"], result["dev"], result["test"]) == (700, 150, 150)
    assert (result["rationales_matched"], result["rationales_unmatched"], result["rationales_correct"]) == \
        (1953, 0, 1953)
