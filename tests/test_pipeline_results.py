"""collect_results: accuracy per method over seeds, with the sample standard deviation."""

from __future__ import annotations

import json

import pytest

from kpod.pipeline.results import collect_results


def write_eval(path, accuracy: float) -> str:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    return str(path)


def test_mean_and_sample_std_over_seeds(tmp_path):
    runs = []
    for seed, (test, ood) in enumerate([(0.20, 0.05), (0.30, 0.07), (0.40, 0.09)]):
        runs.append({"label": "cotd", "seed": seed, "eval": {
            "test": write_eval(tmp_path / f"e{seed}t", test), "test_ood": write_eval(tmp_path / f"e{seed}o", ood)}})
    runs.append({"label": "kpod", "seed": 0, "eval": {
        "test": write_eval(tmp_path / "k0t", 0.1), "test_ood": write_eval(tmp_path / "k0o", 0.02)}})
    (tmp_path / "index.json").write_text(json.dumps({"name": "t", "grid": [], "runs": runs}))

    metrics = collect_results(tmp_path)

    cotd = metrics["cotd"]
    assert metrics["eval_sets"] == ["test", "test_ood"]
    assert cotd["seeds"] == [0, 1, 2]
    assert cotd["sets"]["test"]["mean"] == pytest.approx(0.30)
    assert cotd["sets"]["test"]["std"] == pytest.approx(0.10)  # sqrt(((0.1)^2 + 0 + (0.1)^2) / (3 - 1))
    assert cotd["sets"]["test_ood"]["std"] == pytest.approx(0.02)
    assert cotd["accuracy"] == pytest.approx(0.30) and cotd["accuracy_ood"] == pytest.approx(0.07)
    assert metrics["kpod"]["sets"]["test"]["std"] == 0.0  # one seed
    assert json.loads((tmp_path / "metrics.json").read_text())["kpod"]["accuracy"] == pytest.approx(0.1)


def test_schedule_section_of_a_schedule_without_budget(tmp_path):
    """SPL and ICL schedules carry no budget D(t): the report shows their input steps, no budget plot."""
    from kpod.report.build import schedule_section

    stages = [{"t": t, "budget": None, "scheduled": None, "selected": 2, "certificate_ratio": None} for t in range(2)]
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({"stages": stages, "input_steps": {"a": [1, 0], "b": [2, 0]},
                                "num_steps": {"a": 2, "b": 3}}))
    html = schedule_section(path)
    assert "input steps c_i(t) / n_i" in html
    assert "budget D(t) against" not in html
    assert html.count("<tr><td>") == 2


def test_grid_value_reads_one_axis_of_a_variant_label():
    from kpod.report.build import grid_value

    assert grid_value("kpod[beta=12,p=0.5]", "schedule.p") == 0.5
    assert grid_value("kpod[beta=12,p=0.5]", "beta") == 12.0
    assert grid_value("kpod", "schedule.beta") is None


def test_mask_learning_plots_the_answer_loss_and_gives_each_phase_s_end(tmp_path):
    from kpod.report.build import mask_learning

    records = [{"step": s, "phase": "warmup", "answer_loss": 2.0 + s % 2} for s in range(1, 13)]
    records += [{"step": s, "phase": "mask", "answer_loss": float(s)} for s in range(13, 33)]
    (tmp_path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    figure, note = mask_learning(tmp_path)
    assert figure.count("<img") == 1
    assert "warmup 2.50, mask 27.50" in note
    assert mask_learning(tmp_path / "missing") == ("", "")  # weights computed before kpod logged them
