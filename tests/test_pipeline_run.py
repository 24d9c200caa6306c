"""`kpod run` end to end on a tiny testbed: every stage runs, a rerun skips them all, a changed
setting reruns only what depends on it, and the report renders."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
import yaml

from kpod.cli import main

TINY_RUN = {
    "name": "tiny",
    "methods": ["cotd", "kpod"],
    "data": {"synth": {"train_size": 40, "dev_size": 6, "test_size": 6, "ood_size": 6}, "eval_limit": 6},
    "base_model": {"vocab_size": 300, "hidden": 32, "layers": 1, "heads": 2, "intermediate": 64,
                   "causal_steps": 3, "seq2seq_steps": 2, "equations": 100},
    "weigh": {"epochs": 1, "batch_size": 8},
    "train": {"epochs": 2, "batch_size": 8},
    "eval": {"max_new_tokens": 24},
}


def stage_lines(output: str) -> list[str]:
    return re.findall(r"\[kpod\] (\w+): (running|resuming|unchanged)", output)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN))
    return root, config


def run_pipeline(capsys, config: Path, out: Path, *extra: str) -> list[tuple[str, str]]:
    assert main(["run", str(config), "--out", str(out), *extra]) == 0
    return stage_lines(capsys.readouterr().out)


@pytest.mark.slow
def test_run_skips_and_reruns(tiny_run, capsys):
    root, config = tiny_run
    out = root / "out"
    first = run_pipeline(capsys, config, out)
    assert {name for name, state in first if state == "running"} == {"data", "base", "weigh", "schedule", "train",
                                                                      "eval"}
    metrics = json.loads((out / "metrics.json").read_text())
    for method in ("cotd", "kpod"):
        assert 0.0 <= metrics[method]["accuracy"] <= 1.0 and "accuracy_ood" in metrics[method]
    assert 0.0 <= metrics["keypoint_auc"] <= 1.0
    # the weights' answer predictor is the plain CoT student of the run (weigh.predictor: cotd): the
    # cotd baseline's own stage, not a second training
    index = {r["label"]: r for r in json.loads((out / "index.json").read_text())["runs"]}
    weigh_summary = json.loads((Path(index["kpod"]["weights"]) / "summary.json").read_text())
    assert weigh_summary["config"]["predictor"] == str(Path(index["cotd"]["train"]) / "final")
    assert len(list((out / "stages").glob("train-*"))) == 2

    again = run_pipeline(capsys, config, out)
    assert again and all(state == "unchanged" for _, state in again)

    before = set((out / "stages").glob("train-*"))
    changed = run_pipeline(capsys, config, out, "--train.lr", "1e-4")
    running = {name for name, state in changed if state == "running"}
    assert running == {"train", "weigh", "schedule", "eval"}  # a new reader gives new weights

    # an interrupted stage (no .done marker) is resumed, not restarted from scratch
    new_train = sorted(set((out / "stages").glob("train-*")) - before)
    assert len(new_train) == 2  # cotd and kpod with the new learning rate
    (new_train[0] / ".done").unlink()
    resumed = run_pipeline(capsys, config, out, "--train.lr", "1e-4")
    assert [state for name, state in resumed if name == "train"].count("resuming") == 1


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


@pytest.mark.slow
def test_report_is_self_contained_and_renders(tiny_run, capsys, tmp_path):
    root, config = tiny_run
    out = root / "out"
    if not (out / "report.html").exists():
        run_pipeline(capsys, config, out)
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert parser.tags[:1] == ["html"] and "table" in parser.tags
    assert len(parser.images) >= 4  # class weights, budget, c_i spread, training loss
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("Accuracy", "Token significance", "Progressive schedule", "Training", "Stage times",
                    "Configuration"):
        assert f"<h2>{heading}</h2>" in page
    timed = re.findall(r"<tr><td>(\w+)-[0-9a-f]{10}</td><td>([0-9.]+)</td><td>1</td></tr>", page)
    # data, base, cotd train (also the weights' reader), weigh, schedule, kpod train, 2 evals per student
    assert sorted(name for name, _ in timed) == sorted(["data", "base", "train", "weigh", "schedule", "train"]
                                                       + ["eval"] * 4)
    assert all(float(seconds) >= 0 for _, seconds in timed)
    # every stage was computed in this process's environment, listed once
    assert page.count("<li>cpu ") == 1 and f"torch_threads {torch.get_num_threads()}" in page
    assert "Answer loss over the last 10 steps of each phase, in nats: warmup " in page  # mask learning's log
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside

    chromium = shutil.which("chromium")
    if chromium:
        shot = tmp_path / "report.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
                        (out / "report.html").as_uri()], check=True, timeout=120, capture_output=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_compare_table(tmp_path, capsys):
    for name, acc in (("a", 0.5), ("b", 0.25)):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"eval_sets": ["test"], "kpod": {
            "seeds": [0, 1], "sets": {"test": {"mean": acc, "std": 0.05, "per_seed": [acc - 0.05, acc + 0.05]}}}}))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(tmp_path / "t.json")]) == 0
    table = capsys.readouterr().out
    assert "a/kpod" in table and "50.0 ± 5.0" in table and "25.0 ± 5.0" in table
    assert json.loads((tmp_path / "t.json").read_text())["b/kpod"]["sets"]["test"]["mean"] == 0.25


def test_unknown_method_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--methods", "kpod-wo-sgi", "--out", str(tmp_path)]) == 2
    assert "did you mean 'kpod-wo-sig'" in capsys.readouterr().err


def test_a_setting_at_its_neutral_value_leaves_stage_keys_as_they_were():
    from kpod.distill.config import TrainConfig
    from kpod.pipeline.run import settings_key

    assert "loss_normalizer" not in settings_key(TrainConfig())  # stages cached before it existed stay valid
    assert settings_key(TrainConfig(loss_normalizer="weights"))["loss_normalizer"] == "weights"


@pytest.mark.slow
def test_demo_writes_the_comparison_metrics_and_report(tmp_path, capsys):
    shrink = {f"--{section}.{key}": value for section, settings in TINY_RUN.items() if isinstance(settings, dict)
              for key, value in settings.items() if not isinstance(value, dict)}
    shrink |= {f"--data.synth.{key}": value for key, value in TINY_RUN["data"]["synth"].items()}
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *[str(x) for pair in shrink.items() for x in pair]]) == 0
    printed = capsys.readouterr().out
    assert "keypoint ROC-AUC" in printed and "demo finished" in printed
    assert f"with {torch.get_num_threads()} torch threads, torch {torch.__version__}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    for method in ("cotd", "kpod"):
        assert {"accuracy", "accuracy_ood"} <= set(metrics[method])
    assert 0.0 <= metrics["keypoint_auc"] <= 1.0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 2
    assert "<img" in (out / "report.html").read_text()
