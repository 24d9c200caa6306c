import json
import platform
import time

import torch

from kpod.pipeline.stages import (Stage, content_hash, file_digest, run_stage, stage_dir, stage_environment,
                                 stage_seconds)


def test_stage_skips_when_unchanged_and_reruns_when_changed(tmp_path):
    calls = []

    def work(out, resume):
        calls.append(resume)
        (out / "result.txt").write_text("x")

    first = run_stage(tmp_path, Stage("weigh", {"alpha": 0.5}, work), log=lambda m: None)
    again = run_stage(tmp_path, Stage("weigh", {"alpha": 0.5}, work), log=lambda m: None)
    other = run_stage(tmp_path, Stage("weigh", {"alpha": 0.3}, work), log=lambda m: None)
    assert first == again != other
    assert calls == [False, False]


def test_interrupted_stage_resumes(tmp_path):
    calls = []

    def crash(out, resume):
        calls.append(resume)
        raise RuntimeError("killed")

    stage = Stage("train", {"lr": 1e-4}, crash)
    try:
        run_stage(tmp_path, stage, log=lambda m: None)
    except RuntimeError:
        pass
    run_stage(tmp_path, Stage("train", {"lr": 1e-4}, lambda out, resume: calls.append(resume)), log=lambda m: None)
    assert calls == [False, True]


def test_hashes_depend_on_content(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("1")
    d1 = file_digest(a)
    a.write_text("2")
    assert file_digest(a) != d1
    assert content_hash("s", {"x": 1}) != content_hash("s", {"x": 2})


def test_a_finished_stage_knows_how_long_it_took(tmp_path):
    def work(out, resume):
        (out / "model").mkdir()
        time.sleep(0.2)

    out = run_stage(tmp_path, Stage("base", {}, work), log=lambda m: None)
    assert 0.2 <= stage_seconds(out) < 5
    assert stage_dir(out / "model") == stage_dir(out) == out  # a path inside a stage finds its stage
    assert stage_dir("Qwen/Qwen2.5-0.5B") is None  # a hub name is no stage
    unfinished = tmp_path / "stages" / "train-0123456789"
    unfinished.mkdir()
    assert stage_dir(unfinished) is None  # no .done marker: not finished



def test_a_finished_stage_records_where_it_was_computed(tmp_path):
    out = run_stage(tmp_path, Stage("base", {}, lambda out, resume: None), log=lambda m: None)
    environment = stage_environment(out)
    assert environment["torch_threads"] == torch.get_num_threads()
    assert environment["torch"] == torch.__version__ and environment["python"] == platform.python_version()
    assert environment["cpu"].endswith(torch.backends.cpu.get_cpu_capability())
    (out / ".done").write_text(json.dumps({"hash": "0", "seconds": 1.0}))  # a marker from before kpod recorded it
    assert stage_environment(out) is None
